"""Pod grouping, pod requests and the per-pod replica calculations of the HPA's calculator.

Mirrors ``pkg/controller/podautoscaler/replica_calculator.go`` (groupPods, calculateRequests,
removeMetricsForPods, calcPlainMetricReplicas, GetResourceReplicas) and ``metrics/utilization.go``
(GetResourceUtilizationRatio, GetMetricUsageRatio), including the milli-value integer arithmetic:
every quantity is a ``resource.Quantity.MilliValue()`` upstream, so averages and utilizations
truncate exactly as they do there.
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
class CpuReadiness:
    """What groupPods needs to judge CPU samples of pods that are starting up.

    Upstream: the calculator's ``cpuInitializationPeriod`` and ``delayOfInitialReadinessStatus``
    plus the sample's ``Timestamp``/``Window`` and ``time.Now()``, here all in unix seconds.
    """

    evaluation_time: float
    sample_timestamp: float
    sample_window_seconds: float
    initialization_period_seconds: float
    initial_readiness_delay_seconds: float

    def is_unready(self, pod: PodInfo) -> bool:
        """True when the pod's CPU sample must not count (upstream: the cpu branch of groupPods).

        A pod without a Ready condition (``ready_transition_time`` None) or without a start time is
        unready. Within the initialization period after its start, a pod is unready unless it is
        Ready and a whole sample window was collected after its last readiness change. After the
        period, only a pod that is not Ready and whose readiness last changed within the initial
        readiness delay of its start (it has never been ready) is unready.
        """
        if pod.ready_transition_time is None or pod.start_time is None:
            return True
        if pod.start_time + self.initialization_period_seconds > self.evaluation_time:
            # time.After / time.Before are strict comparisons.
            return (not pod.ready) or (
                self.sample_timestamp < pod.ready_transition_time + self.sample_window_seconds
            )
        return (not pod.ready) and (
            pod.start_time + self.initial_readiness_delay_seconds > pod.ready_transition_time
        )


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


def group_pods(
    pods: Sequence[PodInfo], metrics: Mapping[str, int], cpu: CpuReadiness | None = None
) -> PodGroups:
    """Split pods into ready / unready / missing / ignored.

    Upstream: ``groupPods``. Deleting and Failed pods are ignored; Pending pods are unready; pods
    without a sample are missing; for a cpu Resource metric (``cpu`` given) the readiness rules of
    ``CpuReadiness.is_unready`` apply next; everything else counts as ready (for any other metric
    a Running-but-not-ready pod counts as ready: upstream only checks readiness for CPU).

    Parameters
    ----------
    pods:
        The pods selected by the target's scale selector.
    metrics:
        Samples keyed by pod name (only the keys are used).
    cpu:
        The CPU readiness inputs; None for every metric but a cpu Resource/ContainerResource one.

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
        if cpu is not None and cpu.is_unready(pod):
            unready.add(pod.name)
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
    cpu: CpuReadiness | None = None,
) -> PlainMetricResult:
    """Replica proposal for a per-pod average target (``Pods`` metric, Resource ``AverageValue``).

    Upstream: ``ReplicaCalculator.calcPlainMetricReplicas`` (reached from GetMetricReplicas and
    GetRawResourceReplicas). Samples for pods that are not in the pod list stay in the average,
    as upstream (only ignored and unready pods are removed).

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
    cpu:
        CPU readiness inputs for a cpu Resource metric; None otherwise.

    Returns
    -------
    PlainMetricResult
        The proposal, or the upstream error when the metric cannot be used.
    """
    if not pods:
        return PlainMetricResult(None, None, NO_PODS_ERROR)

    groups = group_pods(pods, metrics, cpu)
    samples = remove_metrics_for_pods(metrics, groups.ignored_pods | groups.unready_pods)
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


def remove_metrics_for_pods(metrics: Mapping[str, int], pods: frozenset[str]) -> dict[str, int]:
    """A copy of ``metrics`` without the samples of ``pods``.

    Upstream: ``removeMetricsForPods`` (which deletes in place; the engine never mutates input).
    """
    return {name: value for name, value in metrics.items() if name not in pods}


