"""HPA condition reasons and messages, verbatim from upstream, plus the human reason sentence.

One reason word per outcome, shared by the decision's conditions, the audit log and metrics
(house style: HPA ``horizontal.go`` SucceededRescale/FailedRescale).
"""

from __future__ import annotations

from ampscaler.model import MetricType

# AbleToScale
READY_FOR_NEW_SCALE = "ReadyForNewScale"
SCALE_UP_STABILIZED = "ScaleUpStabilized"
SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
# ScalingActive
VALID_METRIC_FOUND = "ValidMetricFound"
SCALING_DISABLED = "ScalingDisabled"
FAILED_GET_PODS_METRIC = "FailedGetPodsMetric"
FAILED_GET_OBJECT_METRIC = "FailedGetObjectMetric"
FAILED_GET_EXTERNAL_METRIC = "FailedGetExternalMetric"
FAILED_GET_RESOURCE_METRIC = "FailedGetResourceMetric"
FAILED_GET_CONTAINER_RESOURCE_METRIC = "FailedGetContainerResourceMetric"
# ScalingLimited
TOO_FEW_REPLICAS = "TooFewReplicas"
TOO_MANY_REPLICAS = "TooManyReplicas"
DESIRED_WITHIN_RANGE = "DesiredWithinRange"
SCALE_UP_LIMIT = "ScaleUpLimit"
SCALE_DOWN_LIMIT = "ScaleDownLimit"
# ampscaler-only outcomes (KEDA-style extras), CamelCase like the upstream words.
FALLBACK_ACTIVE = "FallbackActive"
SCALED_TO_ZERO = "ScaledToZero"
ACTIVATED_FROM_ZERO = "ActivatedFromZero"
BELOW_ACTIVATION = "BelowActivationThreshold"

# Messages, verbatim from horizontal.go.
MSG_READY_FOR_NEW_SCALE = "recommended size matches current size"
MSG_SCALE_UP_STABILIZED = (
    "recent recommendations were lower than current one, applying the lowest recent recommendation"
)
MSG_SCALE_DOWN_STABILIZED = (
    "recent recommendations were higher than current one, applying the highest recent recommendation"
)
MSG_SCALING_DISABLED = "scaling is disabled since the replica count of the target is zero"
MSG_TOO_FEW_REPLICAS = "the desired replica count is less than the minimum replica count"
MSG_TOO_MANY_REPLICAS = "the desired replica count is more than the maximum replica count"
MSG_DESIRED_WITHIN_RANGE = "the desired count is within the acceptable range"
MSG_SCALE_UP_LIMIT = "the desired replica count is increasing faster than the maximum scale rate"
MSG_SCALE_DOWN_LIMIT = "the desired replica count is decreasing faster than the maximum scale rate"

# Rescale reasons, verbatim from reconcileAutoscaler.
ABOVE_MAX = "Current number of replicas above Spec.MaxReplicas"
BELOW_MIN = "Current number of replicas below Spec.MinReplicas"
ALL_BELOW_TARGET = "All metrics below target"

_FAILED_GET = {
    "Pods": FAILED_GET_PODS_METRIC,
    "Object": FAILED_GET_OBJECT_METRIC,
    "External": FAILED_GET_EXTERNAL_METRIC,
    "Resource": FAILED_GET_RESOURCE_METRIC,
    "ContainerResource": FAILED_GET_CONTAINER_RESOURCE_METRIC,
}


def failed_get_metric_reason(metric_type: MetricType) -> str:
    """The ScalingActive=False reason for a metric of ``metric_type`` that could not be used.

    Upstream: the reasons passed to ``getUnableComputeReplicaCountCondition``.
    """
    return _FAILED_GET[metric_type]


def unable_to_compute_message(error: str) -> str:
    """Upstream: ``getUnableComputeReplicaCountCondition`` message."""
    return f"the HPA was unable to compute the replica count: {error}"


def valid_metric_found_message(metric: str) -> str:
    """Upstream: the ValidMetricFound message of computeReplicasForMetrics."""
    return f"the HPA was able to successfully calculate a replica count from {metric}"


def rescale_reason(metric: str, proposed: int, current: int) -> str:
    """The human sentence for a metric-driven proposal, as upstream's rescale event reason.

    Upstream: ``rescaleReason`` in reconcileAutoscaler: "<metric> above target" when scaling up,
    "All metrics below target" when scaling down.

    Parameters
    ----------
    metric:
        Description of the metric that produced the proposal ("pods metric rps").
    proposed:
        The pre-normalization proposal.
    current:
        The current replica count.

    Returns
    -------
    str
        The sentence, or "" when the proposal equals the current count.
    """
    if proposed > current:
        return f"{metric} above target"
    if proposed < current:
        return ALL_BELOW_TARGET
    return ""


def mode_prefixed(mode: str, reason: str, current: int, desired: int) -> str:
    """Prefix the reason for paused / dry-run rules so the log says what would have happened.

    Parameters
    ----------
    mode:
        "active", "paused" or "dryRun".
    reason:
        The sentence for the evaluation itself.
    current, desired:
        Replica counts before and after.

    Returns
    -------
    str
        ``reason`` unchanged when active; otherwise "paused: would scale 3 -> 4; <reason>" or
        "paused: no change; <reason>" (and the same with "dry-run:").
    """
    if mode == "active":
        return reason
    prefix = "paused" if mode == "paused" else "dry-run"
    head = f"{prefix}: would scale {current} -> {desired}" if desired != current else f"{prefix}: no change"
    return f"{head}; {reason}" if reason else head
