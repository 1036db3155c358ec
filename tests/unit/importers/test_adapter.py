"""Prometheus Adapter configuration: loading, naming (matches/as), association and query rendering."""

from __future__ import annotations

import json
import re

import pytest

from ampscaler.importers import ImportInputError, load_adapter_config
from ampscaler.importers.adapter import (
    NAMESPACE,
    POD,
    AdapterConfig,
    AdapterLookupError,
    AdapterRule,
    GroupResource,
    ResolvedMetric,
    edit_distance,
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
        ("kind: ConfigMap\nmetadata: {name: a}\ndata: {}\n", "adapter ConfigMap a: no data key holds"),
        ("replicas: 2\n", "adapter config has none of rules/externalRules/resourceRules"),
        ("rules: {existing: my-rules}\n", "values: rules.existing names ConfigMap 'my-rules'"),
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


# --- where the configuration is kept ----------------------------------------------------------


def test_configmap_with_another_data_key_is_read_from_that_key() -> None:
    text = fixture_text("adapter-configmap.yaml").replace("  config.yaml: |", "  adapter.yaml: |")

    config = load_adapter_config(text)

    assert len(config.rules) == 2
    assert config.notes[0] == 'read ConfigMap adapter-config data["adapter.yaml"]'


def test_chart_values_default_true_expands_to_the_charts_six_rules_before_custom() -> None:
    # prometheus-community/helm-charts charts/prometheus-adapter: values.yaml has rules.default: true,
    # templates/configmap.yaml renders the six default rules, then rules.custom.
    custom = BARE_WALKTHROUGH.split("rules:", 1)[1].replace("\n", "\n  ")
    config = load_adapter_config(
        "prometheus:\n  url: http://prometheus.monitoring.svc\nrules:\n  custom:" + custom
    )

    assert len(config.rules) == 7
    assert "rules.default true (the chart's default, not set here)" in config.notes[0]
    # The chart's cAdvisor counter rule (rules[0]) renders with its own [5m] rate and pause filter.
    resolved = ResolvedMetric(config.rules[0], "container_cpu_usage_seconds_total")
    assert metric_name_for_series(config.rules[0], "container_cpu_usage_seconds_total") == "cpu_usage"
    assert render_pods_query(resolved, "shop", None) == (
        'sum(rate(container_cpu_usage_seconds_total{namespace="shop",container!="POD"}[5m])) by (pod)',
        "pod",
    )


def test_several_entries_naming_a_metric_take_the_closest_series_and_list_the_others() -> None:
    config = load_adapter_config("rules:\n  default: true\n")

    # Without Prometheus every default rule could name "cpu_usage" from some series: the one whose
    # series is the metric's own name wins, the cAdvisor readings are listed for the user to check.
    resolved = config.resolve("cpu_usage", "rules", (NAMESPACE, POD))

    assert (resolved.rule.index, resolved.series) == (3, "cpu_usage")
    assert resolved.alternatives == (
        "rules[0] from series 'container_cpu_usage_seconds_total'",
        "rules[1] from series 'container_cpu_usage_total'",
        "rules[2] from series 'container_cpu_usage'",
        "rules[4] from series 'cpu_usage_total'",
        "rules[5] from series 'cpu_usage_seconds_total'",
    )


def test_helm_release_values_are_read_and_values_from_is_noted() -> None:
    config = load_adapter_config(fixture_text("adapter-helmrelease.yaml"))

    assert [r.series_query for r in config.rules] == ['http_requests_total{namespace!="",pod!=""}']
    assert config.resource_series == {"cpu": {"windowSeconds": 300}, "memory": {}}
    assert config.notes[0].startswith(
        'HelmRelease prometheus-adapter: spec.valuesFrom ConfigMap prometheus-adapter-overrides key "values.yaml" '
        "is merged by Flux in the cluster and cannot be followed"
    )
    assert config.notes[1] == (
        "read HelmRelease prometheus-adapter spec.values as prometheus-adapter chart values: rules.default false"
    )


def test_argo_application_multi_source_values_string_and_relabelled_resource_rules() -> None:
    config = load_adapter_config(fixture_text("adapter-argocd.yaml"))

    assert len(config.rules) == 7  # rules.default left at the chart's true, plus one custom rule
    assert config.resolve("orders_in_flight", "rules", (NAMESPACE, POD)).series == "shop_orders_in_flight"
    relabelled = {
        "namespaceLabel": "kubernetes_namespace",
        "podLabel": "kubernetes_pod_name",
        "containerLabel": "container_name",
    }
    assert config.resource_series == {"cpu": {**relabelled, "windowSeconds": 120}, "memory": relabelled}
    assert "spec.sources[1].helm.valueFiles $values/monitoring/prometheus-adapter.yaml" in config.notes[0]


def test_argo_application_values_object_wins_over_the_values_string() -> None:
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "adapter"},
        "spec": {
            "source": {
                "chart": "prometheus-adapter",
                "helm": {
                    "values": "rules: {default: true}",
                    "valuesObject": {
                        "rules": {"default": False, "external": [{"seriesQuery": "q", "metricsQuery": "m"}]}
                    },
                },
            }
        },
    }

    config = load_adapter_config(json.dumps(application))

    assert (len(config.rules), len(config.external_rules)) == (0, 1)
    assert config.notes == (
        "read Application adapter spec.source.helm.valuesObject as prometheus-adapter chart values: rules.default false",
    )


