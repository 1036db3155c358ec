"""KEDA ScaledObjects -> rule documents."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ampscaler.importers import import_manifests, load_manifests
from tests.unit.importers.support import assert_valid_rule, by_name, fixture_text, problems

IN_CLUSTER_NOTE = (
    "serverAddress http://prometheus-server.monitoring.svc.cluster.local:9090 is in-cluster and unreachable "
    "from Lambda; the rule queries the stack's AMP workspace, so remote-write these series there"
)


def _objects() -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in load_manifests(fixture_text("keda-scaledobjects.yaml"))}


def test_scaled_object_prometheus_triggers_fallback_and_behavior_convert() -> None:
    results = by_name(import_manifests(load_manifests(fixture_text("keda-scaledobjects.yaml")), "prod"))
    orders = results["orders"]

    assert orders.document == {
        "apiVersion": "ampscaler/v1",
        # scaleTargetRef without kind/apiVersion: KEDA's default Deployment (apps/v1).
        "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "orders"},
        "minReplicas": 0,
        "maxReplicas": 50,
        "metrics": [
            {
                # KEDA's external metric name for trigger 0: s0-prometheus.
                "name": "s0-prometheus",
                "type": "External",
                "query": 'sum(rate(http_requests_total{namespace="shop",service="orders"}[2m]))',
                "target": {"type": "AverageValue", "averageValue": 100},
                "activationThreshold": 5.5,
                # ignoreNullValues defaults to true: an empty result counts as 0.
                "emptyAs": 0,
            },
            {
                "name": "backlog",
                "type": "External",
                "query": 'sum(rabbitmq_queue_messages_ready{queue="orders"})',
                "target": {"type": "AverageValue", "averageValue": 40},
            },
        ],
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": 120,
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 30}],
            }
        },
        "fallback": {"failureThreshold": 3, "replicas": 6, "behavior": "currentReplicasIfHigher"},
        "cooldownPeriodSeconds": 120,
    }
    assert problems(orders) == []
    assert orders.notes == [
        IN_CLUSTER_NOTE,
        "triggers[1].metadata.customHeaders (sent as extra HTTP headers) has no ampscaler counterpart "
        "and was dropped",
        "pollingInterval 15s: KEDA uses it for activation checks; the HPA it drives reads the metric every "
        "sync (15 s), which ampscaler's per-tick evaluation mirrors, so the rule has no "
        "evaluationIntervalSeconds",
    ]
    assert_valid_rule(orders.document)


def test_scaled_object_paused_replicas_amp_cached_value_trigger_and_kafka_reported() -> None:
    results = by_name(import_manifests(load_manifests(fixture_text("keda-scaledobjects.yaml")), "prod"))
    reports = results["reports"]

    assert reports.document == {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "prod", "namespace": "analytics", "kind": "StatefulSet", "name": "reports"},
        "minReplicas": 1,
        "maxReplicas": 100,
        "metrics": [
            {
                "name": "s0-prometheus",
                "type": "External",
                "query": "avg(report_queue_age_seconds)",
                "target": {"type": "Value", "value": 30},
                "emptyAs": 0,
            }
        ],
        "paused": True,
        # useCachedMetrics on every trigger: the value refreshes once per pollingInterval (default 30).
        "evaluationIntervalSeconds": 30,
        "prometheus": {"workspaceId": "ws-0123abcd-4567-89ef-0123-456789abcdef", "region": "eu-west-1"},
    }
    assert problems(reports) == [
        (
            "spec.triggers[1]",
            "kafka trigger reads its source directly, not through Prometheus; export the value to Prometheus "
            "(AMP) and use a prometheus trigger/metric",
        )
    ]
    assert any(n.startswith("autoscaling.keda.sh/paused-replicas=2: KEDA holds") for n in reports.notes)
    assert_valid_rule(reports.document)


def _minimal(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "q", "namespace": "ns"},
        "spec": {
            "scaleTargetRef": {"name": "q"},
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "https://prometheus.example.com",
                        "query": "sum(x)",
                        "threshold": "1",
                    },
                }
            ],
            **spec,
        },
    }


def test_scaled_object_defaults_are_kedas() -> None:
    [result] = import_manifests([_minimal()], "prod")

    assert result.document == {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "prod", "namespace": "ns", "kind": "Deployment", "name": "q"},
        "minReplicas": 0,
        "maxReplicas": 100,
        "metrics": [
            {
                "name": "s0-prometheus",
                "type": "External",
                "query": "sum(x)",
                "target": {"type": "AverageValue", "averageValue": 1},
                "emptyAs": 0,
            }
        ],
        "cooldownPeriodSeconds": 300,
        "prometheus": {"url": "https://prometheus.example.com"},
    }
    assert result.notes == []
    assert_valid_rule(result.document)


PARSE = "KEDA would reject this ScaledObject: triggers[0] (prometheus): error parsing prometheus metadata: "


# KEDA's messages: scalers/prometheus_scaler.go through scalersconfig/typed_config.go.
@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        (
            {"metricType": "Utilization"},
            [
                "'Utilization' metric type is unsupported for external metrics, allowed values are 'Value' or "
                "'AverageValue'"
            ],
        ),
        (
            {"metadata": {"query": "sum(x)"}},
            [
                'missing required parameter "serverAddress" in [triggerMetadata]',
                'missing required parameter "threshold" in [triggerMetadata]',
            ],
        ),
        (
            {"metadata": {"serverAddress": "http://p:9090", "query": "x", "threshold": "lots"}},
            [
                'unable to set param "threshold" value "lots": strconv.ParseFloat: parsing "lots": invalid syntax'
            ],
        ),
        (
            # Python's float() takes "1_000"; Go's ParseFloat does not.
            {"metadata": {"serverAddress": "http://p:9090", "query": "x", "threshold": "1_000"}},
            [
                'unable to set param "threshold" value "1_000": strconv.ParseFloat: parsing "1_000": invalid syntax'
            ],
        ),
        (
            {
                "metadata": {
                    "serverAddress": "http://p",
                    "query": "x",
                    "threshold": "1",
                    "activationThreshold": "low",
                }
            },
            [
                'unable to set param "activationThreshold" value "low": strconv.ParseFloat: parsing "low": '
                "invalid syntax"
            ],
        ),
        (
            {
                "metadata": {
                    "serverAddress": "http://p",
                    "query": "x",
                    "threshold": "1",
                    "ignoreNullValues": "y",
                }
            },
            [
                'unable to set param "ignoreNullValues" value "y": strconv.ParseBool: parsing "y": invalid syntax'
            ],
        ),
        (
            # unsafeSsl and customHeaders are dropped by the conversion, but KEDA still parses them.
            {"metadata": {"serverAddress": "http://p", "query": "x", "threshold": "1", "unsafeSsl": "yes"}},
            ['unable to set param "unsafeSsl" value "yes": strconv.ParseBool: parsing "yes": invalid syntax'],
        ),
        (
            {
                "metadata": {
                    "serverAddress": "http://p",
                    "query": "x",
                    "threshold": "1",
                    "customHeaders": "X-Org",
                }
            },
            [
                'unable to set param "customHeaders" value "X-Org": invalid map value "X-Org", expected key=value'
            ],
        ),
    ],
)
def test_scaled_object_keda_would_reject_is_refused_whole_with_kedas_reason(
    change: dict[str, Any], reasons: list[str]
) -> None:
    manifest = _minimal()
    manifest["spec"]["triggers"][0].update(change)

    [result] = import_manifests([manifest])

    assert result.document is None
    assert problems(result) == [(None, PARSE + reason) for reason in reasons]


def test_scaled_object_scaling_modifiers_make_the_whole_object_unconvertible() -> None:
    manifest = _minimal(advanced={"scalingModifiers": {"formula": "s0 + s1", "target": "2"}})

    [result] = import_manifests([manifest])

    assert result.document is None
    assert [p for p, _ in problems(result)] == ["spec.advanced.scalingModifiers"]


def test_scaled_object_second_prometheus_server_is_reported_per_trigger() -> None:
    manifest = _minimal()
    other = copy.deepcopy(manifest["spec"]["triggers"][0])
    other["metadata"]["serverAddress"] = "https://thanos.example.com"
    manifest["spec"]["triggers"].append(other)

    [result] = import_manifests([manifest], "prod")

    assert result.document is not None and len(result.document["metrics"]) == 1
    assert problems(result) == [
        (
            "spec.triggers[1]",
            "serverAddress https://thanos.example.com differs from the first trigger's "
            "https://prometheus.example.com; a rule queries one Prometheus",
        )
    ]


@pytest.mark.parametrize(("value", "paused"), [("true", True), ("false", None)])
def test_scaled_object_paused_annotation(value: str, paused: bool | None) -> None:
    manifest = _minimal()
    manifest["metadata"]["annotations"] = {"autoscaling.keda.sh/paused": value}

    [result] = import_manifests([manifest], "prod")

    assert result.document is not None and result.document.get("paused") == paused


def test_scaled_object_idle_replica_count_becomes_min_zero_with_a_note() -> None:
    [result] = import_manifests([_minimal(idleReplicaCount=0, minReplicaCount=3, cooldownPeriod=60)], "prod")

    assert result.document is not None
    assert (result.document["minReplicas"], result.document["cooldownPeriodSeconds"]) == (0, 60)
    assert result.notes[0].startswith(
        "idleReplicaCount 0 with minReplicaCount 3: the rule uses minReplicas 0"
    )


def test_scaled_object_with_min_replicas_leaves_cooldown_out() -> None:
    [result] = import_manifests([_minimal(minReplicaCount=2, cooldownPeriod=60)], "prod")

    # KEDA's cooldownPeriod only governs scaling to zero, which minReplicaCount 2 never does.
    assert result.document is not None and "cooldownPeriodSeconds" not in result.document
    assert_valid_rule(result.document)


def test_scaled_object_fallback_with_value_trigger_notes_the_semantic_difference() -> None:
    manifest = _minimal(fallback={"failureThreshold": 2, "replicas": 4})
    manifest["spec"]["triggers"][0]["metricType"] = "Value"

    [result] = import_manifests([manifest], "prod")

    assert result.document is not None
    assert result.document["fallback"] == {"failureThreshold": 2, "replicas": 4}
    assert result.document["metrics"][0]["target"] == {"type": "Value", "value": 1}
    assert (
        "fallback: KEDA ignores it for Value triggers; ampscaler applies it to the whole rule" in result.notes
    )


def test_scaled_object_cpu_and_container_memory_triggers_become_resource_metrics() -> None:
    results = by_name(import_manifests(load_manifests(fixture_text("keda-scaledobjects.yaml")), "prod"))
    storefront = results["storefront"]

    assert storefront.problems == []
    assert storefront.document is not None
    # cpu_memory_scaler.go GetMetricSpecForScaling: Resource, or ContainerResource with containerName.
    assert storefront.document["metrics"][:2] == [
        {
            "name": "cpu",
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
        },
        {
            "name": "memory-app",
            "type": "ContainerResource",
            "containerResource": {
                "name": "memory",
                "container": "app",
                "target": {"type": "AverageValue", "averageValue": 768 * 2**20},
            },
        },
    ]
    assert storefront.document["metrics"][2]["name"] == "s2-prometheus"
    assert storefront.document["prometheus"] == {
        "workspaceId": "ws-0123abcd-4567-89ef-0123-456789abcdef",
        "region": "eu-west-1",
    }
    assert_valid_rule(storefront.document)


def _cpu(metadata: dict[str, str], **trigger: Any) -> dict[str, Any]:
    return _minimal(minReplicaCount=1, triggers=[{"type": "cpu", "metadata": metadata, **trigger}])


# KEDA's messages: cpu_memory_scaler.go parseResourceMetadata, the webhook and scaledobject_types.go.
@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        (
            _cpu({"value": "50"}),
            "triggers[0] (cpu): error parsing cpu metadata: no type given in neither trigger.metadata.type or "
            "trigger.metricType",
        ),
        (
            _cpu({"type": "Utilization", "value": "50"}, metricType="Utilization"),
            "triggers[0] (cpu): error parsing cpu metadata: only one of trigger.metadata.type or "
            "trigger.metricType should be defined",
        ),
        (_cpu({}, metricType="Utilization"), "triggers[0] (cpu): error parsing cpu metadata: no value given"),
        (
            _cpu({"value": "50.5"}, metricType="Utilization"),
            'triggers[0] (cpu): error parsing cpu metadata: strconv.ParseInt: parsing "50.5": invalid syntax',
        ),
        (
            _cpu({"value": "1"}, metricType="Value"),
            "triggers[0] (cpu): error parsing cpu metadata: unsupported metric type, allowed values are "
            "'Utilization' or 'AverageValue'",
        ),
        (
            _minimal(triggers=[{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}]),
            "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)",
        ),
        (
            _minimal(minReplicaCount=5, maxReplicaCount=3),
            "MinReplicaCount=5 must be less than MaxReplicaCount=3",
        ),
        (
            _minimal(minReplicaCount=2, idleReplicaCount=2),
            "IdleReplicaCount=2 must be less than MinReplicaCount=2",
        ),
        (
            _minimal(fallback={"failureThreshold": -1, "replicas": 2}),
            "FailureThreshold=-1 & Replicas=2 must both be greater than or equal to 0",
        ),
    ],
)
def test_scaled_object_keda_webhook_and_cpu_parsing_refusals(manifest: dict[str, Any], reason: str) -> None:
    [result] = import_manifests([manifest])

    assert result.document is None
    assert (None, f"KEDA would reject this ScaledObject: {reason}") in problems(result)


def test_scaled_object_fallback_next_to_a_cpu_trigger_is_refused() -> None:
    manifest = _objects()["orders"]
    manifest["spec"]["triggers"].append(
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}
    )

    [result] = import_manifests([manifest])

    assert problems(result) == [
        (
            None,
            "KEDA would reject this ScaledObject: type is cpu, but fallback it is not supported by the CPU & "
            "memory scalers",
        )
    ]
