"""Rule format for the HPA's Resource and ContainerResource metrics: layout, defaults, API-server checks."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from ampscaler.errors import RuleInvalidError
from ampscaler.model import MetricSpec, MetricTarget, ResourceSeries
from ampscaler.rule import RULE_SCHEMA, lint_rule, parse_rule, rule_to_document, show

CPU_UTILIZATION: dict[str, Any] = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
}
MEMORY_OF_APP: dict[str, Any] = {
    "type": "ContainerResource",
    "containerResource": {
        "name": "memory",
        "container": "app",
        "target": {"type": "AverageValue", "averageValue": "512Mi"},
    },
}


def rule_doc(*metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "frontend"},
        "maxReplicas": 10,
        "metrics": [copy.deepcopy(m) for m in metrics],
    }


def metric(**changes: Any) -> dict[str, Any]:
    """The CPU utilization metric with top-level ``changes`` (None deletes a key)."""
    doc = copy.deepcopy(CPU_UTILIZATION)
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def errors_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(RuleInvalidError) as info:
        parse_rule(doc)
    return info.value.errors


def schema_errors(doc: dict[str, Any]) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(RULE_SCHEMA).iter_errors(doc)]


def test_resource_metric_pasted_from_an_hpa_parses_with_a_default_name_and_query() -> None:
    rule = parse_rule(rule_doc(CPU_UTILIZATION, MEMORY_OF_APP))
    assert rule.metrics == (
        MetricSpec(
            name="cpu",
            type="Resource",
            query="",
            target=MetricTarget(type="Utilization", average_utilization=60),
            resource="cpu",
        ),
        MetricSpec(
            name="memory-app",
            type="ContainerResource",
            query="",
            target=MetricTarget(type="AverageValue", average_value=512 * 2**20),
            resource="memory",
            container="app",
        ),
    )
    assert rule.metrics[0].target.amount == 60


@pytest.mark.parametrize(
    ("quantity", "value"),
    [("500m", 0.5), ("2", 2.0), (0.25, 0.25), ("1.5", 1.5), ("1Gi", 2.0**30), ("100k", 1e5)],
)
def test_resource_average_value_accepts_numbers_and_kubernetes_quantities(
    quantity: object, value: float
) -> None:
    doc = rule_doc(
        metric(resource={"name": "cpu", "target": {"type": "AverageValue", "averageValue": quantity}})
    )
    assert parse_rule(doc).metrics[0].target == MetricTarget(type="AverageValue", average_value=value)
    assert schema_errors(doc) == []


def test_resource_metric_name_query_and_series_overrides_are_kept() -> None:
    doc = rule_doc(
        metric(
            name="cpu-busy",
            query='sum by (pod_name) (rate(cpu_seconds{ns="shop"}[2m]))',
            series={
                "metric": "cpu_seconds",
                "namespaceLabel": "ns",
                "podLabel": "pod_name",
                "containerLabel": "container_name",
                "windowSeconds": 120,
            },
        )
    )
    spec = parse_rule(doc).metrics[0]
    assert (spec.name, spec.query) == ("cpu-busy", 'sum by (pod_name) (rate(cpu_seconds{ns="shop"}[2m]))')
    assert spec.series == ResourceSeries(
        cpu_metric="cpu_seconds",
        namespace_label="ns",
        pod_label="pod_name",
        container_label="container_name",
        window_seconds=120,
    )
    errors, warnings = lint_rule(parse_rule(doc))
    assert errors == []
    assert warnings == [
        "metrics[0].series.metric: has no effect with a custom query "
        "(remove it, or remove query to use the default query)"
    ]


def test_memory_series_metric_names_the_memory_gauge() -> None:
    doc = rule_doc(dict(MEMORY_OF_APP, series={"metric": "wss_bytes"}))
    assert parse_rule(doc).metrics[0].series == ResourceSeries(memory_metric="wss_bytes")


@pytest.mark.parametrize(
    "metrics",
    [
        pytest.param([CPU_UTILIZATION], id="cpu-utilization"),
        pytest.param([MEMORY_OF_APP], id="container-memory-quantity"),
        pytest.param(
            [metric(name="c", query="sum by (pod) (x)", series={"windowSeconds": 90, "podLabel": "p"})],
            id="custom-query-and-series",
        ),
        pytest.param(
            [dict(MEMORY_OF_APP, series={"metric": "m", "containerLabel": "c", "namespaceLabel": "n"})],
            id="memory-series",
        ),
    ],
)
def test_resource_rules_round_trip_through_rule_to_document(metrics: list[dict[str, Any]]) -> None:
    rule = parse_rule(rule_doc(*metrics))
    document = rule_to_document(rule)
    assert parse_rule(document) == rule
    assert schema_errors(document) == []


def test_rule_to_document_writes_the_hpa_layout_and_omits_the_default_query() -> None:
    document = rule_to_document(parse_rule(rule_doc(CPU_UTILIZATION, MEMORY_OF_APP)))
    assert document["metrics"] == [
        {"name": "cpu", **CPU_UTILIZATION},
        {
            "name": "memory-app",
            "type": "ContainerResource",
            "containerResource": {
                "name": "memory",
                "container": "app",
                "target": {"type": "AverageValue", "averageValue": 536870912},
            },
        },
    ]


# Each row: the metric, then every error parse_rule reports for it (API-server rules where they exist).
INVALID = {
    "resource-without-source": (
        {"type": "Resource"},
        [
            'metrics[0].resource: required (e.g. {"name": "cpu", "target": {"type": "Utilization", '
            '"averageUtilization": 60}})'
        ],
    ),
    "resource-name-not-cpu-or-memory": (
        metric(
            resource={"name": "ephemeral-storage", "target": {"type": "Utilization", "averageUtilization": 1}}
        ),
        ['metrics[0].resource.name: must be one of cpu, memory, got "ephemeral-storage"'],
    ),
    "utilization-zero-must-be-greater-than-0": (
        metric(resource={"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}),
        ["metrics[0].resource.target.averageUtilization: must be between 1 and 2147483647, got 0"],
    ),
    "utilization-beyond-int32": (
        metric(resource={"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 2**31}}),
        ["metrics[0].resource.target.averageUtilization: must be between 1 and 2147483647, got 2147483648"],
    ),
    "utilization-not-an-integer": (
        metric(resource={"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60.5}}),
        ["metrics[0].resource.target.averageUtilization: must be an integer, got 60.5"],
    ),
    "utilization-without-average-utilization": (
        metric(resource={"name": "cpu", "target": {"type": "Utilization"}}),
        ["metrics[0].resource.target.averageUtilization: required when target.type is Utilization"],
    ),
    "both-raw-value-and-utilization": (
        metric(
            resource={
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50, "averageValue": "500m"},
            }
        ),
        [
            "metrics[0].resource.target.averageValue: must not be set when target.type is Utilization "
            "(set averageUtilization instead)"
        ],
    ),
    "value-target-on-a-resource": (
        metric(resource={"name": "cpu", "target": {"type": "Value"}}),
        [
            'metrics[0].resource.target.type: must be one of Utilization, AverageValue, got "Value" '
            "(a Resource target is a percentage of the pods' requests or a per-pod average, as in the HPA)"
        ],
    ),
    "average-value-not-a-quantity": (
        metric(resource={"name": "memory", "target": {"type": "AverageValue", "averageValue": "512MB"}}),
        [
            'metrics[0].resource.target.averageValue: must be a positive number or quantity, got "512MB" '
            '(e.g. 0.5 or "500m" for cpu cores, "512Mi" for memory bytes)'
        ],
    ),
    "average-value-zero": (
        metric(resource={"name": "memory", "target": {"type": "AverageValue", "averageValue": "0"}}),
        ["metrics[0].resource.target.averageValue: must be a positive number, got 0"],
    ),
    "utilization-on-a-pods-metric": (
        {
            "name": "rps",
            "type": "Pods",
            "query": "sum by (pod) (x)",
            "target": {"type": "Utilization", "averageValue": 1},
        },
        [
            'metrics[0].target.type: must be one of Value, AverageValue, got "Utilization" '
            "(Utilization applies only to Resource and ContainerResource metrics)"
        ],
    ),
    "container-missing": (
        {
            "type": "ContainerResource",
            "containerResource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 5}},
        },
        [
            "metrics[0].containerResource.container: required "
            "(the name of the container whose usage and requests count)"
        ],
    ),
    "container-not-a-dns-label": (
        {
            "type": "ContainerResource",
            "containerResource": {
                "name": "cpu",
                "container": "App",
                "target": {"type": "Utilization", "averageUtilization": 5},
            },
        },
        ['metrics[0].containerResource.container: invalid value "App" (a container name)'],
    ),
    "container-on-a-resource-metric": (
        metric(
            resource={
                "name": "cpu",
                "container": "app",
                "target": {"type": "Utilization", "averageUtilization": 5},
            }
        ),
        ["metrics[0].resource.container: unknown field (expected one of: name, target)"],
    ),
    "top-level-target-on-a-resource-metric": (
        metric(target={"type": "AverageValue", "averageValue": 1}),
        ["metrics[0].target: does not apply to Resource metrics (set resource.target)"],
    ),
    "query-type-fields-on-a-resource-metric": (
        metric(podLabel="pod", activationThreshold=1, emptyAs=0),
        [
            "metrics[0].podLabel: does not apply to Resource metrics (remove it)",
            "metrics[0].activationThreshold: does not apply to Resource metrics (remove it)",
            "metrics[0].emptyAs: does not apply to Resource metrics (remove it)",
        ],
    ),
    "both-sources": (
        dict(MEMORY_OF_APP, resource=CPU_UTILIZATION["resource"]),
        [
            "metrics[0].resource: must not be set for a ContainerResource metric (use containerResource)",
        ],
    ),
    "resource-source-on-a-pods-metric": (
        {
            "name": "rps",
            "type": "Pods",
            "query": "sum by (pod) (x)",
            "target": {"type": "AverageValue", "averageValue": 1},
            "series": {"podLabel": "p"},
        },
        ["metrics[0].series: only applies to Resource and ContainerResource metrics, not Pods"],
    ),
    "empty-custom-query": (metric(query=" "), ["metrics[0].query: must not be empty (a PromQL expression)"]),
    "window-on-memory": (
        dict(MEMORY_OF_APP, series={"windowSeconds": 60}),
        [
            "metrics[0].series.windowSeconds: only applies to cpu (the rate window of a CPU counter) "
            "(memory is a gauge read at the sample time; remove it)"
        ],
    ),
    "window-beyond-an-hour": (
        metric(series={"windowSeconds": 3601}),
        ["metrics[0].series.windowSeconds: must be between 1 and 3600, got 3601"],
    ),
    "series-label-not-a-label-name": (
        metric(series={"podLabel": "pod-name"}),
        ['metrics[0].series.podLabel: invalid value "pod-name" (a Prometheus label name)'],
    ),
    "series-metric-not-a-metric-name": (
        metric(series={"metric": "cpu seconds"}),
        ['metrics[0].series.metric: invalid value "cpu seconds" (a Prometheus metric name)'],
    ),
    "series-unknown-field": (
        metric(series={"window": 60}),
        ['metrics[0].series.window: unknown field (did you mean "windowSeconds"?)'],
    ),
}


@pytest.mark.parametrize(("doc", "expected"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_resource_metric_reports_every_problem_with_its_path(
    doc: dict[str, Any], expected: list[str]
) -> None:
    assert errors_of(rule_doc(doc)) == expected


@pytest.mark.parametrize(("doc", "_expected"), list(INVALID.values()), ids=list(INVALID))
def test_schema_refuses_every_invalid_resource_metric(doc: dict[str, Any], _expected: list[str]) -> None:
    if doc.get("series", {}).get("windowSeconds") == 60:
        pytest.skip("windowSeconds on memory: a cross-field check the parser makes alone")
    if doc.get("resource", {}).get("target", {}).get("averageValue") == "0":
        pytest.skip("a quantity string's value: the schema checks only its spelling")
    assert schema_errors(rule_doc(doc))


def test_two_cpu_metrics_need_a_name_each() -> None:
    assert errors_of(rule_doc(CPU_UTILIZATION, CPU_UTILIZATION)) == [
        'metrics[1].name: duplicate metric name "cpu" (the default name of this metric) '
        "(already used by metrics[0]; set name)"
    ]
    assert [m.name for m in parse_rule(rule_doc(CPU_UTILIZATION, metric(name="cpu2"))).metrics] == [
        "cpu",
        "cpu2",
    ]


def test_default_name_too_long_for_a_metric_name_asks_for_one() -> None:
    container = "c" * 60
    doc = dict(
        MEMORY_OF_APP, containerResource={**MEMORY_OF_APP["containerResource"], "container": container}
    )
    assert errors_of(rule_doc(doc)) == [
        f"metrics[0].name: required: the default name {show('memory-' + container)} is longer than 63 "
        "characters (set a shorter name)"
    ]


def test_resource_metric_alone_cannot_scale_to_zero() -> None:
    doc = dict(rule_doc(CPU_UTILIZATION), minReplicas=0)
    assert errors_of(doc) == [
        "metrics: must include at least one Object or External metric when minReplicas is 0 "
        "(a Pods metric has no pods to measure at zero replicas, so nothing could scale it back up)"
    ]
    assert schema_errors(doc)
