"""Quantities and metric names shared by the importers."""

from __future__ import annotations

import pytest

from ampscaler.importers import import_manifests
from ampscaler.importers.common import unique_metric_name
from ampscaler.quantity import parse_quantity


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10", 10),
        (10, 10),
        (2.5, 2.5),
        ("500m", 0.5),
        ("1500m", 1.5),
        ("2k", 2000),
        ("1Ki", 1024),
        ("512Mi", 536870912),
        ("1e3", 1000),
        ("1E", 10**18),
        ("100u", 0.0001),
        (".5", 0.5),
    ],
)
def test_parse_quantity_reads_kubernetes_suffixes(raw: object, expected: float) -> None:
    assert parse_quantity(raw) == expected


@pytest.mark.parametrize("raw", ["ten", "1 k", "", None, True, "1KiB"])
def test_parse_quantity_rejects_non_quantities(raw: object) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(raw)


def test_unique_metric_name_sanitizes_and_suffixes() -> None:
    taken: set[str] = set()
    assert unique_metric_name("queue.depth|prod", taken) == "queue_depth_prod"
    assert unique_metric_name("queue.depth|prod", taken) == "queue_depth_prod-2"
    assert unique_metric_name("5xx_rate", taken) == "m5xx_rate"
    assert len(unique_metric_name("x" * 80, taken)) == 63


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("maxReplicas", None, "spec.maxReplicas must be an integer, got None"),
        ("maxReplicas", "10", "spec.maxReplicas must be an integer, got str"),
        ("minReplicas", 1.5, "spec.minReplicas must be an integer, got 1.5"),
        ("minReplicas", True, "spec.minReplicas must be an integer, got True"),
    ],
)
def test_import_hpa_non_integer_replicas_is_a_problem_not_an_internal_error(
    field: str, value: object, problem: str
) -> None:
    manifest = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, field: value},
    }
    (result,) = import_manifests([manifest])
    assert not result.unexpected
    assert [p.reason for p in result.problems] == [problem]


@pytest.mark.parametrize("field", ["minReplicaCount", "maxReplicaCount", "cooldownPeriod", "pollingInterval"])
def test_import_scaled_object_non_integer_counts_are_a_problem(field: str) -> None:
    manifest = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"name": "web"}, field: None, "triggers": []},
    }
    (result,) = import_manifests([manifest])
    assert not result.unexpected
    assert [p.reason for p in result.problems] == [f"spec.{field} must be an integer, got None"]
