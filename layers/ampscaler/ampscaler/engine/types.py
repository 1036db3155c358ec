"""Values the engine consumes and produces: observations, stored state, controller flags, decisions.

Every type is a frozen dataclass so state is a value: ``decide`` returns a new ``EngineState``
and never mutates the one it was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

PodPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"]
Action = Literal["scale", "none"]
ConditionType = Literal["AbleToScale", "ScalingActive", "ScalingLimited"]


@dataclass(frozen=True)
class ContainerInfo:
    """One container of a pod and its resource requests ("cpu" in cores, "memory" in bytes).

    A resource missing from ``requests`` is a container without that request.
    """

    name: str
    requests: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PodInfo:
    """What the engine needs to know about one pod selected by the target's scale selector."""

    name: str
    phase: PodPhase = "Running"
    ready: bool = True
    # True when the pod has a deletionTimestamp.
    deleting: bool = False
    # Unix seconds of status.startTime and of the Ready condition's lastTransitionTime;
    # None when the API has none (the HPA then treats the pod as unready for CPU).
    start_time: float | None = None
    ready_transition_time: float | None = None
    # Requests summed over the pod's containers, per resource; a resource is absent when some
    # container lacks a request for it (``containers`` then names which).
    requests: Mapping[str, float] = field(default_factory=dict)
    containers: tuple[ContainerInfo, ...] = ()


@dataclass(frozen=True)
class ScaleObservation:
    """The target's /scale subresource: spec.replicas and status.replicas."""

    spec_replicas: int
    status_replicas: int


@dataclass(frozen=True)
class MetricObservation:
    """One metric's query result for this evaluation.

    Exactly one of ``value`` (Object/External), ``pod_values`` (Pods; Resource/ContainerResource:
    each pod's usage in cores or bytes, the named container's alone for ContainerResource) or
    ``error`` is set.
    """

    name: str
    value: float | None = None
    pod_values: Mapping[str, float] | None = None
    error: str | None = None
    # Resource/ContainerResource: unix seconds the samples describe and the window they cover
    # (the HPA's PodMetric Timestamp and Window), used by the CPU readiness rules.
    timestamp: float | None = None
    window_seconds: float | None = None


@dataclass(frozen=True)
class Observation:
    """Everything observed about a rule's target in one evaluation."""

    scale: ScaleObservation
    metrics: tuple[MetricObservation, ...]
    # None when the caller did not list pods (allowed for Object/External-only rules).
    pods: tuple[PodInfo, ...] | None = None


@dataclass(frozen=True)
class Recommendation:
    """One raw (pre-stabilization) recommendation, as the HPA keeps in ``recommendations``."""

    time: float
    replicas: int


@dataclass(frozen=True)
class ScaleEvent:
    """One applied scale change, as the HPA keeps in ``scaleUpEvents``/``scaleDownEvents``.

    ``change`` is the absolute replica change.
    """

    time: float
    change: int


@dataclass(frozen=True)
class EngineState:
    """Everything the engine remembers between evaluations of one rule."""

    recommendations: tuple[Recommendation, ...] = ()
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()
    consecutive_failures: int = 0
    # Unix time since which every metric has been at or below its activation threshold.
    below_activation_since: float | None = None


@dataclass(frozen=True)
class ControllerConfig:
    """kube-controller-manager flags that shape the HPA computation, with their defaults."""

    # --horizontal-pod-autoscaler-tolerance
    tolerance: float = 0.1
    # --horizontal-pod-autoscaler-downscale-stabilization
    downscale_stabilization_seconds: int = 300
    # scaleUpLimitFactor / scaleUpLimitMinimum constants of the legacy (no behavior) path.
    scale_up_limit_factor: float = 2.0
    scale_up_limit_minimum: float = 4.0
    # --horizontal-pod-autoscaler-cpu-initialization-period
    cpu_initialization_period_seconds: int = 300
    # --horizontal-pod-autoscaler-initial-readiness-delay
    initial_readiness_delay_seconds: int = 30


@dataclass(frozen=True)
class MetricResult:
    """What one metric contributed to the decision."""

    name: str
    # The measured value in the target's terms: the per-pod average for AverageValue/Pods,
    # the raw value for Value targets. None when the metric failed.
    current: float | None
    target: float
    # Replica count this metric alone proposes; None when invalid.
    proposal: int | None
    valid: bool
    error: str | None = None
    # Utilization targets: ``current`` is the utilization in percent and this the raw
    # per-pod average usage (cores or bytes), as the HPA's status reports both.
    average_value: float | None = None


@dataclass(frozen=True)
class Condition:
    """An HPA-style status condition (AbleToScale, ScalingActive, ScalingLimited)."""

    type: ConditionType
    status: bool
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Decision:
    """The engine's answer for one evaluation of one rule."""

    desired_replicas: int
    current_replicas: int
    action: Action
    # A sentence for people: "pods metric rps above target".
    reason: str
    metrics: tuple[MetricResult, ...]
    conditions: tuple[Condition, ...]
    state: EngineState
    # Paused and dry-run rules get action "none" with the would-be count in desired_replicas
    # and extra["mode"] set, so no caller can patch them by mistake.
    fallback_active: bool = False
    extra: Mapping[str, object] = field(default_factory=dict)
