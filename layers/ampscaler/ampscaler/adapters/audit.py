"""AuditSink on Powertools: the decision log, the slot's tick line and CloudWatch EMF metrics.

A decision is logged in full (the replayable record) when it acted, failed, changed something or
is due for its heartbeat; otherwise it is one compact entry in the slot's single ``tick`` line,
so a steady fleet logs a few bytes per rule per slot. By default only a fixed set of
function-level metrics is emitted (what the alarms need); per-rule metrics are opt-in.

EMF applies one set of dimensions to every metric in a blob, and Powertools' ``Metrics`` shares one
metric set per process, so metrics with different dimension values cannot share it. Each
dimension-value set therefore gets its own ``EphemeralMetrics`` blob (Powertools' isolated,
non-singleton EMF provider). Blobs are written as one ``write`` per line under a lock, not
through Powertools' ``print`` (two writes): the tick evaluates rules on threads and an EMF line
split by another thread's log line would be lost to CloudWatch.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import RESERVED_LOG_ATTRS
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from ampscaler.engine.types import Decision
from ampscaler.model import Rule
from ampscaler.ports import LoadedRule

NAMESPACE = "ampscaler"
DIMENSION_RULE = "Rule"
DIMENSION_METRIC = "Metric"
DIMENSION_SHARD = "Shard"
# Log event names ("event" key): the dashboard's and saved queries' filters use these words.
EVENT_DECISION = "decision"
EVENT_TICK = "tick"
EVENT_EVALUATION_ERROR = "evaluationError"
EVENT_RULE_INVALID = "ruleInvalid"
LOG_EVENTS = (EVENT_DECISION, EVENT_TICK, EVENT_EVALUATION_ERROR, EVENT_RULE_INVALID)
# Function-level metrics (dimension service; TickDuration also Shard): what the alarms read.
FLEET_METRICS = ("EvaluationErrors", "RuleInvalid", "FallbackActive", "RulesAtMaxReplicas", "TickDuration")
# Per-rule metrics, emitted only for rules named in PER_RULE_METRICS.
PER_RULE_METRICS = (
    "DesiredReplicas",
    "CurrentReplicas",
    "ScaleEvents",
    "EvaluationErrors",
    "FallbackActive",
    "ScalingLimited",
    "QuerySamplesProcessed",
    "RuleInvalid",
    "LastValidRuleActive",
    "MetricValue",
    "MetricTarget",
)
# Compact entries per tick line: ~40 bytes each, so a line stays far below 256 KB.
TICK_LINE_RULES = 2000
# Keys Powertools adds to every line (level, location, timestamp, service, cold_start and the
# function_* fields), measured from a real line; counted into the bill's log bytes.
_POWERTOOLS_LINE_OVERHEAD = 330
# The tick reports failures that belong to no single rule (e.g. the rule list could not be read)
# under this name; they are counted at function level only.
ANY_RULE = "*"

# Keys Python logging or the Powertools formatter own; a caller's key with one of these names
# would raise (LogRecord attributes) or be dropped silently (Powertools reserved keys).
_RESERVED_KEYS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    *RESERVED_LOG_ATTRS,
}
_SECRET_KEY = re.compile(r"(authorization|token|secret|password|credential|signature)", re.IGNORECASE)
_SECRET_TEXT = (
    (re.compile(r"k8s-aws-v1\.[A-Za-z0-9_\-]+"), "k8s-aws-v1.<redacted>"),
    (re.compile(r"(?i)(bearer\s+)\S+"), r"\1<redacted>"),
    (re.compile(r"(?i)(X-Amz-(?:Security-Token|Signature|Credential)=)[^&\s\"']+"), r"\1<redacted>"),
    (re.compile(r"(?i)(Signature=)[0-9a-f]{16,}"), r"\1<redacted>"),
)


class PowertoolsAuditSink:
    """ports.AuditSink writing through an injected Powertools ``Logger`` and EMF.

    Function level (every slot, on ``flush``; dimension ``service`` only, so an alarm can read
    it): EvaluationErrors, RuleInvalid, FallbackActive, RulesAtMaxReplicas; plus TickDuration (ms)
    with dimension ``Shard``, whose sample count is the number of slots the shard ran. That fixed
    set, independent of the number of rules, is what the alarms need.

    Per rule, only for rules named in ``per_rule_metrics`` ("*" for all; $0.30 per metric-month
    each): DesiredReplicas, CurrentReplicas, ScaleEvents, EvaluationErrors, FallbackActive,
    ScalingLimited, QuerySamplesProcessed, RuleInvalid, LastValidRuleActive (dimension ``Rule``)
    and MetricValue, MetricTarget (``Rule``, ``Metric``). Without them the dashboard's per-rule
    views come from the decision log.

    Decisions are logged in full (the replayable record) when the tick says so, else as a
    compact entry of the slot's one ``tick`` line.

    Parameters
    ----------
    logger:
        The function's Powertools Logger.
    namespace:
        CloudWatch namespace of every metric.
    shard:
        Value of the ``Shard`` dimension (``SHARD_INDEX``).
    service:
        Adds Powertools' ``service`` dimension to every blob when set. None (default) keeps the
        dimension sets exactly as listed above even if ``POWERTOOLS_SERVICE_NAME`` is set.
    per_rule_metrics:
        Rule names (or "*") whose decisions also emit per-rule metrics.
    """

    def __init__(
        self,
        logger: Logger,
        *,
        namespace: str = NAMESPACE,
        shard: str | int = 0,
        service: str | None = None,
        per_rule_metrics: tuple[str, ...] = (),
    ) -> None:
        self.logger = logger
        self.namespace = namespace
        self.shard = str(shard)
        self.service = service
        self.per_rule_metrics = per_rule_metrics
        self._lock = threading.Lock()
        self._rules_invalid = 0
        self._errors = 0
        self._fallback_active = 0
        self._at_max = 0
        self._tick_durations_ms: list[float] = []
        self._compact: list[list[Any]] = []
        # What was written, for the benchmark's bill: log bytes by kind, EMF lines.
        self.bytes_logged: dict[str, int] = {"decision": 0, "tick": 0, "error": 0, "emf": 0}

    def _per_rule(self, rule_name: str) -> bool:
        return "*" in self.per_rule_metrics or rule_name in self.per_rule_metrics

    # -- ports.AuditSink ---------------------------------------------------------------------

    def decision(self, record: Mapping[str, object], decision: Decision, rule: Rule, *, full: bool) -> None:
        """Account for one decision: log ``record`` whole when ``full``, else keep a compact entry.

        The full record is one ``{"event": "decision", ...}`` line with ``input``/``output``
        untouched, so it replays; other fields have credential-looking values redacted. The
        compact entry ``[rule, current, desired, [metric values...]]`` goes into the slot's
        ``tick`` line. Per-rule metrics are emitted only for opted-in rules.
        """
        name = str(record.get("rule") or rule.name)
        if full:
            payload = {"event": "decision", **_log_safe(record)}
            self._log(self.logger.info, "decision", "decision", payload)
        else:
            entry = [
                name,
                decision.current_replicas,
                decision.desired_replicas,
                [m.current for m in decision.metrics],
            ]
            with self._lock:
                self._compact.append(entry)
        at_max = any(
            c.type == "ScalingLimited" and c.status and c.reason == "TooManyReplicas"
            for c in decision.conditions
        )
        invalid_metrics = sum(1 for m in decision.metrics if not m.valid)
        with self._lock:
            # An evaluation whose metrics could not (all) be evaluated counts once.
            self._errors += 1 if invalid_metrics else 0
            self._fallback_active += 1 if decision.fallback_active else 0
            self._at_max += 1 if at_max else 0
        if not self._per_rule(name):
            return
        samples = record.get("querySamplesProcessed")
        values: dict[str, tuple[float, str]] = {
            "DesiredReplicas": (decision.desired_replicas, MetricUnit.Count.value),
            "CurrentReplicas": (decision.current_replicas, MetricUnit.Count.value),
            "ScaleEvents": (1 if record.get("patched") is True else 0, MetricUnit.Count.value),
            "EvaluationErrors": (1 if invalid_metrics else 0, MetricUnit.Count.value),
            "FallbackActive": (1 if decision.fallback_active else 0, MetricUnit.Count.value),
            "ScalingLimited": (
                1 if any(c.type == "ScalingLimited" and c.status for c in decision.conditions) else 0,
                MetricUnit.Count.value,
            ),
        }
        if isinstance(samples, int | float) and not isinstance(samples, bool):
            values["QuerySamplesProcessed"] = (samples, MetricUnit.Count.value)
        self._emit({DIMENSION_RULE: name}, values)
        for result in decision.metrics:
            per_metric: dict[str, tuple[float, str]] = {
                "MetricTarget": (result.target, MetricUnit.NoUnit.value)
            }
            if result.current is not None:
                per_metric["MetricValue"] = (result.current, MetricUnit.NoUnit.value)
            self._emit({DIMENSION_RULE: name, DIMENSION_METRIC: result.name}, per_metric)

    def rule_invalid(self, loaded: LoadedRule) -> None:
        """Log the invalid rule with its parameter, version and every error; count RuleInvalid."""
        kept = loaded.rule is not None
        self._log(
            self.logger.error,
            "error",
            "rule invalid",
            {
                "event": EVENT_RULE_INVALID,
                "rule": loaded.name,
                "parameter": loaded.parameter,
                "parameterVersion": loaded.version,
                "errors": list(loaded.errors),
                "keptLastValid": kept,
                "action": "the last valid version keeps running" if kept else "the rule is skipped",
            },
        )
        if self._per_rule(loaded.name):
            self._emit(
                {DIMENSION_RULE: loaded.name},
                {
                    "RuleInvalid": (1, MetricUnit.Count.value),
                    "LastValidRuleActive": (1 if kept else 0, MetricUnit.Count.value),
                },
            )
        with self._lock:
            self._rules_invalid += 1

    def evaluation_error(self, rule_name: str, message: str) -> None:
        """Log an evaluation that could not complete and count it in EvaluationErrors."""
        self._log(
            self.logger.error,
            "error",
            "evaluation error",
            {"event": EVENT_EVALUATION_ERROR, "rule": rule_name, "error": redact_text(message)},
        )
        if rule_name != ANY_RULE and self._per_rule(rule_name):
            self._emit({DIMENSION_RULE: rule_name}, {"EvaluationErrors": (1, MetricUnit.Count.value)})
        with self._lock:
            self._errors += 1

    # -- function level ----------------------------------------------------------------------

    def tick_finished(self, summary: Mapping[str, Any], duration_seconds: float, ran: bool) -> None:
        """Log the slot's ``tick`` line (its summary plus the compact decision entries).

        Past ``TICK_LINE_RULES`` compact entries the rest go on further ``tick`` lines (``part`` 2,
        3, ...), so no line nears CloudWatch's 256 KB event limit however many rules a shard has.
        A slot that ran (``ran``) also counts one TickDuration sample: the "no tick" alarm counts them.
        """
        with self._lock:
            compact, self._compact = self._compact, []
            if ran:
                self._tick_durations_ms.append(round(duration_seconds * 1000.0, 3))
        parts = [compact[i : i + TICK_LINE_RULES] for i in range(0, len(compact), TICK_LINE_RULES)] or [[]]
        for number, part in enumerate(parts, start=1):
            line = {"event": EVENT_TICK, "shard": self.shard, **summary, "rules": part}
            if len(parts) > 1:
                line["part"] = number
            self._log(self.logger.info, "tick", "tick", line)

    def flush(self) -> None:
        """Write the function-level blobs and reset their counters.

        Alarms cannot use SEARCH, so the fleet-wide aggregates carry no dimension but ``service``;
        TickDuration also carries ``Shard`` so a silent shard is visible. Counters are written even
        when zero, so missing data means a slot that never ran.
        """
        with self._lock:
            counters = (self._rules_invalid, self._errors, self._fallback_active, self._at_max)
            durations = self._tick_durations_ms
            self._rules_invalid = self._errors = self._fallback_active = self._at_max = 0
            self._tick_durations_ms = []
        fleet = self._provider({})
        fleet.add_metric(name="RuleInvalid", unit=MetricUnit.Count, value=counters[0])
        fleet.add_metric(name="EvaluationErrors", unit=MetricUnit.Count, value=counters[1])
        fleet.add_metric(name="FallbackActive", unit=MetricUnit.Count, value=counters[2])
        fleet.add_metric(name="RulesAtMaxReplicas", unit=MetricUnit.Count, value=counters[3])
        self._write(fleet)
        if durations:
            shard = self._provider({DIMENSION_SHARD: self.shard})
            for value in durations:
                shard.add_metric(name="TickDuration", unit=MetricUnit.Milliseconds, value=value)
            self._write(shard)

    def _log(self, method: Callable[..., None], kind: str, message: str, extra: Mapping[str, Any]) -> None:
        method(message, extra=dict(extra))
        # The bill counts log bytes; the Powertools line adds its standard keys to ``extra``.
        size = len(json.dumps(extra, separators=(",", ":"), default=str)) + _POWERTOOLS_LINE_OVERHEAD
        with self._lock:
            self.bytes_logged[kind] += size

    # -- internals ---------------------------------------------------------------------------

    def _provider(self, dimensions: Mapping[str, str]) -> EphemeralMetrics:
        # service="" (not None): None would make Powertools read POWERTOOLS_SERVICE_NAME and add
        # a service dimension nobody asked for.
        metrics = EphemeralMetrics(namespace=self.namespace, service=self.service or "")
        for key, value in dimensions.items():
            metrics.add_dimension(name=key, value=value)
        return metrics

    def _emit(self, dimensions: Mapping[str, str], values: Mapping[str, tuple[float, str]]) -> None:
        metrics = self._provider(dimensions)
        for metric_name, (value, unit) in values.items():
            metrics.add_metric(name=metric_name, unit=unit, value=value)
        self._write(metrics)

    def _write(self, metrics: EphemeralMetrics) -> None:
        if is_metrics_disabled() or not metrics.metric_set:
            return
        line = json.dumps(metrics.serialize_metric_set(), separators=(",", ":")) + "\n"
        with self._lock:
            self.bytes_logged["emf"] += len(line)
            # sys.stdout looked up per call: Lambda's stdout, or whatever a test put there.
            sys.stdout.write(line)
            sys.stdout.flush()


def redact_text(text: str) -> str:
    """``text`` with bearer tokens, EKS tokens and SigV4 signatures/credentials replaced."""
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _log_safe(record: Mapping[str, object]) -> dict[str, Any]:
    """The record as log extras: reserved names get a ``_`` suffix; secrets redacted outside input/output."""
    safe: dict[str, Any] = {}
    for key, value in record.items():
        out_key = f"{key}_" if key in _RESERVED_KEYS else key
        # input/output are the exact decide contract documents; changing them breaks replay.
        safe[out_key] = value if key in ("input", "output") else _redact(key, value)
    return safe


def _redact(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and isinstance(value, str | bytes) and value:
        return "<redacted>"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(key, v) for v in value]
    return value
