"""CPU/memory HPAs -> Resource/ContainerResource rule metrics, and HPAs the API server would refuse."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ampscaler.importers import AdapterConfig, import_manifests, load_manifests
from tests.unit.importers.support import assert_valid_rule, by_name, fixture_text, problems

CPU_50 = {
    "name": "cpu",
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
}


def test_php_apache_cpu_hpa_from_the_kubernetes_docs_converts_and_validates() -> None:
    [result] = import_manifests(load_manifests(fixture_text("php-apache-hpa.yaml")))

    assert result.problems == [] and result.notes == []
    assert result.document == {
        "apiVersion": "ampscaler/v1",
        "target": {"namespace": "default", "kind": "Deployment", "name": "php-apache"},
        "minReplicas": 1,
        "maxReplicas": 10,
        "metrics": [CPU_50],
    }
    assert_valid_rule(result.document)


def test_v1_target_cpu_utilization_and_v2beta1_resource_targets_convert() -> None:
    results = by_name(import_manifests(load_manifests(fixture_text("hpa-cpu-legacy.yaml"))))

    assert results["php-apache"].document is not None
    assert results["php-apache"].document["metrics"] == [CPU_50]
    podinfo = results["podinfo"].document
    assert podinfo is not None
    assert podinfo["metrics"] == [
        {
            "name": "cpu",
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 99}},
        },
        {
            "name": "memory",
            "type": "Resource",
            "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": 200 * 2**20}},
        },
        {
            "name": "cpu-podinfod",
            "type": "ContainerResource",
            "containerResource": {
                "name": "cpu",
                "container": "podinfod",
                "target": {"type": "Utilization", "averageUtilization": 80},
            },
        },
    ]
    for result in results.values():
        if result.document is not None:
            assert_valid_rule(result.document)


def test_mixed_cpu_and_custom_metric_hpa_converts_whole(configmap_adapter: AdapterConfig) -> None:
    results = by_name(
        import_manifests(load_manifests(fixture_text("hpa-cpu-legacy.yaml")), None, configmap_adapter)
    )

    custom = results["podinfo-custom"]
    assert custom.problems == []
    assert custom.document is not None
    assert [(m["name"], m["type"]) for m in custom.document["metrics"]] == [
        ("http_requests_per_second", "Pods"),
        ("cpu", "Resource"),
    ]
    # resourceRules.cpu of the adapter config: its [3m] range becomes the metric's window.
    assert custom.document["metrics"][1]["series"] == {"windowSeconds": 180}
    assert_valid_rule(custom.document)


def test_v1_without_cpu_target_gets_the_api_servers_default_80_percent() -> None:
    manifest = load_manifests(fixture_text("hpa-cpu-legacy.yaml"))[0]
    del manifest["spec"]["targetCPUUtilizationPercentage"]

    [result] = import_manifests([manifest])

    assert result.document is not None
    assert result.document["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 80,
    }
    assert result.notes == ["no metrics: the API server defaults to cpu Utilization 80%"]


def test_hpa_target_goes_by_the_field_set_as_the_controller_does() -> None:
    manifest = load_manifests(fixture_text("php-apache-hpa.yaml"))[0]
    manifest["spec"]["metrics"][0]["resource"]["target"] = {"type": "Utilization", "averageValue": "500m"}

    [result] = import_manifests([manifest])

    assert result.document is not None
    assert result.document["metrics"][0]["resource"]["target"] == {
        "type": "AverageValue",
        "averageValue": 0.5,
    }
    assert "the HPA goes by the field set, so the rule's target is AverageValue" in result.notes[0]
    assert_valid_rule(result.document)


def test_resource_other_than_cpu_or_memory_is_reported_per_metric() -> None:
    manifest = load_manifests(fixture_text("php-apache-hpa.yaml"))[0]
    storage = copy.deepcopy(manifest["spec"]["metrics"][0])
    storage["resource"]["name"] = "ephemeral-storage"
    manifest["spec"]["metrics"].append(storage)

    [result] = import_manifests([manifest])

    assert result.document is not None and len(result.document["metrics"]) == 1
    assert problems(result) == [
        (
            "spec.metrics[1]",
            "Resource metric ephemeral-storage: ampscaler reads cpu and memory usage from cAdvisor series; "
            "there is no default series for 'ephemeral-storage'",
        )
    ]


def _php(**spec: Any) -> dict[str, Any]:
    manifest = load_manifests(fixture_text("php-apache-hpa.yaml"))[0]
    manifest["spec"].update(spec)
    return manifest


def _metric(**body: Any) -> dict[str, Any]:
    return {"type": "Resource", "resource": {"name": "cpu", **body}}


# Expected messages: pkg/apis/autoscaling/validation/validation.go, as field.Error prints them.
@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"maxReplicas": 0}, "spec.maxReplicas: Invalid value: 0: must be greater than 0"),
        (
            {"minReplicas": 5, "maxReplicas": 3},
            "spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`",
        ),
        (
            # Allowed only with HPAScaleToZero, and then only next to an Object or External metric.
            {"minReplicas": 0},
            "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas",
        ),
        ({"scaleTargetRef": {"kind": "Deployment"}}, "spec.scaleTargetRef.name: Required value"),
        (
            {"scaleTargetRef": {"kind": "Deployment", "name": "a/b"}},
            "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
        ),
        (
            {"metrics": [_metric(target={"type": "Utilization", "averageUtilization": 0})]},
            "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
        ),
        (
            {"metrics": [_metric(target={"type": "Utilization"})]},
            "spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization",
        ),
        (
            {
                "metrics": [
                    _metric(target={"type": "Utilization", "averageUtilization": 50, "averageValue": "1"})
                ]
            },
            "spec.metrics[0].resource.target.averageValue: Forbidden: may not set both a target raw value and a target utilization",
        ),
        (
            {"metrics": [_metric(target={"type": "AverageValue", "averageValue": "-1"})]},
            'spec.metrics[0].resource.target.averageValue: Invalid value: "-1": must be positive',
        ),
        (
            {
                "metrics": [
                    {
                        "type": "Resource",
                        "pods": {},
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 5},
                        },
                    }
                ]
            },
            "spec.metrics[0].pods: Forbidden: must populate the given metric source only",
        ),
        (
            {"metrics": [{"type": "Cpu"}]},
            'spec.metrics[0].type: Unsupported value: "Cpu": supported values: "ContainerResource", "External", "Object", "Pods", "Resource"',
        ),
        (
            {
                "metrics": [
                    {
                        "type": "ContainerResource",
                        "containerResource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 5},
                        },
                    }
                ]
            },
            "spec.metrics[0].containerResource.container: Required value: must specify a container",
        ),
        (
            {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 3601}}},
            "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 3601: must be less than or equal to 3600",
        ),
        (
            {"behavior": {"scaleUp": {"policies": []}}},
            "spec.behavior.scaleUp.policies: Required value: must specify at least one Policy",
        ),
        (
            {"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}}},
            "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 1801: must be less than or equal to 1800",
        ),
        (
            {
                "behavior": {
                    "scaleUp": {
                        "selectPolicy": "Maximum",
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                    }
                }
            },
            'spec.behavior.scaleUp.selectPolicy: Unsupported value: "Maximum": supported values: "Disabled", "Max", "Min"',
        ),
    ],
)
def test_hpa_the_api_server_would_reject_is_refused_with_its_reason(
    spec: dict[str, Any], reason: str
) -> None:
    [result] = import_manifests([_php(**spec)])

    assert result.document is None
    assert (None, f"the API server would reject this HorizontalPodAutoscaler: {reason}") in problems(result)


def test_v1_cpu_target_below_one_is_refused_at_its_v2_path() -> None:
    manifest = load_manifests(fixture_text("hpa-cpu-legacy.yaml"))[0]
    manifest["spec"]["targetCPUUtilizationPercentage"] = 0

    [result] = import_manifests([manifest])

    assert problems(result) == [
        (
            None,
            "the API server would reject this HorizontalPodAutoscaler: "
            "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
        )
    ]


def test_refusal_holds_even_for_a_field_ampscaler_would_drop() -> None:
    # metric.name with '/' is invalid for the API server; the Resource conversion never reads it.
    manifest = _php(
        metrics=[
            _metric(target={"type": "Utilization", "averageUtilization": 50}),
            {
                "type": "External",
                "external": {"metric": {"name": "a/b"}, "target": {"type": "Value", "value": "1"}},
            },
        ]
    )

    [result] = import_manifests([manifest])

    assert result.document is None
    assert problems(result) == [
        (
            None,
            "the API server would reject this HorizontalPodAutoscaler: "
            "spec.metrics[1].external.metric.name: Invalid value: \"a/b\": may not contain '/'",
        )
    ]
