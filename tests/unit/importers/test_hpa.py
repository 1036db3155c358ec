"""HorizontalPodAutoscaler manifests -> rule documents, through the Prometheus Adapter config."""

from __future__ import annotations

import pytest

from ampscaler.importers import AdapterConfig, import_manifests, load_manifests
from tests.unit.importers.support import assert_valid_rule, by_name, fixture_text, problems


def test_hpa_v2_pods_external_object_and_cpu_convert_whole_with_adapter_queries(
    configmap_adapter: AdapterConfig,
) -> None:
    [result] = import_manifests(load_manifests(fixture_text("hpa-v2.yaml")), "prod", configmap_adapter)

    assert result.document == {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "frontend"},
        "minReplicas": 2,
        "maxReplicas": 20,
        "metrics": [
            {
                "name": "http_requests_per_second",
                "type": "Pods",
                # The walkthrough's query with LabelMatchers = the namespace only (ampscaler selects
                # the pods itself) and GroupBy = the label overridden to mean pod.
                "query": (
                    'sum(rate(http_requests_total{kubernetes_namespace="shop"}[2m])) by (kubernetes_pod_name)'
                ),
                "podLabel": "kubernetes_pod_name",
                "target": {"type": "AverageValue", "averageValue": 10},
            },
            {
                "name": "queue_messages_ready",
                "type": "External",
                "query": 'sum(rabbitmq_queue_messages_ready{queue="orders",namespace="shop"}) by (queue)',
                "target": {"type": "AverageValue", "averageValue": 30},
            },
            {
                "name": "requests_per_second",
                "type": "Object",
                "query": (
                    'sum(rate(nginx_ingress_controller_requests_total{namespace="shop",ingress="main-route"}[1m]))'
                    " by (ingress)"
                ),
                "target": {"type": "Value", "value": 2000},
            },
            {
                # The autoscaling/v2 shape as written; resourceRules.cpu's [3m] range is the window.
                "name": "cpu",
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
                "series": {"windowSeconds": 180},
            },
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                ],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "selectPolicy": "Min",
                "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
            },
        },
    }
    assert problems(result) == []
    assert_valid_rule(result.document)


def test_hpa_v2beta2_selector_expressions_and_unnamespaced_external_rule(bare_adapter: AdapterConfig) -> None:
    [result] = import_manifests(load_manifests(fixture_text("hpa-v2beta2.yaml")), None, bare_adapter)

    assert result.document == {
        "apiVersion": "ampscaler/v1",
        # No --cluster: left out so the scaler's CLUSTER_NAME applies.
        "target": {"namespace": "mesh", "kind": "StatefulSet", "name": "catalog"},
        "minReplicas": 1,
        "maxReplicas": 12,
        "metrics": [
            {
                "name": "envoy_upstream_rq_per_second",
                "type": "Pods",
                # Selector requirements sorted by key: DoesNotExist -> ="", In -> =~ sorted values.
                "query": (
                    'sum(rate(envoy_cluster_upstream_rq{canary="",envoy_response_code_class=~"2|5",'
                    'namespace="mesh",envoy_cluster_name="local_app"}[1m])) by (pod)'
                ),
                "podLabel": "pod",
                "target": {"type": "AverageValue", "averageValue": 1.5},
            },
            {
                "name": "sqs_approximate_number_of_messages_visible",
                "type": "External",
                # resources.namespaced: false -> no namespace matcher.
                "query": (
                    'max(aws_sqs_approximate_number_of_messages_visible_average{queue_name="catalog-updates"})'
                    " by (queue_name)"
                ),
                "target": {"type": "Value", "value": 100},
            },
        ],
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": 600,
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
            }
        },
    }
    assert problems(result) == [
        (
            "spec.metrics[2]",
            "rules[1].metricsQuery uses <<range $i, $l := .GroupBySlice>>; only .Series, .LabelMatchers, "
            ".GroupBy can be rendered",
        )
    ]
    assert_valid_rule(result.document)


