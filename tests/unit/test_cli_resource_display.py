"""describe and explain show Resource metrics as kubectl describes them: utilization and raw average."""

from __future__ import annotations

from typing import Any

import pytest

from ampscaler.cli.describe import _resource_metric_lines
from ampscaler.cli.explain import _target_text, _value_text
from ampscaler.model import MetricSpec, MetricTarget

CPU = MetricSpec(
    "cpu", "Resource", "", MetricTarget(type="Utilization", average_utilization=60), resource="cpu"
)
MEMORY_OF_APP = MetricSpec(
    "memory-app",
    "ContainerResource",
    "",
    MetricTarget(type="AverageValue", average_value=256 * 1024.0**2),
    resource="memory",
    container="app",
)


def test_describe_utilization_shows_percent_raw_average_and_the_default_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RESOURCE_WINDOW_SECONDS", raising=False)
    head, query = _resource_metric_lines(CPU, "shop", {"cpu": 45.0}, {"cpu": 0.45})
    assert head == '  "cpu" (resource cpu on pods, as a percentage of request):  45% (450m) / 60%'
    assert query == (
        "    query: (default, for the listed pods) sum by (pod) (rate(container_cpu_usage_seconds_total"
        '{namespace="shop", container!="", container!="POD"}[180s]))'
    )


def test_describe_container_average_value_in_quantities() -> None:
    head, _ = _resource_metric_lines(MEMORY_OF_APP, "shop", {"memory-app": 200 * 1024.0**2}, {})
    assert head == '  "memory-app" (resource memory of container "app" on pods):  200Mi / 256Mi'
    head, _ = _resource_metric_lines(MEMORY_OF_APP, "shop", {}, {})
    assert head.endswith("<unknown> / 256Mi")


def row(
    resource: str | None, target_type: str, value: float | None, target: float, **extra: Any
) -> dict[str, Any]:
    return {
        "resource": resource,
        "type": "Resource",
        "value": value,
        "target": {"type": target_type, "value": target},
    } | extra


def test_explain_value_and_target_of_resource_metrics() -> None:
    cpu = row("cpu", "Utilization", 45, 60, averageValue=0.45)
    assert (_value_text(cpu), _target_text(cpu)) == ("45% of requests (450m per pod)", "60% (Utilization)")
    memory = row("memory", "AverageValue", 200 * 1024.0**2, 256 * 1024.0**2)
    assert (_value_text(memory), _target_text(memory)) == ("200Mi per pod", "256Mi (AverageValue)")
    pods = row(None, "AverageValue", 12.5, 10) | {"type": "Pods"}
    assert (_value_text(pods), _target_text(pods)) == ("12.5 per pod", "10 (AverageValue)")
