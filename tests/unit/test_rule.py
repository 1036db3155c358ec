"""Rule format: parse_rule defaults and errors, API-server limits, schema agreement, files, lint."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ampscaler.errors import RuleInvalidError
from ampscaler.model import Behavior, ScalingPolicy, ScalingRules
from ampscaler.rule import (
    DEFAULT_SCALE_DOWN_RULES,
    DEFAULT_SCALE_UP_RULES,
    RULE_SCHEMA,
    check_promql_structure,
    lint_rule,
    load_rule_file,
    parse_rule,
    read_rule_documents,
    rule_to_document,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "rules").glob("*.*"))


def base_doc(**overrides: Any) -> dict[str, Any]:
    """The issue's example rule, minus behavior/fallback, with ``overrides`` applied at top level."""
    doc: dict[str, Any] = {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "frontend"},
        "minReplicas": 2,
        "maxReplicas": 20,
        "metrics": [
            {
                "name": "rps",
                "type": "Pods",
                "query": 'sum by (pod) (rate(http_requests_total{namespace="shop"}[2m]))',
                "target": {"type": "AverageValue", "averageValue": 10},
            },
            {
                "name": "backlog",
                "type": "External",
                "query": 'sum(redis_queue_length{queue="jobs"})',
                "target": {"type": "Value", "value": 40},
            },
        ],
    }
    doc.update(overrides)
    return doc


def errors_of(doc: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(RuleInvalidError) as info:
        parse_rule(doc, **kwargs)
    return info.value.errors


# --------------------------------------------------------------------------- defaults


def test_parse_rule_minimal_document_fills_hpa_defaults() -> None:
    doc = base_doc()
    del doc["minReplicas"]
    rule = parse_rule(doc)
    assert rule.name == "prod/shop/frontend"
    assert rule.min_replicas == 1  # SetDefaults_HorizontalPodAutoscaler
    assert rule.target.api_version == "apps/v1"
    assert rule.behavior is None  # legacy path
    assert rule.tolerance is None
    assert rule.cooldown_period_seconds == 300
    assert rule.metrics[0].pod_label == "pod"
    assert rule.metrics[0].activation_threshold == 0.0
    assert rule.metrics[0].empty_as is None
    assert rule.metrics[0].target.amount == 10.0
    assert rule.metrics[1].target.amount == 40.0
    assert rule.source == doc and rule.source is not doc


def test_parse_rule_source_is_a_deep_copy() -> None:
    doc = base_doc()
    rule = parse_rule(doc)
    doc["metrics"][0]["name"] = "changed"
    assert rule.source["metrics"][0]["name"] == "rps"  # type: ignore[index]


@pytest.mark.parametrize(
    ("behavior", "expected"),
    [
        pytest.param(
            {},
            Behavior(DEFAULT_SCALE_UP_RULES, DEFAULT_SCALE_DOWN_RULES),
            id="empty-behavior-gets-both-defaults",
        ),
        pytest.param(
            {"scaleDown": {"stabilizationWindowSeconds": 60}},
            Behavior(
                DEFAULT_SCALE_UP_RULES,
                ScalingRules(60, "Max", (ScalingPolicy("Percent", 100, 15),)),
            ),
            id="absent-direction-gets-full-defaults-present-field-replaces-only-itself",
        ),
        pytest.param(
            {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}},
            Behavior(
                ScalingRules(0, "Max", (ScalingPolicy("Pods", 1, 60),)),
                DEFAULT_SCALE_DOWN_RULES,
            ),
            id="user-policies-replace-the-default-list-whole",
        ),
        pytest.param(
            {"scaleUp": {"selectPolicy": "Disabled", "tolerance": 0.05}, "scaleDown": {"tolerance": 0}},
            Behavior(
                ScalingRules(0, "Disabled", DEFAULT_SCALE_UP_RULES.policies, 0.05),
                ScalingRules(None, "Max", DEFAULT_SCALE_DOWN_RULES.policies, 0.0),
            ),
            id="select-policy-and-per-direction-tolerance",
        ),
    ],
)
def test_parse_rule_behavior_defaults_like_the_api_server(
    behavior: dict[str, Any], expected: Behavior
) -> None:
    assert parse_rule(base_doc(behavior=behavior)).behavior == expected