def test_hpa_v2beta1_fields_map_to_v2_targets(configmap_adapter: AdapterConfig) -> None:
    [result] = import_manifests(load_manifests(fixture_text("hpa-v2beta1.yaml")), "prod", configmap_adapter)

    assert result.document is not None
    assert result.document["target"] == {
        "cluster": "prod",
        "namespace": "jobs",
        "kind": "Deployment",
        "name": "worker",
    }
    assert (result.document["minReplicas"], result.document["maxReplicas"]) == (1, 30)
    assert "behavior" not in result.document
    assert result.document["metrics"] == [
        {
            "name": "http_requests_per_second",
            "type": "Pods",
            "query": (
                'sum(rate(http_requests_total{kubernetes_namespace="jobs"}[2m])) by (kubernetes_pod_name)'
            ),
            "podLabel": "kubernetes_pod_name",
            "target": {"type": "AverageValue", "averageValue": 20},
        },
        {
            # Object.target (v2beta1) -> describedObject; template "<<.Resource>>" -> label service.
            "name": "requests_per_second",
            "type": "Object",
            "query": (
                'sum(rate(nginx_ingress_controller_requests_total{namespace="jobs",service="worker-api"}[1m]))'
                " by (service)"
            ),
            "target": {"type": "Value", "value": 50},
        },
        {
            # averageValue set -> AverageValue, as the apiserver converts v2beta1.
            "name": "requests_per_second-2",
            "type": "Object",
            "query": (
                'sum(rate(nginx_ingress_controller_requests_total{namespace="jobs",ingress="worker-ingress"}[1m]))'
                " by (ingress)"
            ),
            "target": {"type": "AverageValue", "averageValue": 5},
        },
        {
            "name": "queue_messages_ready",
            "type": "External",
            "query": 'sum(rabbitmq_queue_messages_ready{queue="jobs",namespace="jobs"}) by (queue)',
            "target": {"type": "AverageValue", "averageValue": 25},
        },
        {
            "name": "queue_messages_ready-2",
            "type": "External",
            "query": 'sum(rabbitmq_queue_messages_ready{queue="retries",namespace="jobs"}) by (queue)',
            "target": {"type": "Value", "value": 100},
        },
        {
            # v2beta1 targetAverageValue on a Resource metric -> AverageValue, in bytes.
            "name": "memory",
            "type": "Resource",
            "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": 512 * 2**20}},
        },
    ]
    assert problems(result) == []
    assert_valid_rule(result.document)


def test_hpa_list_cpu_and_container_memory_convert_keda_owned_is_skipped_and_v1_annotation_converts(
    configmap_adapter: AdapterConfig,
) -> None:
    results = by_name(
        import_manifests(load_manifests(fixture_text("hpa-list.yaml")), "prod", configmap_adapter)
    )

    assert list(results) == ["api", "keda-hpa-orders", "legacy"]
    assert results["api"].problems == []
    assert results["api"].document is not None
    assert results["api"].document["metrics"] == [
        {
            "name": "cpu",
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
            "series": {"windowSeconds": 180},
        },
        {
            # The default name for a ContainerResource metric: <resource>-<container>. The adapter's
            # memory resourceRule is the default series, so no override.
            "name": "memory-app",
            "type": "ContainerResource",
            "containerResource": {
                "name": "memory",
                "container": "app",
                "target": {"type": "AverageValue", "averageValue": 2**30},
            },
        },
    ]
    assert_valid_rule(results["api"].document)
    assert problems(results["keda-hpa-orders"]) == [
        (None, "created by KEDA for ScaledObject 'orders'; import the ScaledObject instead")
    ]
    assert results["legacy"].problems == []
    assert results["legacy"].document == {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "prod", "namespace": "default", "kind": "Deployment", "name": "legacy"},
        "minReplicas": 1,
        "maxReplicas": 5,
        "metrics": [
            {
                "name": "queue_messages_ready",
                "type": "External",
                "query": 'sum(rabbitmq_queue_messages_ready{queue="legacy",namespace="default"}) by (queue)',
                "target": {"type": "AverageValue", "averageValue": 50},
            }
        ],
    }
    assert_valid_rule(results["legacy"].document)


