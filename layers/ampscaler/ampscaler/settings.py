"""Function configuration read once from the environment, validated, with defaults.

The names here are the ones template.yaml sets; docs and the template use the same words.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ampscaler.errors import AmpscalerError
from ampscaler.resource_queries import STACK_DEFAULT_SERIES, ResolvedSeries

DEFAULT_RULE_PREFIX = "/ampscaler/rules/"
# The stack-wide series settings of Resource/ContainerResource metrics, by environment variable.
RESOURCE_SERIES_ENV = {
    "RESOURCE_CPU_METRIC": "cpu_metric",
    "RESOURCE_MEMORY_METRIC": "memory_metric",
    "RESOURCE_NAMESPACE_LABEL": "namespace_label",
    "RESOURCE_POD_LABEL": "pod_label",
    "RESOURCE_CONTAINER_LABEL": "container_label",
    "RESOURCE_WINDOW_SECONDS": "window_seconds",
}


@dataclass(frozen=True)
class Settings:
    """Scaler/validator function settings."""

    rule_prefix: str = DEFAULT_RULE_PREFIX
    state_table: str = "ampscaler-state"
    # Default AMP workspace for rules that do not name their own.
    amp_workspace_id: str | None = None
    amp_region: str | None = None
    # Default cluster for rules whose target omits it.
    cluster_name: str | None = None
    evaluation_interval_seconds: int = 15
    schedule_interval_seconds: int = 60
    shard_count: int = 1
    shard_index: int = 0
    rule_cache_seconds: int = 60
    max_concurrency: int = 16
    query_connect_timeout_seconds: float = 2.0
    query_read_timeout_seconds: float = 5.0
    # Every call of a slot's evaluations ends this long before the slot does (the next slot's
    # start), and before the Lambda deadline; nothing is patched or written after that.
    deadline_margin_seconds: float = 1.0
    # The SQS queue that carries the delayed messages of a schedule's later slots; required when
    # the schedule interval spans more than one evaluation interval.
    slot_queue_url: str | None = None
    # A steady rule's full decision record (and state item) is written at least this often.
    decision_heartbeat_seconds: int = 1800
    # Rules whose decisions also emit per-rule CloudWatch metrics ($0.30/metric-month each):
    # names, or "*" for every rule; empty (default) for none.
    per_rule_metrics: tuple[str, ...] = ()
    # Blast radius of rules (ampscaler.policy): empty namespaces = any but the system ones,
    # empty clusters = any; every replica count a rule sets stays at or below the ceiling.
    allowed_namespaces: tuple[str, ...] = ()
    allowed_clusters: tuple[str, ...] = ()
    max_replicas_ceiling: int = 1000
    # Where Resource/ContainerResource metrics find cAdvisor usage (series/label names, CPU rate
    # window); a rule's ``series`` overrides single fields (ampscaler.resource_queries).
    resource_series: ResolvedSeries = STACK_DEFAULT_SERIES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default ``os.environ``); raise AmpscalerError listing every bad value."""
        source = os.environ if env is None else env
        errors: list[str] = []
        values: dict[str, object] = {}

        def text(var: str, attr: str) -> None:
            raw = source.get(var, "").strip()
            if raw:
                values[attr] = raw

        def number(var: str, attr: str, kind: type[int] | type[float], minimum: float) -> None:
            raw = source.get(var, "").strip()
            if not raw:
                return
            try:
                parsed = kind(raw)
            except ValueError:
                errors.append(f"{var}={raw!r}: must be a {kind.__name__}")
                return
            if parsed < minimum:
                errors.append(f"{var}={raw!r}: must be >= {minimum}")
                return
            values[attr] = parsed

        text("RULE_PREFIX", "rule_prefix")
        text("STATE_TABLE", "state_table")
        text("AMP_WORKSPACE_ID", "amp_workspace_id")
        text("AMP_REGION", "amp_region")
        text("CLUSTER_NAME", "cluster_name")
        number("EVALUATION_INTERVAL_SECONDS", "evaluation_interval_seconds", int, 1)
        number("SCHEDULE_INTERVAL_SECONDS", "schedule_interval_seconds", int, 1)
        number("SHARD_COUNT", "shard_count", int, 1)
        number("SHARD_INDEX", "shard_index", int, 0)
        number("RULE_CACHE_SECONDS", "rule_cache_seconds", int, 0)
        number("MAX_CONCURRENCY", "max_concurrency", int, 1)
        number("QUERY_CONNECT_TIMEOUT_SECONDS", "query_connect_timeout_seconds", float, 0.1)
        number("QUERY_READ_TIMEOUT_SECONDS", "query_read_timeout_seconds", float, 0.1)
        number("DEADLINE_MARGIN_SECONDS", "deadline_margin_seconds", float, 0)
        text("SLOT_QUEUE_URL", "slot_queue_url")
        number("DECISION_HEARTBEAT_SECONDS", "decision_heartbeat_seconds", int, 0)
        raw_per_rule = source.get("PER_RULE_METRICS", "").strip()
        if raw_per_rule:
            values["per_rule_metrics"] = tuple(n.strip() for n in raw_per_rule.split(",") if n.strip())
        series: dict[str, object] = {}
        for var, attr in RESOURCE_SERIES_ENV.items():
            raw = source.get(var, "").strip()
            if not raw:
                continue
            if attr == "window_seconds":
                try:
                    series[attr] = int(raw)
                except ValueError:
                    errors.append(f"{var}={raw!r}: must be an int")
            else:
                series[attr] = raw
        if series:
            resolved = replace(STACK_DEFAULT_SERIES, **series)  # type: ignore[arg-type]
            by_attr = {attr: var for var, attr in RESOURCE_SERIES_ENV.items()}
            errors.extend(f"{by_attr[attr]}: {what}" for attr, what in resolved.problems())
            values["resource_series"] = resolved
        # Rule blast radius: parsed by ampscaler.policy so `ampscaler validate` reads it identically.
        from ampscaler.policy import POLICY_ENV_VARS, RulePolicy

        try:
            policy = RulePolicy.from_env({k: source[k] for k in POLICY_ENV_VARS if k in source})
        except ValueError as exc:
            errors.append(str(exc))
        else:
            values["allowed_namespaces"] = policy.allowed_namespaces
            values["allowed_clusters"] = policy.allowed_clusters
            values["max_replicas_ceiling"] = policy.max_replicas_ceiling
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.shard_index >= settings.shard_count:
            errors.append(
                f"SHARD_INDEX={settings.shard_index}: must be below SHARD_COUNT={settings.shard_count}"
            )
        if not settings.rule_prefix.startswith("/") or not settings.rule_prefix.endswith("/"):
            errors.append(f"RULE_PREFIX={settings.rule_prefix!r}: must start and end with '/'")
        if settings.deadline_margin_seconds >= settings.evaluation_interval_seconds:
            errors.append(
                f"DEADLINE_MARGIN_SECONDS={settings.deadline_margin_seconds:g}: must be below "
                f"EVALUATION_INTERVAL_SECONDS={settings.evaluation_interval_seconds}"
            )
        if errors:
            raise AmpscalerError("invalid function configuration: " + "; ".join(errors))
        return settings