def pod_request_milli(pod: PodInfo, resource: str, container: str | None) -> int | str:
    """One pod's request for ``resource`` in milli-units, or upstream's error text.

    Upstream: ``calculatePodRequestsFromContainers``. ``pod.containers`` lists the pod's
    containers in spec order (restartable init containers, i.e. sidecars, after them, as upstream
    appends them). With a ``container`` only that container counts; without one every container's
    request is summed, each rounded to milli-units first, as upstream sums MilliValue()s.
    When the pod lists no containers (a caller that knows only pod totals), ``pod.requests`` is
    the pod's request; a resource absent there means some container has no request.
    """
    if container is None and not pod.containers:
        if resource not in pod.requests:
            return f"missing request for {resource} in Pod {pod.name}"
        return to_milli(pod.requests[resource])
    total = 0
    for info in pod.containers:
        if container is None or info.name == container:
            if resource not in info.requests:
                return f"missing request for {resource} in container {info.name} of Pod {pod.name}"
            total += to_milli(info.requests[resource])
        if info.name == container:
            # Container names are unique inside a pod.
            return total
    if container is not None:
        return f"container {container} not found in Pod {pod.name}"
    return total


def calculate_requests(pods: Sequence[PodInfo], resource: str, container: str | None) -> dict[str, int] | str:
    """Every pod's request in milli-units, or the first pod's error.

    Upstream: ``calculateRequests`` (without pod-level requests, KEP-2837: a pod's requests are
    its containers'). Every listed pod counts, ignored and unready ones too, as upstream.
    """
    requests: dict[str, int] = {}
    for pod in pods:
        request = pod_request_milli(pod, resource, container)
        if isinstance(request, str):
            return request
        requests[pod.name] = request
    return requests


NO_MATCHING_REQUESTS_ERROR = "no metrics returned matched known pods"


@dataclass(frozen=True)
class Utilization:
    """Upstream ``GetResourceUtilizationRatio``'s results."""

    usage_ratio: float
    # Percent of the requests, truncated (int arithmetic on milli-values).
    utilization: int
    # Per-pod average usage of the pods that have a request, milli-units, truncated.
    raw_average_milli: int


def get_resource_utilization_ratio(
    metrics: Mapping[str, int], requests: Mapping[str, int], target_utilization: int
) -> Utilization | str:
    """Utilization = sum(usage) * 100 / sum(requests) over the pods with both, and its ratio to target.

    Upstream: ``metrics.GetResourceUtilizationRatio``. Samples of pods without a request (not in
    the pod list) are extraneous and skipped; the error when none is left is upstream's.
    The utilization saturates at MaxInt32, where Go's int32 conversion would wrap: a usage
    beyond 21 million percent of the requests is no real measurement either way.
    """
    metrics_total = 0
    requests_total = 0
    entries = 0
    for name, value in metrics.items():
        if name not in requests:
            continue
        metrics_total += value
        requests_total += requests[name]
        entries += 1
    if requests_total == 0:
        return NO_MATCHING_REQUESTS_ERROR
    utilization = min(go_int_div(metrics_total * 100, requests_total), MAX_INT32)
    return Utilization(
        usage_ratio=utilization / target_utilization,
        utilization=utilization,
        raw_average_milli=go_int_div(metrics_total, entries),
    )


@dataclass(frozen=True)
class ResourceReplicasResult:
    """Replica proposal of ``get_resource_replicas``: replicas, utilization and raw average, or an error."""

    replicas: int | None
    utilization: int | None
    raw_average_milli: int | None
    error: str | None = None


