"""Prometheus Adapter configuration: loading, naming (matches/as), association and query rendering."""

from __future__ import annotations

import re

import pytest

from ampscaler.importers import ImportInputError, load_adapter_config
from ampscaler.importers.adapter import (
    AdapterConfig,
    AdapterLookupError,
    AdapterRule,
    GroupResource,
    ResolvedMetric,
    go_expand,
    label_for_resource,
    label_matchers,
    metric_name_for_series,
    render_external_query,
    render_object_query,
    render_pods_query,
    series_for_metric,
)
from ampscaler.importers.common import selector_requirements
from tests.unit.importers.support import fixture_text

BARE_WALKTHROUGH = """
rules:
- seriesQuery: 'http_requests_total{kubernetes_namespace!="",kubernetes_pod_name!=""}'
  resources:
    overrides:
      kubernetes_namespace: {resource: "namespace"}
      kubernetes_pod_name: {resource: "pod"}
  name:
    matches: "^(.*)_total"
    as: "${1}_per_second"
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
"""


def _rule(**fields: object) -> AdapterRule:
    defaults: dict[str, object] = {
        "section": "rules",
        "index": 0,
        "series_query": '{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}',
        "metrics_query": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
        "overrides": {"namespace": GroupResource("", "namespace"), "pod": GroupResource("", "pod")},
        "name_matches": "^container_(.*)_seconds_total$",
        "name_as": "$1",
    }
    defaults.update(fields)
    return AdapterRule(**defaults)  # type: ignore[arg-type]


def test_adapter_config_configmap_bare_and_helm_values_load_the_same_walkthrough_rule() -> None:
    helm = "rules:\n  default: false\n  custom:" + BARE_WALKTHROUGH.split("rules:", 1)[1].replace(
        "\n", "\n  "
    )
    configmap = load_adapter_config(fixture_text("adapter-configmap.yaml"))
    bare = load_adapter_config(BARE_WALKTHROUGH)
    values = load_adapter_config(helm)

    assert bare.rules[0] == configmap.rules[0] == values.rules[0]
    assert configmap.rules[0].overrides == {
        "kubernetes_namespace": GroupResource("", "namespace"),
        "kubernetes_pod_name": GroupResource("", "pod"),
    }
    assert (len(configmap.rules), len(configmap.external_rules), configmap.has_resource_rules) == (2, 1, True)
    assert bare.external_rules == () and not bare.has_resource_rules


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: ConfigMap\ndata: {}\n", 'adapter ConfigMap has no data["config.yaml"]'),
        ("prometheus: {url: http://p}\n", "adapter config has none of rules/externalRules/resourceRules"),
        ("rules: [{seriesQuery: 'x', seriesFilters: [{}]}]", "rules[0].seriesFilters[0]: needs exactly one"),
        (
            "rules: [{seriesQuery: 'x', metricsQuery: 'x', name: {matches: '(a)(b)'}}]",
            "rules[0].name.as: required",
        ),
        ("rules: [{seriesQuery: 'x'}]", "rules[0].metricsQuery: missing"),
        ("rules: [\n", "adapter config: invalid YAML"),
    ],
)
def test_adapter_config_invalid_is_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(ImportInputError, match=re.escape(message)):
        load_adapter_config(text)


def test_adapter_name_defaults_follow_upstream() -> None:
    config = load_adapter_config(
        "rules:\n"
        "- {seriesQuery: 'a_total', metricsQuery: q}\n"
        "- {seriesQuery: 'b_total', metricsQuery: q, name: {matches: '^(.*)_total$'}}\n"
    )
    assert [r.name_as for r in config.rules] == ["$0", "$1"]
    assert metric_name_for_series(config.rules[0], "a_total") == "a_total"
    assert metric_name_for_series(config.rules[1], "b_total") == "b"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${1}_per_second", "http_requests_per_second"),
        # Go takes the longest name: "$1_per_second" is group "1_per_second", which does not exist.
        ("$1_per_second", ""),
        ("$0", "http_requests_total"),
        ("${name}-x", "http_requests-x"),
        ("cost$$", "cost$"),
        ("$", "$"),
        ("${1", "${1"),
    ],
)
def test_go_expand_matches_regexp_expand(template: str, expected: str) -> None:
    match = re.search(r"^(?P<name>.*)_total", "http_requests_total")
    assert match is not None
    assert go_expand(template, match) == expected