def test_default_scale_rules_match_upstream_defaults_go() -> None:
    assert (
        ScalingRules(0, "Max", (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)))
        == DEFAULT_SCALE_UP_RULES
    )
    # Scale-down stabilization is left to the controller flag.
    assert ScalingRules(None, "Max", (ScalingPolicy("Percent", 100, 15),)) == DEFAULT_SCALE_DOWN_RULES


def test_parse_rule_name_argument_overrides_document_name() -> None:
    assert parse_rule(base_doc(name="team-a/frontend")).name == "team-a/frontend"
    assert parse_rule(base_doc(name="team-a/frontend"), name="prod/frontend").name == "prod/frontend"


def test_parse_rule_default_cluster_fills_a_missing_cluster_only() -> None:
    doc = base_doc()
    del doc["target"]["cluster"]
    assert errors_of(doc) == [
        "target.cluster: required (the EKS cluster name; or set CLUSTER_NAME for the scaler)"
    ]
    rule = parse_rule(doc, default_cluster="staging")
    assert rule.target.cluster == "staging"
    assert rule.name == "staging/shop/frontend"
    assert parse_rule(base_doc(), default_cluster="staging").target.cluster == "prod"


def test_parse_rule_accepts_yaml_and_json_text() -> None:
    yaml_text = """
apiVersion: ampscaler/v1
target: {cluster: prod, namespace: shop, kind: StatefulSet, name: db}
maxReplicas: 3
metrics:
  - name: conn
    type: Object
    query: max(pg_connections)
    target: {type: AverageValue, averageValue: 50}
"""
    rule = parse_rule(yaml_text)
    assert rule.target.kind == "StatefulSet" and rule.metrics[0].type == "Object"
    assert parse_rule(json.dumps(base_doc())) == parse_rule(base_doc())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('{"apiVersion": ', "(document): invalid JSON at line 1 column 16", id="truncated-json"),
        pytest.param("a: [1,\n", "(document): invalid YAML: line 2", id="broken-yaml"),
        pytest.param("a: 1\n---\nb: 2\n", "(document): invalid YAML", id="several-documents"),
    ],
)
def test_parse_rule_text_syntax_errors_name_the_position(text: str, expected: str) -> None:
    (error,) = errors_of(text)
    assert error.startswith(expected)


def test_parse_rule_scale_to_zero_allowed_with_an_external_metric() -> None:
    rule = parse_rule(base_doc(minReplicas=0))
    assert rule.min_replicas == 0


def test_parse_rule_other_kind_needs_api_version() -> None:
    doc = base_doc()
    doc["target"]["kind"] = "Rollout"
    assert errors_of(doc) == [
        "target.apiVersion: required for kind Rollout "
        "(only Deployment and StatefulSet default to apps/v1; e.g. argoproj.io/v1alpha1)"
    ]
    doc["target"]["apiVersion"] = "argoproj.io/v1alpha1"
    assert parse_rule(doc).target.api_version == "argoproj.io/v1alpha1"


def test_parse_rule_integral_float_counts_as_integer() -> None:
    assert parse_rule(base_doc(maxReplicas=20.0)).max_replicas == 20


# --------------------------------------------------------------------------- errors


def test_parse_rule_reports_every_error_at_once_with_paths_and_hints() -> None:
    doc = base_doc(minReplica=3, maxReplicas="5", tolerance=1)
    doc["apiVersion"] = "ampscaler/v2"
    doc["metrics"][1]["target"] = {"type": "AverageValue", "averageValue": -3}
    doc["metrics"][0]["taget"] = doc["metrics"][0].pop("target")
    errors = errors_of(doc)
    assert errors == [
        'minReplica: unknown field (did you mean "minReplicas"?)',
        'apiVersion: must be "ampscaler/v1", got "ampscaler/v2"',
        'maxReplicas: must be an integer, got "5" (write a plain JSON number without quotes: 5)',
        'metrics[0].taget: unknown field (did you mean "target"?)',
        "metrics[0].target: required",
        "metrics[1].target.averageValue: must be a positive number, got -3",
        "tolerance: must be >= 0 and < 1, got 1",
    ]


