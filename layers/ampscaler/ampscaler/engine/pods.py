"""Pod grouping and the plain (per-pod average) replica calculation for ``Pods`` metrics.

Mirrors ``pkg/controller/podautoscaler/replica_calculator.go`` for non-CPU metrics, including
its milli-value integer arithmetic (every quantity is a ``resource.Quantity.MilliValue()``
upstream, so averages truncate exactly as they do there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ampscaler.engine.types import PodInfo

# int32 bound the upstream calculator saturates at.
MAX_INT32 = 2**31 - 1

NO_PODS_ERROR = "no pods returned by selector while calculating replica count"
NO_METRICS_ERROR = "did not receive metrics for targeted pods (pods might be unready)"


@dataclass(frozen=True)
class Tolerances:
    """Usage-ratio tolerances for each direction.

    Upstream: ``Tolerances`` in replica_calculator.go.
    """

    scale_down: float
    scale_up: float

    def is_within(self, usage_ratio: float) -> bool:
        """True when ``usage_ratio`` is inside [1 - scale_down, 1 + scale_up], both ends inside.

        Upstream: ``Tolerances.isWithin``. NaN is never within (comparisons are false), which is
        what Go does for the 0/0 ratio of an empty target.
        """
        return (1.0 - self.scale_down) <= usage_ratio <= (1.0 + self.scale_up)


@dataclass(frozen=True)
class PodGroups:
    """Result of grouping the selected pods against the metric samples.

    Upstream: the four return values of ``groupPods``.
    """

    ready_pod_count: int
    unready_pods: frozenset[str]
    missing_pods: frozenset[str]
    ignored_pods: frozenset[str]


@dataclass(frozen=True)
class PlainMetricResult:
    """Replica proposal of ``calc_plain_metric_replicas``: either replicas+usage or an error."""

    replicas: int | None
    # Per-pod average of the samples that were used, in milli-units (upstream ``usage``).
    usage_milli: int | None
    error: str | None = None


def to_milli(value: float) -> int:
    """Convert a float quantity to its milli-value, rounding away from zero like upstream.

    Upstream: ``resource.Quantity.MilliValue`` (ScaledValue(-3) rounds up in magnitude). The
    value is first rounded to 6 decimals of milli so that 0.1 (binary 0.1000000000000000055)
    becomes 100 milli and not 101.
    """
    scaled = round(value * 1000.0, 6)
    if scaled >= 0:
        return math.ceil(scaled)
    return -math.ceil(-scaled)


def go_int_div(numerator: int, denominator: int) -> int:
    """Integer division truncating toward zero, as Go's ``/`` on int64 does."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def saturate_int32(value: float) -> int:
    """``int32(math.Ceil(value))`` with the upstream saturation at MaxInt32."""
    if value > MAX_INT32:
        return MAX_INT32
    return math.ceil(value)


def group_pods(pods: Sequence[PodInfo], metrics: Mapping[str, int]) -> PodGroups:
    """Split pods into ready / unready / missing / ignored for a non-CPU metric.

    Upstream: ``groupPods`` with ``resource`` != cpu. Deleting and Failed pods are ignored;
    Pending pods are unready; pods without a sample are missing; everything else counts as ready
    (a Running-but-not-ready pod counts as ready: upstream only checks readiness for CPU).

    Parameters
    ----------
    pods:
        The pods selected by the target's scale selector.
    metrics:
        Samples keyed by pod name (only the keys are used).

    Returns
    -------
    PodGroups
        The ready count and the three name sets.
    """
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        if pod.name not in metrics:
            missing.add(pod.name)
            continue
        ready += 1
    return PodGroups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def get_metric_usage_ratio(metrics: Mapping[str, int], target_milli: int) -> tuple[float, int]:
    """Average the samples (integer milli division) and divide by the target.

    Upstream: ``metrics.GetMetricUsageRatio``.

    Returns
    -------
    tuple[float, int]
        ``(usage_ratio, current_usage_milli)``.
    """
    total = sum(metrics.values())
    current = go_int_div(total, len(metrics))
    return current / target_milli, current


def calc_plain_metric_replicas(
    metrics: Mapping[str, int],
    pods: Sequence[PodInfo],
    current_replicas: int,
    target_milli: int,
    tolerances: Tolerances,
) -> PlainMetricResult:
    """Replica proposal for a per-pod average target (``Pods`` metric, ``AverageValue``).

    Upstream: ``ReplicaCalculator.calcPlainMetricReplicas``. Samples for pods that are not in the
    pod list stay in the average, as upstream (only ignored and unready pods are removed).

    Parameters
    ----------
    metrics:
        Per-pod samples in milli-units. Not mutated.
    pods:
        The pods selected by the target.
    current_replicas:
        The target's spec.replicas.
    target_milli:
        The per-pod target in milli-units.
    tolerances:
        Per-direction tolerances.

    Returns
    -------
    PlainMetricResult
        The proposal, or the upstream error when the metric cannot be used.
    """
    if not pods:
        return PlainMetricResult(None, None, NO_PODS_ERROR)

    groups = group_pods(pods, metrics)
    samples = {
        name: value
        for name, value in metrics.items()
        if name not in groups.ignored_pods and name not in groups.unready_pods
    }
    if not samples:
        return PlainMetricResult(None, None, NO_METRICS_ERROR)

    usage_ratio, usage = get_metric_usage_ratio(samples, target_milli)
    scale_up_with_unready = bool(groups.unready_pods) and usage_ratio > 1.0

    if not scale_up_with_unready and not groups.missing_pods:
        if tolerances.is_within(usage_ratio):
            return PlainMetricResult(current_replicas, usage)
        return PlainMetricResult(saturate_int32(usage_ratio * groups.ready_pod_count), usage)

    if groups.missing_pods:
        if usage_ratio < 1.0:
            # On a scale-down, treat missing pods as using exactly the target amount.
            for name in groups.missing_pods:
                samples[name] = target_milli
        elif usage_ratio > 1.0:
            # On a scale-up, treat missing pods as using nothing.
            for name in groups.missing_pods:
                samples[name] = 0

    if scale_up_with_unready:
        for name in groups.unready_pods:
            samples[name] = 0

    new_usage_ratio, _ = get_metric_usage_ratio(samples, target_milli)
    if (
        tolerances.is_within(new_usage_ratio)
        or (usage_ratio < 1.0 < new_usage_ratio)
        or (usage_ratio > 1.0 > new_usage_ratio)
    ):
        # The refilled data would flip the scale direction or land within tolerance.
        return PlainMetricResult(current_replicas, usage)

    new_replicas = saturate_int32(new_usage_ratio * len(samples))
    if (new_usage_ratio < 1.0 and new_replicas > current_replicas) or (
        new_usage_ratio > 1.0 and new_replicas < current_replicas
    ):
        # The change in sample count would move the count the wrong way.
        return PlainMetricResult(current_replicas, usage)
    return PlainMetricResult(new_replicas, usage)


def get_ready_pods_count(pods: Sequence[PodInfo]) -> int:
    """Pods that are Running and Ready.

    Upstream: ``ReplicaCalculator.getReadyPodsCount`` (the empty-list error is the caller's).
    """
    return sum(1 for pod in pods if pod.phase == "Running" and pod.ready)