def test_other_charts_and_kinds_are_passed_over() -> None:
    text = (
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: grafana}\n"
        "spec: {chart: {spec: {chart: grafana}}, values: {rules: {default: false}}}\n---\n" + BARE_WALKTHROUGH
    )
    assert len(load_adapter_config(text).rules) == 1


# --- the nearest entry, when none exposes the metric ------------------------------------------------


def _nearest(config_text: str, metric: str, needs: tuple[GroupResource, ...] = (NAMESPACE, POD)) -> str:
    with pytest.raises(AdapterLookupError) as raised:
        load_adapter_config(config_text).resolve(metric, "rules", needs)
    return str(raised.value)


def test_nearest_entry_names_a_name_matches_with_stray_whitespace() -> None:
    config = BARE_WALKTHROUGH.replace('matches: "^(.*)_total"', 'matches: "^(.*)_total "')

    assert _nearest(config, "http_requests_per_second") == (
        "no adapter rules entry exposes custom metric 'http_requests_per_second'; nearest is rules[0] (seriesQuery "
        "'http_requests_total{kubernetes_namespace!=\"\",kubernetes_pod_name!=\"\"}'): name.matches '^(.*)_total ' "
        "does not match series 'http_requests_total' (the pattern has stray whitespace: '^(.*)_total ')"
    )


def test_nearest_entry_names_an_as_renaming() -> None:
    message = _nearest(BARE_WALKTHROUGH, "http_requests_total")

    assert message.endswith(
        "name.as '${1}_per_second' renames series 'http_requests_total' to 'http_requests_per_second', "
        "not 'http_requests_total'"
    )


def test_nearest_entry_names_the_missing_pod_association() -> None:
    config = BARE_WALKTHROUGH.replace('      kubernetes_pod_name: {resource: "pod"}\n', "").replace(
        ',kubernetes_pod_name!=""', ""
    )

    assert _nearest(config, "http_requests_per_second").endswith(
        "it exposes series 'http_requests_total' as 'http_requests_per_second' but associates no label with pod "
        "(resources.overrides maps kubernetes_namespace -> namespace; seriesQuery labels: kubernetes_namespace), "
        "so the adapter does not serve it per pod"
    )


def test_nearest_entry_is_the_one_that_got_furthest_then_the_closest_name() -> None:
    config = """
rules:
- seriesQuery: '{__name__=~"^node_.*"}'
  resources: {template: <<.Resource>>}
  name: {matches: "^node_(.*)$", as: "node_${1}"}
  metricsQuery: q
- seriesQuery: 'jobs_waiting{namespace!=""}'
  resources: {template: <<.Resource>>}
  name: {as: "jobs_backlog"}
  metricsQuery: q
- seriesQuery: 'jobs_queued{namespace!=""}'
  resources: {template: <<.Resource>>}
  name: {as: "jobs_queue"}
  metricsQuery: q
"""
    # rules[0] stops at discovery (stage 2); rules[1] and [2] name a series otherwise (stage 5), and
    # 'jobs_queue' is 1 edit from 'jobs_queued' where 'jobs_backlog' is 6.
    message = _nearest(config, "jobs_queued")

    assert "nearest is rules[2]" in message
    assert message.endswith(
        "name.as 'jobs_queue' renames series 'jobs_queued' to 'jobs_queue', not 'jobs_queued'"
    )


def test_nearest_entry_names_a_series_filter() -> None:
    config = """
rules:
- seriesQuery: '{__name__=~"^app_.*",namespace!="",pod!=""}'
  seriesFilters: [{isNot: "_bytes_total$"}]
  resources: {template: <<.Resource>>}
  name: {matches: "^app_(.*)_total$", as: "${1}_per_second"}
  metricsQuery: q
"""
    assert _nearest(config, "sent_bytes_per_second").endswith(
        "seriesFilters[0] isNot '_bytes_total$' drops series 'app_sent_bytes_total'"
    )


def test_edit_distance_is_levenshtein() -> None:
    assert [edit_distance(a, b) for a, b in [("", "abc"), ("kitten", "sitting"), ("same", "same")]] == [
        3,
        3,
        0,
    ]
