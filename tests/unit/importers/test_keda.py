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


def test_scaled_object_prometheus_triggers_fallback_and_behavior_convert_and_cpu_is_reported() -> None:
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
    assert problems(orders) == [
        (
            "spec.triggers[2]",
            "cpu trigger is a Resource metric read from metrics-server, not PromQL; ampscaler rules cover "
            "Pods/Object/External metrics only",
        )
    ]
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


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (
            {"metricType": "Utilization"},
            "spec.triggers[0]",
            "metricType 'Utilization' is not AverageValue or Value",
        ),
        (
            {"metadata": {"query": "sum(x)"}},
            "spec.triggers[0]",
            "metadata is missing serverAddress, threshold",
        ),
        (
            {"metadata": {"serverAddress": "http://p:9090", "query": "x", "threshold": "lots"}},
            "spec.triggers[0]",
            "metadata.threshold 'lots' is not a number",
        ),
        (
            {
                "metadata": {
                    "serverAddress": "http://p:9090",
                    "query": "x",
                    "threshold": "1",
                    "ignoreNullValues": "y",
                }
            },
            "spec.triggers[0]",
            "ignoreNullValues 'y' is not a boolean",
        ),
    ],
)
def test_scaled_object_bad_prometheus_trigger_is_reported(
    change: dict[str, Any], path: str, reason: str
) -> None:
    manifest = _minimal()
    manifest["spec"]["triggers"][0].update(change)

    [result] = import_manifests([manifest])

    assert result.document is None
    assert problems(result) == [(path, reason)]


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
