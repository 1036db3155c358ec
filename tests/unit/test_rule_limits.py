"""Untrusted rule documents: bounded parsing, number ranges, the operator's policy, bounded messages."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import jsonschema
import pytest

from ampscaler.errors import RuleInvalidError
from ampscaler.policy import RulePolicy
from ampscaler.rule import (
    DEFAULT_POLICY,
    RULE_SCHEMA,
    ErrorList,
    build_rule,
    lint_document,
    load_rule_text,
    parse_rule,
    show,
)
from tests.unit.test_rule import base_doc


def errors_of(doc: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(RuleInvalidError) as info:
        parse_rule(doc, **kwargs)
    return info.value.errors


def with_path(path: str, value: object) -> dict[str, Any]:
    """``base_doc()`` with ``value`` set at a dotted path such as ``metrics.0.target.averageValue``."""
    doc = base_doc()
    node: Any = doc
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[int(last) if last.isdigit() else last] = value
    return doc


BOMB_RULE = """\
apiVersion: ampscaler/v1
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
maxReplicas: *h
"""


# --------------------------------------------------------------------------- documents


def test_parse_rule_yaml_alias_bomb_is_a_clean_error_in_bounded_memory() -> None:
    # Before: the aliases expanded when maxReplicas' error message rendered the value (hundreds of MB).
    tracemalloc.start()
    try:
        errors = errors_of(BOMB_RULE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert errors == [
        "(document): invalid YAML: line 2 column 4: YAML anchors (&a) are not allowed in ampscaler "
        "documents; write the value out"
    ]
    assert peak < 2 * 1024 * 1024


def test_show_renders_at_most_its_limit_of_a_shared_structure() -> None:
    # A 9**9-element list built from shared references: rendering it whole would take gigabytes.
    value: Any = ["lol"] * 9
    for _ in range(8):
        value = [value] * 9
    tracemalloc.start()
    try:
        text = show(value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text.startswith('[[[[[[[[["lol", "lol"') and text.endswith("...")
    assert len(text) == 60
    assert peak < 256 * 1024


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(10**5000, "<a 5001-digit integer>", id="int-beyond-str-limit"),
        pytest.param("a\ud800b", '"a\\ud800b"', id="lone-surrogate-escaped"),
        pytest.param(float("nan"), "NaN", id="nan"),
        pytest.param({"a": [1, None, True]}, '{"a": [1, null, true]}', id="nested"),
        pytest.param("x" * 100, '"' + "x" * 56 + "...", id="long-string"),
    ],
)
def test_show_is_json_spelling_bounded_and_printable(value: object, expected: str) -> None:
    text = show(value)
    assert text == expected
    text.encode("utf-8")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "apiVersion: ampscaler/v1\nmaxReplicas: 5\nmaxReplicas: 500\n",
            'line 3 column 1: duplicate key "maxReplicas"',
            id="yaml-duplicate-keeps-last-before",
        ),
        pytest.param(
            '{"apiVersion": "ampscaler/v1", "maxReplicas": 5, "maxReplicas": 500}',
            'duplicate key "maxReplicas"',
            id="json-duplicate-keeps-last-before",
        ),
        pytest.param('{"maxReplicas": ' + "1" * 400 + "}", "400-digit integer", id="json-400-digits"),
        pytest.param("maxReplicas: " + "1" * 5000, "5000-digit integer", id="yaml-5000-digits"),
        pytest.param("[" * 3000 + "]" * 3000, "nested deeper than 64 levels", id="json-deep"),
        pytest.param(
            "a:\n" + "".join("  " * i + "- \n" for i in range(1, 80)), "nested deeper", id="yaml-deep"
        ),
        pytest.param(
            "x" * 9000, "the rule is at least 9000 bytes; at most 8192", id="over-ssm-advanced-limit"
        ),
        pytest.param(b"maxReplicas: caf\xe9", "not valid UTF-8", id="latin1-bytes"),
    ],
)
def test_load_rule_text_refusals_are_document_errors(text: str | bytes, message: str) -> None:
    with pytest.raises(RuleInvalidError) as info:
        load_rule_text(text)
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith("(document): ")
    assert message in info.value.errors[0]


def test_parse_rule_bom_is_accepted_like_the_file_reader() -> None:
    doc = json.dumps(base_doc())
    assert parse_rule("\ufeff" + doc) == parse_rule(doc)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("name", "team-a/web\n"),
        ("target.namespace", "shop\n"),
        ("target.name", "frontend\n"),
        ("target.cluster", "prod\n"),
        ("target.kind", "Deployment\n"),
        ("target.apiVersion", "apps/v1\n"),
        ("metrics.0.name", "rps\n"),
        ("metrics.0.podLabel", "pod\n"),
        ("prometheus", {"workspaceId": "ws-abc\n"}),
        ("prometheus", {"url": "http://prom:9090\n"}),
    ],
)
def test_parse_rule_names_with_a_trailing_newline_are_invalid(path: str, value: object) -> None:
    # Before: "$" matched before the final newline, so these passed and failed at run time.
    errors = errors_of(with_path(path, value))
    assert any("invalid value" in e for e in errors), errors


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("metrics.0.target.averageValue", 1e-9, "must be between 1e-06 and 1e+15, got 1e-09"),
        ("metrics.0.target.averageValue", 5e-10, "must be between 1e-06 and 1e+15, got 5e-10"),
        ("metrics.1.target.value", 1e16, "must be between 1e-06 and 1e+15, got 1e+16"),
        ("metrics.1.target.value", 1.7e308, "must be between 1e-06 and 1e+15, got 1.7e+308"),
        ("metrics.1.target.value", 10**400, "must be a number a float can hold, got <a 401-digit integer>"),
        ("metrics.0.activationThreshold", 2e305, "must be between 0 and 1e+15, got 2e+305"),
        ("metrics.1.emptyAs", -1e300, "must be between -1e+15 and 1e+15, got -1e+300"),
        ("tolerance", 1, "must be >= 0 and < 1, got 1"),
        ("behavior.scaleUp.tolerance", 5, "must be >= 0 and < 1, got 5"),
        (
            "maxReplicas",
            2**64,
            "must be at most 1000 (the operator's MAX_REPLICAS_CEILING), got 18446744073709551616",
        ),
        (
            "maxReplicas",
            10**400,
            "must be at most 1000 (the operator's MAX_REPLICAS_CEILING), got <a 401-digit",
        ),
        ("minReplicas", 1001, "must be at most 1000 (the operator's MAX_REPLICAS_CEILING), got 1001"),
        ("fallback", {"failureThreshold": 3, "replicas": 5000}, "got 5000"),
        ("fallback", {"failureThreshold": 10**6, "replicas": 1}, "must be between 1 and 10000, got 1000000"),
        (
            "behavior.scaleUp.policies",
            [{"type": "Pods", "value": 2**64, "periodSeconds": 15}],
            "must be at most 1000 (the operator's MAX_REPLICAS_CEILING), got 18446744073709551616",
        ),
        (
            "behavior.scaleUp.policies",
            [{"type": "Percent", "value": 2**64, "periodSeconds": 15}],
            "must be between 1 and 10000, got 18446744073709551616",
        ),
        ("cooldownPeriodSeconds", 10**12, "must be between 0 and 604800, got 1000000000000"),
        ("evaluationIntervalSeconds", 3601, "must be between 1 and 3600, got 3601"),
        ("maxReplicas", 1e300, "must be at most 1000"),
    ],
)
def test_parse_rule_numbers_outside_their_range_are_invalid(path: str, value: object, message: str) -> None:
    errors = errors_of(with_path(path, value))
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metrics.0.target.averageValue", 1e-6),
        ("metrics.1.target.value", 1e15),
        ("tolerance", 0.999),
        ("maxReplicas", 1000),
        ("behavior.scaleUp.policies", [{"type": "Percent", "value": 10000, "periodSeconds": 15}]),
    ],
)
def test_parse_rule_numbers_at_their_bounds_are_valid(path: str, value: object) -> None:
    parse_rule(with_path(path, value))


def test_error_list_number_huge_int_is_an_error_not_an_overflow() -> None:
    errors = ErrorList()
    assert errors.number(10**400, "x") is None
    assert errors.items == ["x: must be a number a float can hold, got <a 401-digit integer>"]


# --------------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("policy", "target", "message"),
    [
        pytest.param(
            DEFAULT_POLICY,
            {"namespace": "kube-system"},
            "target.namespace: namespace 'kube-system' is a system namespace; rules may scale it only "
            "when ALLOWED_NAMESPACES lists it explicitly",
            id="kube-system",
        ),
        pytest.param(DEFAULT_POLICY, {"namespace": "kube-public"}, "system namespace", id="kube-public"),
        pytest.param(DEFAULT_POLICY, {"namespace": "kube-node-lease"}, "system namespace", id="node-lease"),
        pytest.param(DEFAULT_POLICY, {"namespace": "amazon-cloudwatch"}, "system namespace", id="amazon-x"),
        pytest.param(
            RulePolicy(allowed_namespaces=("shop", "web")),
            {"namespace": "payments"},
            "target.namespace: namespace 'payments' is not in ALLOWED_NAMESPACES (shop, web)",
            id="not-listed",
        ),
        pytest.param(
            RulePolicy(allowed_namespaces=("shop",)),
            {"namespace": "kube-system"},
            "is not in ALLOWED_NAMESPACES (shop)",
            id="system-not-listed",
        ),
        pytest.param(
            RulePolicy(allowed_clusters=("prod-eu",)),
            {},
            "target.cluster: cluster 'prod' is not in ALLOWED_CLUSTERS (prod-eu)",
            id="cluster",
        ),
    ],
)
def test_parse_rule_target_outside_the_policy_is_invalid(
    policy: RulePolicy, target: dict[str, str], message: str
) -> None:
    doc = base_doc()
    doc["target"].update(target)
    errors = errors_of(doc, policy=policy)
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize(
    ("policy", "namespace"),
    [
        (RulePolicy(allowed_namespaces=("kube-system",)), "kube-system"),
        (RulePolicy(allowed_namespaces=("amazon-cloudwatch", "shop")), "amazon-cloudwatch"),
        (DEFAULT_POLICY, "amazon"),
        (DEFAULT_POLICY, "kubernetes-dashboard"),
        (RulePolicy(allowed_clusters=("prod",)), "shop"),
    ],
)
def test_parse_rule_target_inside_the_policy_is_valid(policy: RulePolicy, namespace: str) -> None:
    doc = base_doc()
    doc["target"]["namespace"] = namespace
    assert parse_rule(doc, policy=policy).target.namespace == namespace


def test_parse_rule_default_cluster_is_checked_against_allowed_clusters() -> None:
    doc = base_doc()
    del doc["target"]["cluster"]
    errors = errors_of(doc, default_cluster="dev", policy=RulePolicy(allowed_clusters=("prod",)))
    assert errors == ["target: cluster 'dev' is not in ALLOWED_CLUSTERS (prod)"]


def test_parse_rule_ceiling_is_the_operators() -> None:
    policy = RulePolicy(max_replicas_ceiling=10)
    assert errors_of(base_doc(), policy=policy) == [
        "maxReplicas: must be at most 10 (the operator's MAX_REPLICAS_CEILING), got 20"
    ]
    assert (
        parse_rule(base_doc(maxReplicas=5000), policy=RulePolicy(max_replicas_ceiling=5000)).max_replicas
        == 5000
    )


# --------------------------------------------------------------------------- lint of raw documents


def test_lint_document_reports_query_problems_of_an_otherwise_invalid_document() -> None:
    doc = base_doc(maxReplicas="ten")
    doc["metrics"][0]["query"] = "sum(rate(x[2m])"
    doc["metrics"][1]["query"] = 'sum(x{a="b}'
    errors = ErrorList()
    assert build_rule(doc, errors) is None
    assert lint_document(doc) == [
        "metrics[0].query: unclosed '(' from column 4",
        "metrics[0].query: a Pods query must return one series per pod, grouped by the 'pod' label "
        "(aggregate with sum by (pod) (...))",
        'metrics[1].query: unterminated " string starting at column 9',
    ]


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {"metrics": "x"},
        {"metrics": [1, {"query": 3}, {"query": " "}]},
        {"metrics": [{"query": "x", "type": "Pods", "podLabel": 7}]},
    ],
)
def test_lint_document_skips_what_the_format_check_reports(doc: object) -> None:
    assert lint_document(doc) == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a\nb", "a\\nb: unknown field"),
        ("x\u2028y", "x\\u2028y: unknown field"),
        ("k" * 500, "k" * 197 + "...: unknown field"),
    ],
)
def test_parse_rule_errors_are_one_bounded_line_whatever_the_keys(key: str, expected: str) -> None:
    doc = base_doc()
    doc[key] = 1
    (error,) = errors_of(doc)
    assert error.startswith(expected)
    assert "\n" not in error and "\u2028" not in error


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metrics.0.target.averageValue", 5e-10),
        ("metrics.1.target.value", 1e16),
        ("metrics.0.activationThreshold", 2e305),
        ("metrics.1.emptyAs", -1e300),
        ("behavior.scaleUp.tolerance", 5),
        ("maxReplicas", 2**64),
        ("fallback", {"failureThreshold": 10**6, "replicas": 1}),
        ("behavior.scaleUp.policies", [{"type": "Percent", "value": 2**64, "periodSeconds": 15}]),
        ("cooldownPeriodSeconds", 10**12),
        ("evaluationIntervalSeconds", 3601),
    ],
)
def test_published_schema_refuses_the_same_out_of_range_numbers(path: str, value: object) -> None:
    # One source of truth: the schema's bounds are the parser's constants.
    validator = jsonschema.Draft202012Validator(RULE_SCHEMA)
    assert list(validator.iter_errors(with_path(path, value)))
    errors_of(with_path(path, value))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://user:secret@prom.example.com", "must not carry credentials"),
        ("https://prom.example.com/api?x=1", "must not have a query string or fragment"),
        ("https://prom.example.com/#frag", "must not have a query string or fragment"),
    ],
)
def test_prometheus_url_with_credentials_or_query_is_invalid(url: str, message: str) -> None:
    from ampscaler.errors import RuleInvalidError
    from ampscaler.rule import parse_rule

    doc = {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "web"},
        "maxReplicas": 5,
        "prometheus": {"url": url},
        "metrics": [
            {"name": "rps", "type": "External", "query": "sum(x)", "target": {"type": "Value", "value": 10}}
        ],
    }
    with pytest.raises(RuleInvalidError) as info:
        parse_rule(doc, name="shop/web")
    assert any(message in e for e in info.value.errors)
    assert "secret" not in str(info.value)
