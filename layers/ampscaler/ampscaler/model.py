"""The typed rule model: what one SSM parameter (one rule) holds once parsed and defaulted.

Field names follow the HPA's autoscaling/v2 spec in snake_case. ``ampscaler.rule`` parses
and validates raw JSON/YAML into these frozen dataclasses; the engine only ever sees them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

API_VERSION = "ampscaler/v1"

MetricType = Literal["Pods", "Object", "External", "Resource", "ContainerResource"]
TargetType = Literal["Value", "AverageValue", "Utilization"]
# The compute resources a Resource/ContainerResource metric may name (the HPA's cpu and memory).
ResourceName = Literal["cpu", "memory"]
PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]
FallbackBehavior = Literal["static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"]

DEFAULT_COOLDOWN_PERIOD_SECONDS = 300
DEFAULT_POD_LABEL = "pod"


@dataclass(frozen=True)
class ScaleTargetRef:
    """The workload whose /scale subresource a rule drives."""

    cluster: str
    namespace: str
    kind: str
    name: str
    # "group/version" of the kind; apps/v1 for Deployment and StatefulSet, required otherwise.
    api_version: str = "apps/v1"

    @property
    def reference(self) -> str:
        """``kind/name`` as ``kubectl get hpa`` prints it in REFERENCE."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class MetricTarget:
    """autoscaling/v2 MetricTarget.

    ``Utilization`` (percent of the pods' requests) is only valid on Resource/ContainerResource.
    """

    type: TargetType
    value: float | None = None
    average_value: float | None = None
    average_utilization: int | None = None

    @property
    def amount(self) -> float:
        """The number the metric is compared against, whichever field holds it."""
        if self.type == "Utilization":
            result: float | None = self.average_utilization
        else:
            result = self.value if self.type == "Value" else self.average_value
        assert result is not None, "parse_rule guarantees the field matching the type is set"
        return result


@dataclass(frozen=True)
class ResourceSeries:
    """Where a Resource/ContainerResource metric's usage lives in Prometheus (cAdvisor by default).

    Every field None means "the stack's setting" (settings.py), so a stack whose collector
    relabels sets it once and a rule overrides only what differs.
    """

    # Series names: a counter of CPU seconds, a gauge of bytes.
    cpu_metric: str | None = None
    memory_metric: str | None = None
    namespace_label: str | None = None
    pod_label: str | None = None
    container_label: str | None = None
    # The rate() window of the CPU query; also the sample window the HPA's CPU rules use.
    window_seconds: int | None = None


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a rule: PromQL-backed, or a cpu/memory Resource metric with a default query."""

    name: str
    type: MetricType
    # For Resource/ContainerResource an empty query means the documented default built from
    # ``series`` (ampscaler.resource_queries); a non-empty one replaces it.
    query: str
    target: MetricTarget
    pod_label: str = DEFAULT_POD_LABEL
    # KEDA semantics: the workload is active while any metric is strictly above its threshold.
    activation_threshold: float = 0.0
    # None: an empty query result is an error. A number: an empty result means that value.
    empty_as: float | None = None
    # Resource/ContainerResource only: which resource, which container (ContainerResource),
    # and the series/label names of the default query.
    resource: ResourceName | None = None
    container: str | None = None
    series: ResourceSeries | None = None


@dataclass(frozen=True)
class ScalingPolicy:
    """autoscaling/v2 HPAScalingPolicy."""

    type: PolicyType
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    """autoscaling/v2 HPAScalingRules after API-server defaulting.

    ``stabilization_window_seconds`` stays None only for scaleDown when the user left it out:
    the controller then fills in its --horizontal-pod-autoscaler-downscale-stabilization flag.
    ``tolerance`` None means the controller-wide tolerance applies.
    """

    stabilization_window_seconds: int | None
    select_policy: SelectPolicy
    policies: tuple[ScalingPolicy, ...]
    tolerance: float | None = None


@dataclass(frozen=True)
class Behavior:
    """autoscaling/v2 HorizontalPodAutoscalerBehavior after API-server defaulting."""

    scale_up: ScalingRules
    scale_down: ScalingRules


@dataclass(frozen=True)
class Fallback:
    """KEDA-style fallback when every metric keeps failing."""

    failure_threshold: int
    replicas: int
    behavior: FallbackBehavior = "static"


@dataclass(frozen=True)
class PrometheusSource:
    """Where a rule's queries go when not to the stack's AMP workspace."""

    workspace_id: str | None = None
    region: str | None = None
    url: str | None = None
    sigv4: bool = False


@dataclass(frozen=True)
class Rule:
    """One scaling rule: the HPA spec plus ampscaler's extras."""

    name: str
    target: ScaleTargetRef
    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    # None: the rule had no "behavior" and the controller's legacy (pre-behavior) limits apply.
    behavior: Behavior | None = None
    # None: the controller-wide tolerance (0.1 by default) applies.
    tolerance: float | None = None
    fallback: Fallback | None = None
    paused: bool = False
    dry_run: bool = False
    cooldown_period_seconds: int = DEFAULT_COOLDOWN_PERIOD_SECONDS
    # None: evaluated every tick of the scaler function.
    evaluation_interval_seconds: int | None = None
    prometheus: PrometheusSource | None = None
    # The raw document the rule was parsed from, kept so decisions can be replayed.
    source: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def metric(self, name: str) -> MetricSpec:
        """The metric called ``name``; KeyError if the rule has none."""
        for spec in self.metrics:
            if spec.name == name:
                return spec
        raise KeyError(name)
