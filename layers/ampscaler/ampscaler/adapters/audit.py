"""AuditSink on Powertools: one structured decision log record per evaluation and CloudWatch EMF metrics.

EMF applies one set of dimensions to every metric in a blob, and Powertools' ``Metrics`` shares one
metric set per process, so metrics with different dimension values cannot share it. Each
dimension-value set therefore gets its own ``EphemeralMetrics`` blob (Powertools' isolated,
non-singleton EMF provider): ``{Rule}`` per evaluation, ``{Rule, Metric}`` per metric, and
``{Shard}`` for the function-level counters written by ``flush()``.

Blobs are written as one ``write`` per line under a lock, not through Powertools' ``print``
(two writes): the tick evaluates rules on threads and an EMF line split by another thread's log
line would be lost to CloudWatch.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Mapping
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

    Per rule (dimension ``Rule``): DesiredReplicas, CurrentReplicas, ScaleEvents,
    EvaluationErrors, FallbackActive, ScalingLimited, QuerySamplesProcessed, RuleInvalid,
    LastValidRuleActive. Per rule metric (dimensions ``Rule``, ``Metric``): MetricValue,
    MetricTarget. Per function (dimension ``Shard``, on ``flush``): RulesEvaluated, RuleInvalid,
    EvaluationErrors, TickDuration (ms), TickCompleted.

    Parameters
    ----------
    logger:
        The function's Powertools Logger.
    namespace:
        CloudWatch namespace of every metric.
    shard:
        Value of the ``Shard`` dimension on function-level metrics (``SHARD_INDEX``).
    service:
        Adds Powertools' ``service`` dimension to every blob when set. None (default) keeps the
        dimension sets exactly as listed above even if ``POWERTOOLS_SERVICE_NAME`` is set.
    """

    def __init__(
        self,
        logger: Logger,
        *,
        namespace: str = NAMESPACE,
        shard: str | int = 0,
        service: str | None = None,
    ) -> None:
        self.logger = logger
        self.namespace = namespace
        self.shard = str(shard)
        self.service = service
        self._lock = threading.Lock()
        self._rules_evaluated = 0
        self._rules_invalid = 0
        self._errors = 0
        self._fallback_active = 0
        self._at_max = 0
        self._tick_durations_ms: list[float] = []
        self._ticks_completed: list[int] = []

    # -- ports.AuditSink ---------------------------------------------------------------------

    def decision(self, record: Mapping[str, object], decision: Decision, rule: Rule) -> None:
        """Log ``record`` as one ``{"event": "decision", ...}`` line and emit the rule's metrics.

        ``record`` is written as given (``input``/``output`` untouched, so the decision replays);
        other fields have credential-looking values redacted. Metrics come from ``decision``;
        ``record["patched"]`` drives ScaleEvents and ``record["querySamplesProcessed"]`` (if a
        number) QuerySamplesProcessed.
        """
        payload = {"event": "decision", **_log_safe(record)}
        self.logger.info("decision", extra=payload)
        name = str(record.get("rule") or rule.name)
        samples = record.get("querySamplesProcessed")
        values: dict[str, tuple[float, str]] = {
            "DesiredReplicas": (decision.desired_replicas, MetricUnit.Count.value),
            "CurrentReplicas": (decision.current_replicas, MetricUnit.Count.value),
            "ScaleEvents": (1 if record.get("patched") is True else 0, MetricUnit.Count.value),
            # Metrics that could not be evaluated this time (query failed, bad data).
            "EvaluationErrors": (sum(1 for m in decision.metrics if not m.valid), MetricUnit.Count.value),
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
        at_max = any(
            c.type == "ScalingLimited" and c.status and c.reason == "TooManyReplicas"
            for c in decision.conditions
        )
        with self._lock:
            self._rules_evaluated += 1
            self._errors += 1 if values["EvaluationErrors"][0] else 0
            self._fallback_active += 1 if decision.fallback_active else 0
            self._at_max += 1 if at_max else 0

    def rule_invalid(self, loaded: LoadedRule) -> None:
        """Log the invalid rule with its parameter, version and every error; count RuleInvalid."""
        kept = loaded.rule is not None
        self.logger.error(
            "rule invalid",
            extra={
                "event": "ruleInvalid",
                "rule": loaded.name,
                "parameter": loaded.parameter,
                "parameterVersion": loaded.version,
                "errors": list(loaded.errors),
                "keptLastValid": kept,
                "action": "the last valid version keeps running" if kept else "the rule is skipped",
            },
        )
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
        """Log an evaluation that could not complete and count EvaluationErrors for the rule."""
        self.logger.error(
            "evaluation error",
            extra={"event": "evaluationError", "rule": rule_name, "error": redact_text(message)},
        )
        if rule_name != ANY_RULE:
            self._emit({DIMENSION_RULE: rule_name}, {"EvaluationErrors": (1, MetricUnit.Count.value)})
        with self._lock:
            self._errors += 1

    # -- function level ----------------------------------------------------------------------

    def tick_finished(self, duration_seconds: float, completed: bool) -> None:
        """Record one tick: TickDuration (ms) and TickCompleted (1 if every rule finished in time)."""
        with self._lock:
            self._tick_durations_ms.append(round(duration_seconds * 1000.0, 3))
            self._ticks_completed.append(1 if completed else 0)

    def flush(self) -> None:
        """Write the function-level blobs and reset their counters.

        Alarms cannot use SEARCH, so the fleet-wide aggregates (RulesEvaluated, RuleInvalid,
        EvaluationErrors, FallbackActive, RulesAtMaxReplicas, TickDuration) carry no dimension
        but ``service``; TickCompleted also carries ``Shard`` so a silent shard is visible.
        Counters are written even when zero, so missing data means a tick that never ran.
        """
        with self._lock:
            counters = (
                self._rules_evaluated,
                self._rules_invalid,
                self._errors,
                self._fallback_active,
                self._at_max,
            )
            durations, completed = self._tick_durations_ms, self._ticks_completed
            self._rules_evaluated = self._rules_invalid = self._errors = 0
            self._fallback_active = self._at_max = 0
            self._tick_durations_ms, self._ticks_completed = [], []
        fleet = self._provider({})
        fleet.add_metric(name="RulesEvaluated", unit=MetricUnit.Count, value=counters[0])
        fleet.add_metric(name="RuleInvalid", unit=MetricUnit.Count, value=counters[1])
        fleet.add_metric(name="EvaluationErrors", unit=MetricUnit.Count, value=counters[2])
        fleet.add_metric(name="FallbackActive", unit=MetricUnit.Count, value=counters[3])
        fleet.add_metric(name="RulesAtMaxReplicas", unit=MetricUnit.Count, value=counters[4])
        for value in durations:
            fleet.add_metric(name="TickDuration", unit=MetricUnit.Milliseconds, value=value)
        self._write(fleet)
        if completed:
            shard = self._provider({DIMENSION_SHARD: self.shard})
            for flag in completed:
                shard.add_metric(name="TickCompleted", unit=MetricUnit.Count, value=flag)
            self._write(shard)

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