def test_rule_invalid_error_carries_the_name() -> None:
    with pytest.raises(RuleInvalidError) as info:
        parse_rule(base_doc(maxReplicas=0), name="prod/frontend")
    assert info.value.name == "prod/frontend"
    assert str(info.value).startswith("rule 'prod/frontend' is invalid: maxReplicas:")


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        # Upstream validateScalingRules / validateScalingPolicy limits.
        ("behavior.scaleUp.stabilizationWindowSeconds", 3601, "must be between 0 and 3600, got 3601"),
        ("behavior.scaleDown.stabilizationWindowSeconds", -1, "must be between 0 and 3600, got -1"),
        (
            "behavior.scaleUp.policies",
            [],
            "must specify at least one policy (remove policies to get the defaults)",
        ),
        ("behavior.scaleUp.policies[0].periodSeconds", 1801, "must be between 1 and 1800, got 1801"),
        ("behavior.scaleUp.policies[0].periodSeconds", 0, "must be between 1 and 1800, got 0"),
        ("behavior.scaleDown.policies[0].value", 0, "must be between 1 and 10000, got 0"),
        (
            "behavior.scaleDown.policies[0].type",
            "percent",
            'must be one of Pods, Percent, got "percent" (did you mean "Percent"?)',
        ),
        (
            "behavior.scaleUp.selectPolicy",
            "Maximum",
            'must be one of Max, Min, Disabled, got "Maximum" (did you mean "Max"?)',
        ),
        ("behavior.scaleUp.tolerance", -0.1, "must be >= 0 and < 1, got -0.1"),
        ("minReplicas", -1, "must be >= 0, got -1"),
        ("maxReplicas", 0, "must be >= 1, got 0"),
        ("metrics[0].target.averageValue", 0, "must be a positive number, got 0"),
        (
            "metrics[0].target.averageValue",
            "500m",
            'must be a positive number, got "500m" (write a plain JSON number without quotes: 0.5)',
        ),
        ("metrics[0].activationThreshold", -1, "must be between 0 and 1e+15, got -1"),
        ("metrics[0].podLabel", "pod-name", 'invalid value "pod-name" (a Prometheus label name)'),
        ("metrics[0].query", "  ", "must not be empty (a PromQL expression)"),
        ("metrics[0].name", "1rps", "invalid value \"1rps\" (a letter, then letters, digits, '_' or '-')"),
        (
            "metrics[1].type",
            "resource",
            'must be one of Pods, Object, External, Resource, ContainerResource, got "resource" '
            '(did you mean "Resource"?)',
        ),
        ("fallback.failureThreshold", 0, "must be between 1 and 10000, got 0"),
        (
            "fallback.behavior",
            "current",
            "must be one of static, currentReplicas, currentReplicasIfHigher, currentReplicasIfLower, "
            'got "current" (did you mean "currentReplicas"?)',
        ),
        ("paused", "yes", 'must be true or false, got "yes"'),
        ("evaluationIntervalSeconds", 0, "must be between 1 and 3600, got 0"),
        ("cooldownPeriodSeconds", 1.5, "must be an integer, got 1.5"),
        ("target.namespace", "Shop", "invalid value \"Shop\" (lower-case letters, digits and '-')"),
        ("target.kind", "deployment", 'invalid value "deployment" (did you mean "Deployment"?)'),
        ("prometheus.region", "Europe", 'invalid value "Europe" (an AWS region such as eu-west-1)'),
    ],
)
def test_parse_rule_rejects_out_of_range_values(path: str, value: Any, expected: str) -> None:
    doc = base_doc(
        behavior={
            "scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
            "scaleDown": {"policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
        },
        fallback={"failureThreshold": 3, "replicas": 4},
        prometheus={"workspaceId": "ws-1234"},
    )
    set_path(doc, path, value)
    assert f"{path}: {expected}" in errors_of(doc)


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b[0].c`` in ``doc``."""
    parts: list[str | int] = []
    for segment in path.split("."):
        name, _, rest = segment.partition("[")
        parts.append(name)
        if rest:
            parts.append(int(rest.rstrip("]")))
    node: Any = doc
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: d.update(minReplicas=5, maxReplicas=3),
            "maxReplicas: must be greater than or equal to minReplicas (5), got 3",
            id="max-below-min",
        ),
        pytest.param(
            lambda d: d["metrics"][1].update(name="rps"),
            'metrics[1].name: duplicate metric name "rps" (already used by metrics[0])',
            id="duplicate-metric-names",
        ),
        pytest.param(
            lambda d: d["metrics"][0]["target"].update(type="Value", value=10),
            'metrics[0].target.type: must be AverageValue for a Pods metric (use "type": "AverageValue")',
            id="pods-needs-average-value",
        ),
        pytest.param(
            lambda d: d["metrics"][1]["target"].update(averageValue=3),
            "metrics[1].target.averageValue: must not be set when target.type is Value (set value instead)",
            id="value-and-average-value-both-set",
        ),
        pytest.param(
            lambda d: d["metrics"][1]["target"].pop("value"),
            "metrics[1].target.value: required when target.type is Value",
            id="value-missing",
        ),
        pytest.param(
            lambda d: d["metrics"][1].update(podLabel="instance"),
            "metrics[1].podLabel: only applies to Pods metrics, not External (remove it)",
            id="pod-label-on-external",
        ),
        pytest.param(
            lambda d: (d.update(minReplicas=0), d["metrics"].pop()),
            "metrics: must include at least one Object or External metric when minReplicas is 0 "
            "(a Pods metric has no pods to measure at zero replicas, so nothing could scale it back up)",
            id="scale-to-zero-needs-object-or-external",
        ),
        pytest.param(
            lambda d: d.update(prometheus={"url": "http://prom:9090", "workspaceId": "ws-1"}),
            "prometheus: set either url or workspaceId, not both (url is for a self-managed Prometheus)",
            id="prometheus-url-and-workspace",
        ),
        pytest.param(
            lambda d: d.update(prometheus={"workspaceId": "ws-1", "sigv4": True}),
            "prometheus.sigv4: only applies with url (AMP workspaces are always signed)",
            id="sigv4-without-url",
        ),
        pytest.param(
            lambda d: d.update(behavior={"scaleup": {}}),
            'behavior.scaleup: unknown field (did you mean "scaleUp"?)',
            id="unknown-field-in-behavior",
        ),
        pytest.param(
            lambda d: d["target"].update(replicas=3),
            "target.replicas: unknown field (expected one of: cluster, namespace, kind, name, apiVersion)",
            id="unknown-field-without-close-match-lists-fields",
        ),
        pytest.param(
            lambda d: d.update(metrics=[]),
            "metrics: must list at least one metric",
            id="no-metrics",
        ),
        pytest.param(
            lambda d: d.update(behavior=None),
            "behavior: must be an object, got null",
            id="null-is-not-absent",
        ),
    ],
)
def test_parse_rule_cross_field_errors(mutate: Any, expected: str) -> None:
    doc = base_doc()
    mutate(doc)
    assert expected in errors_of(doc)


def test_parse_rule_non_object_document() -> None:
    assert errors_of([1, 2]) == ["(document): must be an object, got array"]


# --------------------------------------------------------------------------- round trip and files


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_rule_to_document_round_trips(path: Path) -> None:
    (rule,) = load_rule_file(path)
    document = rule_to_document(rule)
    assert parse_rule(document) == rule
    assert json.loads(json.dumps(document)) == document


def test_rule_to_document_keeps_legacy_behavior_absent_and_scale_down_window_unset() -> None:
    assert "behavior" not in rule_to_document(parse_rule(base_doc()))
    document = rule_to_document(parse_rule(base_doc(behavior={})))
    assert "stabilizationWindowSeconds" not in document["behavior"]["scaleDown"]
    assert document["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0


def test_load_rule_file_reads_several_yaml_documents(tmp_path: Path) -> None:
    file = tmp_path / "rules.yml"
    file.write_text(
        "---\n" + json.dumps(base_doc()) + "\n---\n" + json.dumps(base_doc(name="second")) + "\n",
        encoding="utf-8",
    )
    assert [r.name for r in load_rule_file(file)] == ["prod/shop/frontend", "second"]


def test_load_rule_file_prefixes_errors_with_the_document_number(tmp_path: Path) -> None:
    file = tmp_path / "rules.yaml"
    file.write_text(
        json.dumps(base_doc()) + "\n---\n" + json.dumps(base_doc(maxReplicas=0)) + "\n", encoding="utf-8"
    )
    with pytest.raises(RuleInvalidError) as info:
        load_rule_file(file)
    assert info.value.errors == ["document 2: maxReplicas: must be >= 1, got 0"]


def test_read_rule_documents_rejects_unknown_suffix(tmp_path: Path) -> None:
    file = tmp_path / "rule.toml"
    file.write_text("x", encoding="utf-8")
    with pytest.raises(RuleInvalidError, match=r"unsupported suffix '\.toml'"):
        read_rule_documents(file)


# --------------------------------------------------------------------------- schema


def test_published_schema_matches_the_parser_module() -> None:
    published = json.loads((ROOT / "docs" / "rule.schema.json").read_text(encoding="utf-8"))
    assert published == RULE_SCHEMA, "regenerate docs/rule.schema.json from ampscaler.rule.RULE_SCHEMA"
    jsonschema.Draft202012Validator.check_schema(published)


def test_examples_exist_for_every_seed_scenario() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_rule_is_valid_for_schema_parser_and_lint(path: Path) -> None:
    validator = jsonschema.Draft202012Validator(RULE_SCHEMA)
    for document in read_rule_documents(path):
        assert list(validator.iter_errors(document)) == []
        rule = parse_rule(document)
        errors, _warnings = lint_rule(rule)
        assert errors == []


def _invalid(mutate: Any) -> dict[str, Any]:
    doc = base_doc()
    mutate(doc)
    return doc


AGREEMENT_TABLE = {
    "unknown-top-level-field": _invalid(lambda d: d.update(minReplica=1)),
    "wrong-api-version": _invalid(lambda d: d.update(apiVersion="v1")),
    "missing-max-replicas": _invalid(lambda d: d.pop("maxReplicas")),
    "negative-min-replicas": _invalid(lambda d: d.update(minReplicas=-1)),
    "string-max-replicas": _invalid(lambda d: d.update(maxReplicas="5")),
    "bool-is-not-a-number": _invalid(lambda d: d.update(maxReplicas=True)),
    "no-metrics": _invalid(lambda d: d.update(metrics=[])),
    "bad-metric-name": _invalid(lambda d: d["metrics"][0].update(name="1x")),
    "resource-metric": _invalid(lambda d: d["metrics"][0].update(type="Resource")),
    "pods-value-target": _invalid(lambda d: d["metrics"][0].update(target={"type": "Value", "value": 1})),
    "negative-average-value": _invalid(
        lambda d: d["metrics"][1].update(target={"type": "AverageValue", "averageValue": -3})
    ),
    "both-target-amounts": _invalid(lambda d: d["metrics"][1]["target"].update(averageValue=1)),
    "empty-query": _invalid(lambda d: d["metrics"][0].update(query="")),
    "pod-label-on-external": _invalid(lambda d: d["metrics"][1].update(podLabel="pod")),
    "stabilization-above-3600": _invalid(
        lambda d: d.update(behavior={"scaleDown": {"stabilizationWindowSeconds": 3601}})
    ),
    "period-above-1800": _invalid(
        lambda d: d.update(
            behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}}
        )
    ),
    "empty-policies": _invalid(lambda d: d.update(behavior={"scaleUp": {"policies": []}})),
    "policy-value-zero": _invalid(
        lambda d: d.update(
            behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}
        )
    ),
    "bad-select-policy": _invalid(lambda d: d.update(behavior={"scaleUp": {"selectPolicy": "max"}})),
    "tolerance-one": _invalid(lambda d: d.update(tolerance=1)),
    "fallback-without-replicas": _invalid(lambda d: d.update(fallback={"failureThreshold": 3})),
    "fallback-bad-behavior": _invalid(
        lambda d: d.update(fallback={"failureThreshold": 3, "replicas": 1, "behavior": "x"})
    ),
    "paused-string": _invalid(lambda d: d.update(paused="false")),
    "prometheus-neither": _invalid(lambda d: d.update(prometheus={"region": "eu-west-1"})),
    "prometheus-both": _invalid(
        lambda d: d.update(prometheus={"url": "http://p:9090", "workspaceId": "ws-1"})
    ),
    "sigv4-without-url": _invalid(lambda d: d.update(prometheus={"workspaceId": "ws-1", "sigv4": True})),
    "scale-to-zero-pods-only": _invalid(lambda d: (d.update(minReplicas=0), d["metrics"].pop())),
    "bad-namespace": _invalid(lambda d: d["target"].update(namespace="Shop")),
    "null-behavior": _invalid(lambda d: d.update(behavior=None)),
}


@pytest.mark.parametrize("doc", list(AGREEMENT_TABLE.values()), ids=list(AGREEMENT_TABLE))
def test_schema_and_parser_agree_on_invalid_documents(doc: dict[str, Any]) -> None:
    schema_errors = list(jsonschema.Draft202012Validator(RULE_SCHEMA).iter_errors(copy.deepcopy(doc)))
    assert schema_errors, "the schema accepted a document the table says is invalid"
    assert errors_of(doc)


# --------------------------------------------------------------------------- lint


@pytest.mark.parametrize(
    ("query", "ok"),
    [
        ("sum by (pod) (rate(x_total[1m]))", True),
        ("sum(rate(x_total[1m])) by (namespace, pod)", True),
        ("avg without (container) (rate(x_total[1m]))", True),
        ("sum(rate(x_total[1m]))", False),
        ("sum by (namespace) (rate(x_total[1m]))", False),
        ("rate(requests_by_pod_total[1m])", False),
        ("sum without (pod) (rate(x_total[1m]))", False),
    ],
)
def test_lint_rule_pods_query_must_group_by_pod_label(query: str, ok: bool) -> None:
    doc = base_doc()
    doc["metrics"][0]["query"] = query
    errors, _ = lint_rule(parse_rule(doc))
    assert (errors == []) is ok


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ('sum(rate(x{a="b"}[1m])', "unclosed '(' from column 4"),
        ("sum(rate(x[1m)))", "unexpected ')' at column 14"),
        ('x{a="b}', 'unterminated " string starting at column 5'),
        ('x{a="(]\\""}', None),
        ("x # (unbalanced in a comment\n", None),
    ],
)
def test_check_promql_structure(query: str, problem: str | None) -> None:
    assert check_promql_structure(query) == ([] if problem is None else [problem])


def test_lint_rule_warnings_do_not_block() -> None:
    doc = base_doc(cooldownPeriodSeconds=60, behavior={"scaleUp": {"selectPolicy": "Disabled"}})
    errors, warnings = lint_rule(parse_rule(doc))
    assert errors == []
    assert warnings == [
        "cooldownPeriodSeconds: only matters when minReplicas is 0",
        "behavior.scaleUp.selectPolicy: Disabled: this rule never scales up",
    ]
