"""Builders for engine tests: rules, observations and states with HPA defaults."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ampscaler.engine.types import (
    EngineState,
    MetricObservation,
    Observation,
    PodInfo,
    PodPhase,
    Recommendation,
    ScaleEvent,
    ScaleObservation,
)
from ampscaler.model import (
    Behavior,
    Fallback,
    MetricSpec,
    MetricTarget,
    MetricType,
    ScaleTargetRef,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    TargetType,
)
from ampscaler.model import Rule as Rule

TARGET = ScaleTargetRef(cluster="test", namespace="test-namespace", kind="Deployment", name="app")


def metric(
    name: str = "qps",
    type: MetricType = "Pods",
    target: float = 10.0,
    target_type: TargetType | None = None,
    activation: float = 0.0,
) -> MetricSpec:
    """A metric spec; Pods default to AverageValue, the others to Value."""
    kind: TargetType = target_type or ("AverageValue" if type == "Pods" else "Value")
    spec_target = (
        MetricTarget(type="Value", value=target)
        if kind == "Value"
        else MetricTarget(type="AverageValue", average_value=target)
    )
    return MetricSpec(
        name=name, type=type, query=f"q_{name}", target=spec_target, activation_threshold=activation
    )


def policy(type: str, value: int, period: int) -> ScalingPolicy:
    """A scaling policy."""
    assert type in ("Pods", "Percent")
    return ScalingPolicy(type=type, value=value, period_seconds=period)  # type: ignore[arg-type]


def scale_up_rules(
    window: int = 0,
    select: SelectPolicy = "Max",
    policies: Sequence[ScalingPolicy] | None = None,
    tolerance: float | None = None,
) -> ScalingRules:
    """scaleUp rules with API-server defaults (window 0, Max, 4 pods or 100% per 15s)."""
    pols = tuple(policies) if policies is not None else (policy("Pods", 4, 15), policy("Percent", 100, 15))
    return ScalingRules(window, select, pols, tolerance)


def scale_down_rules(
    window: int | None = None,
    select: SelectPolicy = "Max",
    policies: Sequence[ScalingPolicy] | None = None,
    tolerance: float | None = None,
) -> ScalingRules:
    """scaleDown rules with API-server defaults (window unset, Max, 100% per 15s)."""
    pols = tuple(policies) if policies is not None else (policy("Percent", 100, 15),)
    return ScalingRules(window, select, pols, tolerance)


def behavior(up: ScalingRules | None = None, down: ScalingRules | None = None) -> Behavior:
    """A behavior with defaults for the direction not given."""
    return Behavior(scale_up=up or scale_up_rules(), scale_down=down or scale_down_rules())


def rule(
    metrics: Sequence[MetricSpec] = (),
    min_replicas: int = 1,
    max_replicas: int = 100,
    behavior: Behavior | None = None,
    tolerance: float | None = None,
    fallback: Fallback | None = None,
    paused: bool = False,
    dry_run: bool = False,
    cooldown: int = 300,
) -> Rule:
    """A rule over TARGET (one Pods metric "qps" with target 10 when none are given)."""
    return Rule(
        name="test-rule",
        target=TARGET,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metrics=tuple(metrics) or (metric(),),
        behavior=behavior,
        tolerance=tolerance,
        fallback=fallback,
        paused=paused,
        dry_run=dry_run,
        cooldown_period_seconds=cooldown,
    )


def pods(
    count: int,
    phases: Sequence[PodPhase] | None = None,
    ready: Sequence[bool] | None = None,
    deleting: Sequence[bool] | None = None,
) -> tuple[PodInfo, ...]:
    """Pods named test-pod-<i>, like upstream's replicaCalcTestCase."""
    total = max(count, len(phases or ()), len(ready or ()), len(deleting or ()))
    return tuple(
        PodInfo(
            name=f"test-pod-{i}",
            phase=phases[i] if phases else "Running",
            ready=ready[i] if ready else True,
            deleting=deleting[i] if deleting else False,
        )
        for i in range(total)
    )


def pod_values(levels: Sequence[float], names: Sequence[str] | None = None) -> dict[str, float]:
    """Per-pod samples for test-pod-<i> (or the given names)."""
    return {(names[i] if names else f"test-pod-{i}"): level for i, level in enumerate(levels)}


def observe(
    spec_replicas: int,
    metrics: Sequence[MetricObservation],
    pod_list: Sequence[PodInfo] | None = None,
    status_replicas: int | None = None,
) -> Observation:
    """An observation; status.replicas defaults to spec.replicas."""
    return Observation(
        scale=ScaleObservation(
            spec_replicas=spec_replicas,
            status_replicas=spec_replicas if status_replicas is None else status_replicas,
        ),
        metrics=tuple(metrics),
        pods=None if pod_list is None else tuple(pod_list),
    )


def value(name: str, v: float) -> MetricObservation:
    """A single-value sample."""
    return MetricObservation(name=name, value=v)


def per_pod(name: str, values: Mapping[str, float]) -> MetricObservation:
    """A per-pod sample."""
    return MetricObservation(name=name, pod_values=dict(values))


def failed(name: str, error: str = "query timed out") -> MetricObservation:
    """A failed sample."""
    return MetricObservation(name=name, error=error)


def state(
    recommendations: Sequence[tuple[float, int]] = (),
    up: Sequence[tuple[float, int]] = (),
    down: Sequence[tuple[float, int]] = (),
    failures: int = 0,
    below_since: float | None = None,
) -> EngineState:
    """An engine state from (time, replicas) / (time, change) pairs."""
    return EngineState(
        recommendations=tuple(Recommendation(t, r) for t, r in recommendations),
        scale_up_events=tuple(ScaleEvent(t, c) for t, c in up),
        scale_down_events=tuple(ScaleEvent(t, c) for t, c in down),
        consecutive_failures=failures,
        below_activation_since=below_since,
    )
