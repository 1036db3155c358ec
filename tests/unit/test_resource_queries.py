"""The default cAdvisor queries of Resource/ContainerResource metrics and their stack/rule settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ampscaler.adapters.amp import resource_observation_from_data
from ampscaler.errors import AmpscalerError, MetricQueryError
from ampscaler.model import MetricSpec, MetricTarget, ResourceName, ResourceSeries
from ampscaler.resource_queries import (
    MAX_POD_MATCHER_PODS,
    STACK_DEFAULT_SERIES,
    ResolvedSeries,
    default_query,
    pod_regex,
    promql_string,
    resolve_series,
    resource_query,
)
from ampscaler.settings import Settings


def resource_spec(
    resource: ResourceName = "cpu",
    *,
    container: str | None = None,
    query: str = "",
    series: ResourceSeries | None = None,
) -> MetricSpec:
    return MetricSpec(
        name="cpu",
        type="ContainerResource" if container else "Resource",
        query=query,
        target=MetricTarget(type="Utilization", average_utilization=60),
        resource=resource,
        container=container,
        series=series,
    )


@dataclass(frozen=True)
class QueryCase:
    name: str
    resource: ResourceName
    pods: tuple[str, ...] | None
    expected: str
    series: ResolvedSeries = STACK_DEFAULT_SERIES
    container: str | None = None


QUERY_CASES = [
    QueryCase(
        "cpu rate per pod without pause and pod-level series",
        "cpu",
        ("web-1", "web-2"),
        'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="shop", pod=~"web-1|web-2", '
        'container!="", container!="POD"}[180s]))',
    ),
    QueryCase(
        "memory working set per pod, no rate",
        "memory",
        ("web-1",),
        'sum by (pod) (container_memory_working_set_bytes{namespace="shop", pod=~"web-1", '
        'container!="", container!="POD"})',
    ),
    QueryCase(
        "container resource keeps the named container only",
        "cpu",
        ("web-1",),
        'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="shop", pod=~"web-1", '
        'container="app"}[180s]))',
        container="app",
    ),
    QueryCase(
        "no pod list selects the namespace",
        "memory",
        None,
        'sum by (pod) (container_memory_working_set_bytes{namespace="shop", container!="", container!="POD"})',
    ),
    QueryCase(
        "relabelled names and window",
        "cpu",
        ("web-1",),
        'sum by (pod_name) (rate(k8s_cpu_seconds{kube_namespace="shop", pod_name=~"web-1", '
        'container_name!="", container_name!="POD"}[60s]))',
        series=ResolvedSeries(
            cpu_metric="k8s_cpu_seconds",
            namespace_label="kube_namespace",
            pod_label="pod_name",
            container_label="container_name",
            window_seconds=60,
        ),
    ),
    QueryCase(
        "pod names are matched literally, sorted and unique",
        "memory",
        ("web.b", "web.a", "web.b"),
        'sum by (pod) (container_memory_working_set_bytes{namespace="shop", pod=~"web\\\\.a|web\\\\.b", '
        'container!="", container!="POD"})',
    ),
]


@pytest.mark.parametrize("case", QUERY_CASES, ids=lambda c: c.name)
def test_default_query_table(case: QueryCase) -> None:
    assert default_query(case.resource, "shop", case.pods, case.series, case.container) == case.expected


def test_default_query_too_many_pods_selects_the_namespace() -> None:
    pods = [f"web-{i}" for i in range(MAX_POD_MATCHER_PODS + 1)]
    query = default_query("cpu", "shop", pods)
    assert "pod=~" not in query and 'namespace="shop"' in query
    spec_query = resource_query(resource_spec(), "shop", pods)
    assert not spec_query.names_pods


def test_default_query_invalid_name_refused_not_injected() -> None:
    bad = ResolvedSeries(cpu_metric='x{a="b"}', pod_label="pod) or vector(1", window_seconds=0)
    with pytest.raises(MetricQueryError) as info:
        default_query("cpu", "shop", ["web-1"], bad)
    message = str(info.value)
    assert "cpu_metric" in message and "pod_label" in message and "window_seconds" in message


def test_promql_string_escapes_quotes_backslashes_and_newlines() -> None:
    assert promql_string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_pod_regex_escapes_every_re2_metacharacter() -> None:
    assert pod_regex(["a.b+c*d?e(f)g|h[i]j{k}l^m$n\\o"]) == (
        "a\\.b\\+c\\*d\\?e\\(f\\)g\\|h\\[i\\]j\\{k\\}l\\^m\\$n\\\\o"
    )


def test_resolve_series_rule_fields_override_stack_fields_one_by_one() -> None:
    stack = ResolvedSeries(pod_label="pod_name", window_seconds=120)
    resolved = resolve_series(ResourceSeries(container_label="c", window_seconds=60), stack)
    assert resolved == ResolvedSeries(pod_label="pod_name", container_label="c", window_seconds=60)
    assert resolve_series(None, stack) is stack


def test_resource_query_own_query_runs_as_written_with_the_window() -> None:
    spec = resource_spec(query="sum by (pod) (my_cpu)", series=ResourceSeries(window_seconds=90))
    query = resource_query(spec, "shop", ["web-1"])
    assert (query.query, query.pod_label, query.window_seconds, query.names_pods) == (
        "sum by (pod) (my_cpu)",
        "pod",
        90,
        False,
    )


def test_resource_query_memory_has_no_window() -> None:
    assert resource_query(resource_spec("memory"), "shop", ["web-1"]).window_seconds is None


# -- reading the answer --------------------------------------------------------------------------


def vector(*series: tuple[dict[str, str], str], at: float = 1700000000.0) -> dict[str, Any]:
    return {
        "resultType": "vector",
        "result": [{"metric": labels, "value": [at, value]} for labels, value in series],
    }


def test_resource_observation_per_pod_usage_time_and_window() -> None:
    spec = resource_spec()
    query = resource_query(spec, "shop", ["web-1", "web-2"])
    data = vector(({"pod": "web-1"}, "0.25"), ({"pod": "web-2"}, "0.5"), ({"pod": "other"}, "9"))
    observation = resource_observation_from_data(spec, data, query, ["web-1", "web-2"])
    assert observation.error is None
    assert observation.pod_values == {"web-1": 0.25, "web-2": 0.5}
    assert observation.timestamp == 1700000000.0
    assert observation.window_seconds == 180.0


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (vector(), "no cpu usage series for the target's pods"),
        (vector(({"pod": "other"}, "1")), "no cpu usage series"),
        (vector(({"container": "app"}, "1")), "has no 'pod' label"),
        (
            vector(({"pod": "web-1", "c": "a"}, "1"), ({"pod": "web-1", "c": "b"}, "1")),
            "more than one series",
        ),
        (vector(({"pod": "web-1"}, "NaN")), "NaN"),
        ({"resultType": "scalar", "result": [1, "1"]}, "instant vector with one series per pod"),
    ],
)
def test_resource_observation_problems_are_errors(data: dict[str, Any], fragment: str) -> None:
    spec = resource_spec()
    query = resource_query(spec, "shop", ["web-1"])
    observation = resource_observation_from_data(spec, data, query, ["web-1"])
    assert observation.pod_values is None
    assert observation.error is not None and fragment in observation.error


# -- stack settings ------------------------------------------------------------------------------


def test_settings_default_series_are_cadvisor_names() -> None:
    assert Settings.from_env({}).resource_series == ResolvedSeries(
        cpu_metric="container_cpu_usage_seconds_total",
        memory_metric="container_memory_working_set_bytes",
        namespace_label="namespace",
        pod_label="pod",
        container_label="container",
        window_seconds=180,
    )


def test_settings_series_from_env() -> None:
    settings = Settings.from_env(
        {
            "RESOURCE_POD_LABEL": "pod_name",
            "RESOURCE_WINDOW_SECONDS": "60",
            "RESOURCE_CPU_METRIC": "cpu_total",
        }
    )
    assert settings.resource_series == ResolvedSeries(
        cpu_metric="cpu_total", pod_label="pod_name", window_seconds=60
    )


def test_settings_bad_series_names_every_variable() -> None:
    with pytest.raises(AmpscalerError) as info:
        Settings.from_env(
            {
                "RESOURCE_POD_LABEL": "pod-name",
                "RESOURCE_WINDOW_SECONDS": "0",
                "RESOURCE_MEMORY_METRIC": "a b",
            }
        )
    message = str(info.value)
    assert "RESOURCE_POD_LABEL: 'pod-name' is not a Prometheus label name" in message
    assert "RESOURCE_WINDOW_SECONDS: 0 is outside 1 … 3600 seconds" in message
    assert "RESOURCE_MEMORY_METRIC: 'a b' is not a Prometheus metric name" in message
    with pytest.raises(AmpscalerError, match="RESOURCE_WINDOW_SECONDS='3m': must be an int"):
        Settings.from_env({"RESOURCE_WINDOW_SECONDS": "3m"})