def get_resource_replicas(
    metrics: Mapping[str, int],
    pods: Sequence[PodInfo],
    current_replicas: int,
    target_utilization: int,
    resource: str,
    container: str | None,
    tolerances: Tolerances,
    cpu: CpuReadiness | None = None,
) -> ResourceReplicasResult:
    """Replica proposal for a Utilization target (percent of the pods' requests).

    Upstream: ``ReplicaCalculator.GetResourceReplicas`` after the metrics fetch: group the pods,
    drop ignored and unready samples, compute utilization over the remaining pods' requests; then,
    when pods are missing or unready pods would matter on a scale-up, fill them in (missing pods
    at 0 on a scale-up and at max(100 %, target) of their request on a scale-down, unready pods
    at 0 on a scale-up) and keep the current count if that would land within tolerance or
    reverse the direction, or if the new count moves the other way.

    Parameters
    ----------
    metrics:
        Per-pod usage in milli-units (milli-cores, milli-bytes). Not mutated.
    pods:
        The pods selected by the target, with their containers' requests.
    current_replicas:
        The target's spec.replicas.
    target_utilization:
        averageUtilization, percent.
    resource:
        "cpu" or "memory".
    container:
        The container of a ContainerResource metric; None for Resource.
    tolerances:
        Per-direction tolerances.
    cpu:
        CPU readiness inputs for a cpu metric; None for memory.

    Returns
    -------
    ResourceReplicasResult
        The proposal with the utilization and raw per-pod average, or upstream's error.
    """
    if not pods:
        return ResourceReplicasResult(None, None, None, NO_PODS_ERROR)
    groups = group_pods(pods, metrics, cpu)
    samples = remove_metrics_for_pods(metrics, groups.ignored_pods | groups.unready_pods)
    if not samples:
        return ResourceReplicasResult(None, None, None, NO_METRICS_ERROR)
    requests = calculate_requests(pods, resource, container)
    if isinstance(requests, str):
        return ResourceReplicasResult(None, None, None, requests)
    first = get_resource_utilization_ratio(samples, requests, target_utilization)
    if isinstance(first, str):
        return ResourceReplicasResult(None, None, None, first)
    usage_ratio = first.usage_ratio

    def keep(replicas: int) -> ResourceReplicasResult:
        return ResourceReplicasResult(replicas, first.utilization, first.raw_average_milli)

    scale_up_with_unready = bool(groups.unready_pods) and usage_ratio > 1.0
    if not scale_up_with_unready and not groups.missing_pods:
        if tolerances.is_within(usage_ratio):
            return keep(current_replicas)
        return keep(saturate_int32(usage_ratio * groups.ready_pod_count))

    if groups.missing_pods:
        if usage_ratio < 1.0:
            # On a scale-down, a missing pod uses all of its request, or the target when that is
            # above 100 %, so it never pulls the average down.
            fallback = max(100, target_utilization)
            for name in groups.missing_pods:
                samples[name] = go_int_div(requests[name] * fallback, 100)
        elif usage_ratio > 1.0:
            for name in groups.missing_pods:
                samples[name] = 0
    if scale_up_with_unready:
        for name in groups.unready_pods:
            samples[name] = 0

    second = get_resource_utilization_ratio(samples, requests, target_utilization)
    if isinstance(second, str):
        return ResourceReplicasResult(None, first.utilization, first.raw_average_milli, second)
    new_usage_ratio = second.usage_ratio
    if (
        tolerances.is_within(new_usage_ratio)
        or (usage_ratio < 1.0 < new_usage_ratio)
        or (usage_ratio > 1.0 > new_usage_ratio)
    ):
        # Filling in the missing/unready pods lands within tolerance or reverses the direction.
        return keep(current_replicas)
    new_replicas = saturate_int32(new_usage_ratio * len(samples))
    if (new_usage_ratio < 1.0 and new_replicas > current_replicas) or (
        new_usage_ratio > 1.0 and new_replicas < current_replicas
    ):
        # The change in pod count would move the replicas the other way.
        return keep(current_replicas)
    return keep(new_replicas)


def get_ready_pods_count(pods: Sequence[PodInfo]) -> int:
    """Pods that are Running and Ready.

    Upstream: ``ReplicaCalculator.getReadyPodsCount`` (the empty-list error is the caller's).
    """
    return sum(1 for pod in pods if pod.phase == "Running" and pod.ready)
