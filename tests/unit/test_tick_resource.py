"""The tick's observation step for Resource metrics: pods are listed and handed to their queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ampscaler.engine.types import MetricObservation, PodInfo
from ampscaler.model import MetricSpec, MetricTarget, Rule, ScaleTargetRef
from ampscaler.tick import needs_pods, observe_metrics


@dataclass(frozen=True)
class Cost:
    samples_processed: int | None = None


@dataclass(frozen=True)
class Measured:
    observation: MetricObservation
    stats: Cost = field(default_factory=Cost)


class RecordingMetrics:
    """A MetricsSource that answers nothing and remembers which pods each query was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Sequence[PodInfo] | None]] = []

    def observe(
        self,
        rule: Rule,
        spec: MetricSpec,
        at: float,
        deadline: float,
        *,
        pods: Sequence[PodInfo] | None = None,
    ) -> MetricObservation:
        return self.observe_with_stats(rule, spec, at, deadline, pods=pods).observation

    def observe_with_stats(
        self,
        rule: Rule,
        spec: MetricSpec,
        at: float,
        deadline: float,
        *,
        pods: Sequence[PodInfo] | None = None,
    ) -> Measured:
        self.calls.append((spec.name, pods))
        return Measured(MetricObservation(spec.name, value=1.0))


def rule_with(*metrics: MetricSpec, min_replicas: int = 1) -> Rule:
    return Rule(
        name="web",
        target=ScaleTargetRef("prod", "shop", "Deployment", "web"),
        min_replicas=min_replicas,
        max_replicas=10,
        metrics=metrics,
    )


CPU = MetricSpec(
    "cpu", "Resource", "", MetricTarget(type="Utilization", average_utilization=60), resource="cpu"
)
MEMORY_OF_APP = MetricSpec(
    "memory-app",
    "ContainerResource",
    "",
    MetricTarget(type="AverageValue", average_value=2**28),
    resource="memory",
    container="app",
)
BACKLOG = MetricSpec("backlog", "External", "sum(q)", MetricTarget(type="AverageValue", average_value=10))


def test_needs_pods_for_resource_and_container_resource_metrics() -> None:
    assert needs_pods(rule_with(CPU))
    assert needs_pods(rule_with(MEMORY_OF_APP))
    assert not needs_pods(rule_with(BACKLOG))


def test_observe_metrics_hands_the_listed_pods_to_resource_queries_only() -> None:
    metrics = RecordingMetrics()
    pods = (PodInfo("web-1"), PodInfo("web-2"))

    observe_metrics(metrics, rule_with(CPU, BACKLOG, MEMORY_OF_APP), 100.0, 105.0, pods)

    assert metrics.calls == [("cpu", pods), ("backlog", None), ("memory-app", pods)]