def test_series_name_is_found_by_inverting_name_as_and_checked_against_series_query() -> None:
    rule = _rule()
    assert series_for_metric(rule, "cpu_usage") == "container_cpu_usage_seconds_total"
    # The candidate must match the seriesQuery's __name__ regex.
    assert series_for_metric(_rule(series_query='{__name__=~"^node_.*"}'), "cpu_usage") is None
    # seriesFilters apply to the candidate too.
    assert series_for_metric(_rule(series_filters=((False, "cpu"),)), "cpu_usage") is None
    # A literal series name is named forwards only.
    literal = _rule(
        series_query='http_requests_total{pod!=""}', name_matches="^(.*)_total$", name_as="${1}_rps"
    )
    assert series_for_metric(literal, "http_requests_rps") == "http_requests_total"
    assert series_for_metric(literal, "other_rps") is None


def test_series_filter_isnot_excludes_bytes_series(configmap_adapter: AdapterConfig) -> None:
    nginx = configmap_adapter.rules[1]
    assert series_for_metric(nginx, "requests_per_second") == "nginx_ingress_controller_requests_total"
    assert series_for_metric(nginx, "response_size_bytes_per_second") is None


def test_walkthrough_pods_query_drops_the_pod_matcher_and_groups_by_the_pod_label() -> None:
    config = load_adapter_config(BARE_WALKTHROUGH)
    resolved = config.resolve("http_requests_per_second", "rules")

    assert resolved == ResolvedMetric(config.rules[0], "http_requests_total")
    assert render_pods_query(resolved, "production", None) == (
        'sum(rate(http_requests_total{kubernetes_namespace="production"}[2m])) by (kubernetes_pod_name)',
        "kubernetes_pod_name",
    )


def test_object_query_uses_template_label_for_the_kind_and_its_group() -> None:
    rule = _rule(
        overrides={},
        template="kube_<<.Group>>_<<.Resource>>",
        series_query="http_requests_total",
        name_matches="",
        name_as="$0",
        metrics_query="sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
    )
    query = render_object_query(
        ResolvedMetric(rule, "http_requests_total"), "shop", "Deployment", "apps/v1", "web", None
    )
    # Core-group namespace renders with an empty group, as the adapter does.
    expected = 'sum(http_requests_total{kube__namespace="shop",kube_apps_deployment="web"})'
    assert query == expected + " by (kube_apps_deployment)"


def test_external_query_selector_first_then_namespace_and_empty_group_by(
    configmap_adapter: AdapterConfig,
) -> None:
    resolved = configmap_adapter.resolve("queue_messages_ready", "externalRules")
    selector = {
        "matchLabels": {"vhost": "/"},
        "matchExpressions": [{"key": "queue", "operator": "NotIn", "values": ["b", "a"]}],
    }

    assert render_external_query(resolved, "shop", selector) == (
        'sum(rabbitmq_queue_messages_ready{queue!~"a|b",vhost="/",namespace="shop"}) by (queue)'
    )


def test_external_query_without_matchers_leaves_no_dangling_comma() -> None:
    rule = _rule(
        section="externalRules",
        namespaced=False,
        series_query="queue_depth",
        name_matches="",
        name_as="$0",
        metrics_query='sum(<<.Series>>{<<.LabelMatchers>>,job="q"})',
    )
    assert (
        render_external_query(ResolvedMetric(rule, "queue_depth"), "ns", None) == 'sum(queue_depth{job="q"})'
    )


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"matchLabels": {"a": "1"}}, ['a="1"']),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]}, ['a=~"x"']),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x"]}]}, ['a=~"x|y"']),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}, ['a!~"x"']),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, ['a!=""']),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, ['a=""']),
        ({"matchLabels": {"z": "1", "b": 'q"'}}, ['b="q\\""', 'z="1"']),
    ],
)
def test_label_matchers_follow_the_adapters_operator_table(
    selector: dict[str, object], expected: list[str]
) -> None:
    assert label_matchers(selector_requirements(selector)) == expected


def test_rule_without_pod_mapping_cannot_serve_pods_metrics() -> None:
    rule = _rule(overrides={"namespace": GroupResource("", "namespace")})
    with pytest.raises(AdapterLookupError, match=r"rules\[0\] maps no label to pod"):
        label_for_resource(rule, GroupResource("", "pod"))


def test_resolve_reports_missing_section() -> None:
    with pytest.raises(AdapterLookupError, match="the adapter config has no externalRules"):
        load_adapter_config(BARE_WALKTHROUGH).resolve("queue", "externalRules")