def test_hpa_without_adapter_config_reports_each_custom_metric() -> None:
    [result] = import_manifests(load_manifests(fixture_text("hpa-v2.yaml")), "prod", None)

    # The cpu metric needs no adapter: the rule's default cAdvisor query reads it.
    assert result.document is not None
    assert [m["name"] for m in result.document["metrics"]] == ["cpu"]
    assert "series" not in result.document["metrics"][0]
    assert [p for p, _ in problems(result)] == [f"spec.metrics[{i}]" for i in range(3)]
    assert problems(result)[0][1] == (
        "Pods metric 'http_requests_per_second' comes from the custom metrics API; pass --adapter-config "
        "with the Prometheus Adapter configuration that serves it"
    )
    assert "external metrics API" in problems(result)[1][1]


def test_hpa_metric_no_adapter_rule_exposes_is_reported_with_the_rules_tried(
    configmap_adapter: AdapterConfig,
) -> None:
    manifest = load_manifests(fixture_text("hpa-v2.yaml"))[0]
    manifest["spec"]["metrics"][0]["pods"]["metric"]["name"] = "jvm_threads_live"

    [result] = import_manifests([manifest], "prod", configmap_adapter)

    assert result.document is not None
    assert [m["name"] for m in result.document["metrics"]] == [
        "queue_messages_ready",
        "requests_per_second",
        "cpu",
    ]
    path, reason = problems(result)[0]
    assert path == "spec.metrics[0]"
    assert reason == (
        "no adapter rules entry exposes custom metric 'jvm_threads_live'; nearest is rules[0] (seriesQuery "
        '\'http_requests_total{kubernetes_namespace!="",kubernetes_pod_name!=""}\'): name.as '
        "'${1}_per_second' renames series 'http_requests_total' to 'http_requests_per_second', not "
        "'jvm_threads_live'"
    )


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (
            {"type": "Value", "value": "3"},
            "spec.metrics[0].pods.target.averageValue: Required value: must specify a positive target averageValue",
        ),
        (
            {"type": "Utilization", "averageUtilization": 50},
            "spec.metrics[0].pods.target.averageValue: Required value: must specify a positive target averageValue",
        ),
        (
            {"type": "AverageValue", "averageValue": "0"},
            'spec.metrics[0].pods.target.averageValue: Invalid value: "0": must be positive',
        ),
        (
            {"type": "Average", "averageValue": "1"},
            'spec.metrics[0].pods.target.type: Invalid value: "Average": must be either Utilization, Value, or AverageValue',
        ),
    ],
)
def test_hpa_pods_metric_target_the_api_server_refuses_refuses_the_whole_hpa(
    configmap_adapter: AdapterConfig, target: dict[str, object], reason: str
) -> None:
    manifest = load_manifests(fixture_text("hpa-v2.yaml"))[0]
    manifest["spec"]["metrics"][0]["pods"]["target"] = target

    [result] = import_manifests([manifest], "prod", configmap_adapter)

    assert result.document is None
    assert problems(result) == [(None, f"the API server would reject this HorizontalPodAutoscaler: {reason}")]


def test_hpa_min_replicas_zero_is_kept_with_a_note(configmap_adapter: AdapterConfig) -> None:
    # minReplicas 0 exists only with HPAScaleToZero on; it then needs an Object or External metric,
    # which this HPA has.
    manifest = load_manifests(fixture_text("hpa-v2.yaml"))[0]
    manifest["spec"]["minReplicas"] = 0

    [result] = import_manifests([manifest], "prod", configmap_adapter)

    assert result.document is not None and result.document["minReplicas"] == 0
    assert any(n.startswith("minReplicas 0 (HPAScaleToZero)") for n in result.notes)
    assert_valid_rule(result.document)


def test_hpa_rule_the_parser_rejects_is_not_converted(configmap_adapter: AdapterConfig) -> None:
    manifest = load_manifests(fixture_text("hpa-v2.yaml"))[0]
    # The API server takes any maxReplicas; the rule format caps it at 1000.
    manifest["spec"]["maxReplicas"] = 5000

    [result] = import_manifests([manifest], "prod", configmap_adapter)

    assert result.document is None
    assert any(reason.startswith("converted rule is invalid: maxReplicas") for _, reason in problems(result))


def test_unknown_kind_is_reported_with_a_hint_for_configmaps() -> None:
    [result] = import_manifests([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "adapter"}}])

    assert problems(result) == [
        (
            None,
            "kind 'ConfigMap' is not a HorizontalPodAutoscaler or ScaledObject; pass Prometheus Adapter "
            "configuration with --adapter-config",
        )
    ]
