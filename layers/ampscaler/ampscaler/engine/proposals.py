"""Per-metric replica proposals and their combination (the maximum over valid metrics).

Mirrors ``replica_calculator.go`` (GetObjectMetricReplicas, GetExternalMetricReplicas,
getUsageRatioReplicaCount, GetObjectPerPodMetricReplicas, GetExternalPerPodMetricReplicas,
GetResourceReplicas, GetRawResourceReplicas) and ``horizontal.go`` (computeReplicasForMetric,
computeReplicasForMetrics, computeStatusForResourceMetricGeneric, tolerancesForHpa).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ampscaler.engine import reasons
from ampscaler.engine.pods import (
    NO_PODS_ERROR,
    CpuReadiness,
    PlainMetricResult,
    Tolerances,
    calc_plain_metric_replicas,
    get_ready_pods_count,
    get_resource_replicas,
    saturate_int32,
    to_milli,
)
from ampscaler.engine.types import (
    ControllerConfig,
    MetricObservation,
    MetricResult,
    Observation,
    PodInfo,
)
from ampscaler.model import MetricSpec, Rule


@dataclass(frozen=True)
class MetricsOutcome:
    """Result of ``compute_replicas_for_metrics``.

    ``replicas`` is -1 when the controller must not act on the metrics (all invalid, or some
    invalid while the valid ones would scale down), exactly like upstream's -1 return.
    """

    replicas: int
    # "pods metric rps": the metric that produced ``replicas`` (upstream ``metric``).
    metric: str
    results: tuple[MetricResult, ...]
    invalid_count: int
    # Condition reason/message of the first invalid metric (FailedGet*Metric).
    invalid_reason: str = ""
    invalid_message: str = ""
    error: str = ""


def resolve_tolerances(rule: Rule, controller: ControllerConfig) -> Tolerances:
    """Per-direction tolerances for a rule.

    Upstream: ``HorizontalController.tolerancesForHpa`` (HPAConfigurableTolerance):
    behavior.scaleUp/scaleDown.tolerance override the controller's
    --horizontal-pod-autoscaler-tolerance. ampscaler adds the rule-wide ``tolerance`` between the
    two.
    """
    base = rule.tolerance if rule.tolerance is not None else controller.tolerance
    down = up = base
    if rule.behavior is not None:
        if rule.behavior.scale_down.tolerance is not None:
            down = rule.behavior.scale_down.tolerance
        if rule.behavior.scale_up.tolerance is not None:
            up = rule.behavior.scale_up.tolerance
    return Tolerances(scale_down=down, scale_up=up)


_DEFAULT_CONTROLLER = ControllerConfig()


def metric_description(spec: MetricSpec) -> str:
    """How upstream names a metric in the rescale reason ("pods metric rps").

    Upstream: ``metricNameProposal`` in computeStatusFor{Pods,Object,External}Metric and
    computeStatusForResourceMetricGeneric ("cpu resource utilization (percentage of request)",
    "memory container resource utilization (percentage of request)", "cpu resource").
    """
    if spec.resource is not None:
        if spec.target.type != "Utilization":
            return f"{spec.resource} resource"
        kind = "container resource" if spec.type == "ContainerResource" else "resource"
        return f"{spec.resource} {kind} utilization (percentage of request)"
    return f"{spec.type.lower()} metric {spec.name}"


def failed_metric_value_error(spec: MetricSpec, error: str) -> str:
    """Upstream's wrapping of a metric's error in computeReplicasForMetric.

    "failed to get cpu resource metric value: ...", "failed to get app container metric value:
    ...", "failed to get pods metric value: ...".
    """
    if spec.type == "Resource":
        return f"failed to get {spec.resource} resource metric value: {error}"
    if spec.type == "ContainerResource":
        return f"failed to get {spec.container} container metric value: {error}"
    return f"failed to get {spec.type.lower()} metric value: {error}"


def get_usage_ratio_replica_count(
    current_replicas: int, usage_ratio: float, tolerances: Tolerances, ready_pods: int
) -> int:
    """Replicas for a Value target given the usage ratio.

    Upstream: ``ReplicaCalculator.getUsageRatioReplicaCount``. With 0 current replicas the
    ratio alone decides (scale to zero or to ceil(ratio)), ignoring tolerance and ready pods.
    """
    if current_replicas != 0:
        if tolerances.is_within(usage_ratio):
            return current_replicas
        return saturate_int32(usage_ratio * ready_pods)
    return saturate_int32(usage_ratio)


def per_pod_replicas(
    status_replicas: int, usage_milli: int, target_milli: int, tolerances: Tolerances
) -> tuple[int, int]:
    """Replicas for an Object/External AverageValue target.

    Upstream: ``GetObjectPerPodMetricReplicas`` / ``GetExternalPerPodMetricReplicas``:
    ceil(total/target) unless usage/(target*statusReplicas) is within tolerance.

    Returns
    -------
    tuple[int, int]
        ``(replicas, per_pod_usage_milli)``.
    """
    replicas = status_replicas
    denominator = float(target_milli) * float(status_replicas)
    if denominator == 0:
        # Go yields +Inf (or NaN for 0/0): never within tolerance.
        usage_ratio = math.inf if usage_milli != 0 else math.nan
    else:
        usage_ratio = usage_milli / denominator
    if not tolerances.is_within(usage_ratio):
        replicas = saturate_int32(usage_milli / target_milli)
    per_pod = math.ceil(usage_milli / status_replicas) if status_replicas else usage_milli
    return replicas, per_pod


def _failure(spec: MetricSpec, message: str) -> MetricResult:
    return MetricResult(
        name=spec.name,
        current=None,
        target=spec.target.amount,
        proposal=None,
        valid=False,
        error=message,
    )


# Observations beyond this magnitude are treated as a failed metric: scaled to milli-units and
# summed over pods they would overflow a float, and no real metric is anywhere near it.
MAX_OBSERVATION = 1e300


def _finite(value: float) -> bool:
    return math.isfinite(value)


def in_range(value: float) -> bool:
    """A finite observation with magnitude at most ``MAX_OBSERVATION``."""
    return math.isfinite(value) and abs(value) <= MAX_OBSERVATION


def _pods_for(observation: Observation, pod_values: Mapping[str, float] | None) -> Sequence[PodInfo]:
    if observation.pods is not None:
        return observation.pods
    # The caller did not list pods: take every pod that reported a sample as Running and Ready.
    return tuple(PodInfo(name=name) for name in sorted(pod_values or {}))


def compute_replicas_for_metric(
    spec: MetricSpec,
    sample: MetricObservation | None,
    observation: Observation,
    tolerances: Tolerances,
    *,
    now: float,
    controller: ControllerConfig = _DEFAULT_CONTROLLER,
) -> MetricResult:
    """One metric's proposal, or an invalid result carrying the upstream error text.

    Upstream: ``HorizontalController.computeReplicasForMetric`` and the
    computeStatusFor{Pods,Object,External,Resource,ContainerResource}Metric functions it calls.

    Parameters
    ----------
    spec:
        The metric as the rule declares it.
    sample:
        Its observation (None when the caller supplied none).
    observation:
        The whole observation (scale and pods).
    tolerances:
        Per-direction tolerances.
    now:
        Evaluation time, unix seconds (the CPU initialization period is judged against it).
    controller:
        kube-controller-manager flags (CPU initialization period, initial readiness delay).

    Returns
    -------
    MetricResult
        ``valid`` with a proposal, or invalid with ``error``.
    """
    if spec.resource is not None:
        return _resource_metric(spec, sample, observation, tolerances, now, controller)
    spec_replicas = observation.scale.spec_replicas
    status_replicas = observation.scale.status_replicas
    target_milli = to_milli(spec.target.amount)
    fetch_prefix = (
        f"unable to get external metric {spec.name}"
        if spec.type == "External"
        else f"unable to get metric {spec.name}"
    )
    if sample is None:
        return _failure(spec, f"{fetch_prefix}: no observation for this metric")
    if sample.error is not None:
        return _failure(spec, f"{fetch_prefix}: {sample.error}")

    if spec.type == "Pods":
        if sample.pod_values is None:
            return _failure(spec, f"{fetch_prefix}: expected per-pod values for a Pods metric")
        # Non-finite samples (Prometheus NaN/Inf) are dropped: the pod then counts as missing.
        # A finite sample beyond MAX_OBSERVATION cannot be computed with: the metric is invalid,
        # as the HPA treats a metric it cannot read.
        huge = [name for name, value in sample.pod_values.items() if _finite(value) and not in_range(value)]
        if huge:
            return _failure(
                spec,
                f"{fetch_prefix}: pod {huge[0]} reported {sample.pod_values[huge[0]]:g}, "
                f"beyond the supported magnitude {MAX_OBSERVATION:g}",
            )
        metrics = {name: to_milli(value) for name, value in sample.pod_values.items() if _finite(value)}
        pods = _pods_for(observation, sample.pod_values)
        result: PlainMetricResult = calc_plain_metric_replicas(
            metrics, pods, spec_replicas, target_milli, tolerances
        )
        if result.error is not None or result.replicas is None or result.usage_milli is None:
            return _failure(spec, result.error or "no proposal")
        return MetricResult(
            name=spec.name,
            current=result.usage_milli / 1000.0,
            target=spec.target.amount,
            proposal=result.replicas,
            valid=True,
        )

    if sample.value is None:
        return _failure(spec, f"{fetch_prefix}: expected a single value for an {spec.type} metric")
    if not _finite(sample.value):
        return _failure(spec, f"{fetch_prefix}: value is not a finite number ({sample.value})")
    if not in_range(sample.value):
        return _failure(
            spec,
            f"{fetch_prefix}: value {sample.value:g} is beyond the supported magnitude {MAX_OBSERVATION:g}",
        )
    usage_milli = to_milli(sample.value)

    if spec.target.type == "AverageValue":
        replicas, per_pod = per_pod_replicas(status_replicas, usage_milli, target_milli, tolerances)
        return MetricResult(
            name=spec.name,
            current=per_pod / 1000.0,
            target=spec.target.amount,
            proposal=replicas,
            valid=True,
        )

    usage_ratio = usage_milli / target_milli
    ready = 0
    if spec_replicas != 0 and not tolerances.is_within(usage_ratio):
        if observation.pods is None:
            # Pods not listed (Object/External-only rule): status.replicas stands in for them.
            ready = status_replicas
        elif not observation.pods:
            return _failure(spec, f"unable to calculate ready pods: {NO_PODS_ERROR}")
        else:
            ready = get_ready_pods_count(observation.pods)
    replicas = get_usage_ratio_replica_count(spec_replicas, usage_ratio, tolerances, ready)
    return MetricResult(
        name=spec.name,
        current=usage_milli / 1000.0,
        target=spec.target.amount,
        proposal=replicas,
        valid=True,
    )


def _resource_metric(
    spec: MetricSpec,
    sample: MetricObservation | None,
    observation: Observation,
    tolerances: Tolerances,
    now: float,
    controller: ControllerConfig,
) -> MetricResult:
    """A cpu/memory Resource or ContainerResource metric.

    Upstream: ``computeStatusForResourceMetricGeneric`` with GetResourceReplicas (Utilization)
    or GetRawResourceReplicas (AverageValue). ``sample.pod_values`` holds each pod's usage (the
    named container's alone for ContainerResource) in cores or bytes; it is converted to
    milli-units as metrics-server's quantities are (``to_milli``).
    """
    resource = spec.resource
    assert resource is not None
    utilization_target = spec.target.type == "Utilization"
    # Upstream: "failed to get cpu utilization: ..." / "failed to get cpu usage: ...".
    prefix = f"failed to get {resource} {'utilization' if utilization_target else 'usage'}"
    fetch = f"{prefix}: unable to get metrics for resource {resource}"
    if sample is None:
        return _failure(spec, f"{fetch}: no observation for this metric")
    if sample.error is not None:
        return _failure(spec, f"{fetch}: {sample.error}")
    if sample.pod_values is None:
        return _failure(spec, f"{fetch}: expected per-pod values for a {spec.type} metric")
    huge = [name for name, value in sample.pod_values.items() if _finite(value) and not in_range(value)]
    if huge:
        return _failure(
            spec,
            f"{fetch}: pod {huge[0]} reported {sample.pod_values[huge[0]]:g}, "
            f"beyond the supported magnitude {MAX_OBSERVATION:g}",
        )
    negative = [name for name, value in sample.pod_values.items() if value < 0]
    if negative:
        # Usage in cores or bytes is never negative (metrics-server cannot report it); a custom
        # query that returns it is wrong, and a negative utilization would scale to nothing.
        return _failure(
            spec, f"{fetch}: pod {negative[0]} reported a negative usage {sample.pod_values[negative[0]]:g}"
        )
    if observation.pods is None:
        # Requests and readiness come from the pods: a Resource metric cannot do without them.
        return _failure(spec, f"{prefix}: unable to get pods while calculating replica count: none listed")
    cpu: CpuReadiness | None = None
    if resource == "cpu":
        if sample.timestamp is None or sample.window_seconds is None:
            return _failure(spec, f"{fetch}: a cpu sample needs its timestamp and window")
        cpu = CpuReadiness(
            evaluation_time=now,
            sample_timestamp=sample.timestamp,
            sample_window_seconds=sample.window_seconds,
            initialization_period_seconds=controller.cpu_initialization_period_seconds,
            initial_readiness_delay_seconds=controller.initial_readiness_delay_seconds,
        )
    # Non-finite samples (Prometheus NaN/Inf) are dropped: the pod then counts as missing.
    metrics = {name: to_milli(value) for name, value in sample.pod_values.items() if _finite(value)}
    spec_replicas = observation.scale.spec_replicas
    if utilization_target:
        target_utilization = spec.target.average_utilization
        assert target_utilization is not None
        result = get_resource_replicas(
            metrics,
            observation.pods,
            spec_replicas,
            target_utilization,
            resource,
            spec.container,
            tolerances,
            cpu,
        )
        if result.error is not None or result.replicas is None or result.utilization is None:
            return _failure(spec, f"{prefix}: {result.error or 'no proposal'}")
        assert result.raw_average_milli is not None
        return MetricResult(
            name=spec.name,
            current=float(result.utilization),
            target=spec.target.amount,
            proposal=result.replicas,
            valid=True,
            average_value=result.raw_average_milli / 1000.0,
        )
    plain = calc_plain_metric_replicas(
        metrics, observation.pods, spec_replicas, to_milli(spec.target.amount), tolerances, cpu
    )
    if plain.error is not None or plain.replicas is None or plain.usage_milli is None:
        return _failure(spec, f"{prefix}: {plain.error or 'no proposal'}")
    return MetricResult(
        name=spec.name,
        current=plain.usage_milli / 1000.0,
        target=spec.target.amount,
        proposal=plain.replicas,
        valid=True,
    )


def compute_replicas_for_metrics(
    rule: Rule,
    observation: Observation,
    tolerances: Tolerances,
    *,
    now: float,
    controller: ControllerConfig = _DEFAULT_CONTROLLER,
) -> MetricsOutcome:
    """The maximum proposal over valid metrics, with upstream's invalid-metric rules.

    Upstream: ``HorizontalController.computeReplicasForMetrics``: if every metric is invalid,
    or some are invalid and the valid maximum is below spec.replicas (would scale down), the
    result is -1 (do not act) and the first invalid metric's condition is reported.

    Parameters
    ----------
    rule:
        The rule (its ``metrics`` order is the output order).
    observation:
        Scale, pods and samples.
    tolerances:
        Per-direction tolerances.
    now:
        Evaluation time, unix seconds.
    controller:
        kube-controller-manager flags.

    Returns
    -------
    MetricsOutcome
        The combined proposal and every metric's result.
    """
    samples = {sample.name: sample for sample in observation.metrics}
    results: list[MetricResult] = []
    replicas = 0
    metric = ""
    invalid_count = 0
    invalid_reason = ""
    invalid_message = ""
    first_error = ""
    for spec in rule.metrics:
        result = compute_replicas_for_metric(
            spec, samples.get(spec.name), observation, tolerances, now=now, controller=controller
        )
        results.append(result)
        if not result.valid or result.proposal is None:
            if invalid_count == 0:
                invalid_reason = reasons.failed_get_metric_reason(spec.type)
                invalid_message = reasons.unable_to_compute_message(result.error or "")
                first_error = failed_metric_value_error(spec, result.error or "")
            invalid_count += 1
            continue
        if replicas == 0 or result.proposal > replicas:
            replicas = result.proposal
            metric = metric_description(spec)

    error = ""
    if invalid_count:
        error = (
            f"invalid metrics ({invalid_count} invalid out of {len(rule.metrics)}), "
            f"first error is: {first_error}"
        )
    spec_replicas = observation.scale.spec_replicas
    if invalid_count >= len(rule.metrics) or (invalid_count > 0 and replicas < spec_replicas):
        return MetricsOutcome(-1, "", tuple(results), invalid_count, invalid_reason, invalid_message, error)
    return MetricsOutcome(
        replicas, metric, tuple(results), invalid_count, invalid_reason, invalid_message, error
    )


__all__ = [
    "MAX_OBSERVATION",
    "MetricsOutcome",
    "compute_replicas_for_metric",
    "compute_replicas_for_metrics",
    "failed_metric_value_error",
    "get_usage_ratio_replica_count",
    "in_range",
    "metric_description",
    "per_pod_replicas",
    "resolve_tolerances",
]
