"""The default Resource/ContainerResource queries against real Prometheus fed cAdvisor-shaped series.

Real: the Debian Prometheus binary (PromQL, rate(), regex matchers), remote write, the SigV4 proxy
standing in for AMP, and AmpMetricsSource. The series are what the kubelet's cAdvisor endpoint
exposes per pod: one per container, the pause container (``container="POD"``) and the pod cgroup
(no ``container`` label), which the queries must leave out (devstack/cadvisor.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest

from ampscaler import resource_queries
from ampscaler.adapters.amp import AmpMetricsSource
from ampscaler.engine.types import MetricObservation, PodInfo
from ampscaler.model import MetricSpec, MetricTarget, ResourceName, ResourceSeries, Rule, ScaleTargetRef
from ampscaler.resource_queries import ResolvedSeries
from ampscaler.settings import Settings
from devstack.cadvisor import ContainerUsage, PodUsage, pod_series, sample_times
from tests.fixtures.prometheus import AmpStack, WriteSeries

pytestmark = pytest.mark.integration

MiB = 1024.0 * 1024.0


def resource_spec(
    resource: ResourceName = "cpu",
    *,
    container: str | None = None,
    query: str = "",
    series: ResourceSeries | None = None,
) -> MetricSpec:
    return MetricSpec(
        name=resource,
        type="ContainerResource" if container else "Resource",
        query=query,
        target=MetricTarget(type="Utilization", average_utilization=60),
        resource=resource,
        container=container,
        series=series,
    )


def rule_for(namespace: str, *metrics: MetricSpec) -> Rule:
    return Rule(
        name="web",
        target=ScaleTargetRef("prod", namespace, "Deployment", "web"),
        min_replicas=1,
        max_replicas=10,
        metrics=metrics,
    )


def source_for(
    stack: AmpStack, series: ResolvedSeries = resource_queries.STACK_DEFAULT_SERIES
) -> AmpMetricsSource:
    return AmpMetricsSource(
        workspace_id=stack.workspace_id,
        region=stack.region,
        session=stack.session(),
        endpoint_url=stack.endpoint_url,
        resource_series=series,
    )


def usage(observation: MetricObservation) -> dict[str, float]:
    assert observation.error is None, observation.error
    return dict(observation.pod_values or {})


def pods(*names: str) -> list[PodInfo]:
    return [PodInfo(name) for name in names]


def feed(
    write: WriteSeries,
    namespace: str,
    usage: Mapping[str, Mapping[str, ContainerUsage]],
    end: float,
    names: ResolvedSeries = resource_queries.STACK_DEFAULT_SERIES,
) -> None:
    """Five minutes of cAdvisor scrapes every 15 s for each pod of ``usage``, ending at ``end``."""
    times = sample_times(end, 300)
    series = []
    for pod, containers in usage.items():
        series += pod_series(PodUsage(namespace, pod, containers), times, names)
    write(series)


def namespace_of(metric_name: str) -> str:
    # One namespace per test: the cAdvisor series names are shared by every test of the session.
    return metric_name.replace("_", "-").lower()[:63].strip("-")


WEB = {
    "web-1": {"app": ContainerUsage(0.25, 200 * MiB), "proxy": ContainerUsage(0.05, 50 * MiB)},
    "web.2": {"app": ContainerUsage(0.5, 300 * MiB), "proxy": ContainerUsage(0.1, 60 * MiB)},
    # Not one of the target's pods: in the namespace, but the tick did not list it.
    "batch-1": {"app": ContainerUsage(3.0, 900 * MiB)},
}


def test_cpu_default_query_sums_containers_without_pause_and_pod_cgroup(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str
) -> None:
    namespace = namespace_of(metric_name)
    now = time.time()
    feed(write_series, namespace, WEB, now)
    # The same pod names in another namespace must not count either.
    feed(write_series, namespace + "-other", WEB, now)

    at = round(now, 3)
    observation = source_for(amp_stack).observe(
        rule_for(namespace), resource_spec("cpu"), at, now + 5, pods=pods("web-1", "web.2")
    )

    assert observation.error is None
    assert observation.pod_values is not None
    assert observation.pod_values.keys() == {"web-1", "web.2"}
    assert observation.pod_values["web-1"] == pytest.approx(0.30)
    assert observation.pod_values["web.2"] == pytest.approx(0.60)
    # The HPA's PodMetric Timestamp and Window: the evaluation time and the rate window.
    assert observation.timestamp == at
    assert observation.window_seconds == 180.0
    (request,) = amp_stack.proxy.requests
    assert "container_cpu_usage_seconds_total" in request.body.decode()


def test_memory_default_query_reads_the_working_set_with_no_window(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str
) -> None:
    namespace = namespace_of(metric_name)
    now = time.time()
    feed(write_series, namespace, WEB, now)

    observation = source_for(amp_stack).observe(
        rule_for(namespace), resource_spec("memory"), now, now + 5, pods=pods("web-1", "web.2")
    )

    assert observation.error is None
    assert observation.pod_values == {"web-1": 250 * MiB, "web.2": 360 * MiB}
    assert observation.window_seconds is None


def test_container_resource_counts_the_named_container_only(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str
) -> None:
    namespace = namespace_of(metric_name)
    now = time.time()
    feed(write_series, namespace, WEB, now)

    source = source_for(amp_stack)
    rule = rule_for(namespace)
    cpu = source.observe(
        rule, resource_spec("cpu", container="app"), now, now + 5, pods=pods("web-1", "web.2")
    )
    memory = source.observe(
        rule, resource_spec("memory", container="proxy"), now, now + 5, pods=pods("web-1", "web.2")
    )

    assert usage(cpu) == pytest.approx({"web-1": 0.25, "web.2": 0.5})
    assert memory.pod_values == {"web-1": 50 * MiB, "web.2": 60 * MiB}


RELABELLED = ResolvedSeries(
    cpu_metric="k8s_container_cpu_seconds_total",
    memory_metric="k8s_container_memory_working_set_bytes",
    namespace_label="kube_namespace",
    pod_label="kube_pod",
    container_label="kube_container",
    window_seconds=60,
)


def test_relabelling_collector_read_through_the_stack_settings(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str
) -> None:
    namespace = namespace_of(metric_name)
    now = time.time()
    feed(write_series, namespace, WEB, now, RELABELLED)
    settings = Settings.from_env(
        {
            "RESOURCE_CPU_METRIC": RELABELLED.cpu_metric,
            "RESOURCE_MEMORY_METRIC": RELABELLED.memory_metric,
            "RESOURCE_NAMESPACE_LABEL": RELABELLED.namespace_label,
            "RESOURCE_POD_LABEL": RELABELLED.pod_label,
            "RESOURCE_CONTAINER_LABEL": RELABELLED.container_label,
            "RESOURCE_WINDOW_SECONDS": "60",
        }
    )

    source = source_for(amp_stack, settings.resource_series)
    rule = rule_for(namespace)
    cpu = source.observe(rule, resource_spec("cpu"), now, now + 5, pods=pods("web-1", "web.2"))
    memory = source.observe(rule, resource_spec("memory"), now, now + 5, pods=pods("web-1"))
    # The cAdvisor defaults find nothing on this collector's names.
    default = source_for(amp_stack).observe(rule, resource_spec("cpu"), now, now + 5, pods=pods("web-1"))

    assert usage(cpu) == pytest.approx({"web-1": 0.30, "web.2": 0.60})
    assert cpu.window_seconds == 60.0
    assert memory.pod_values == {"web-1": 250 * MiB}
    assert default.error is not None and "no cpu usage series for the target's pods" in default.error


def test_rule_series_override_one_name_over_the_stack(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str
) -> None:
    namespace = namespace_of(metric_name)
    now = time.time()
    names = ResolvedSeries(pod_label="pod_name", window_seconds=120)
    feed(write_series, namespace, WEB, now, names)

    spec = resource_spec("cpu", series=ResourceSeries(pod_label="pod_name", window_seconds=120))
    observation = source_for(amp_stack).observe(
        rule_for(namespace, spec), spec, now, now + 5, pods=pods("web-1")
    )

    assert usage(observation) == pytest.approx({"web-1": 0.30})
    assert observation.window_seconds == 120.0


def test_own_query_replaces_the_default_and_keeps_the_listed_pods(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str
) -> None:
    namespace = namespace_of(metric_name)
    now = time.time()
    feed(write_series, namespace, WEB, now)
    # Only the app container, by a query the rule writes itself (it names no pods).
    query = f'sum by (pod) (rate(container_cpu_usage_seconds_total{{namespace="{namespace}", container="app"}}[180s]))'

    observation = source_for(amp_stack).observe(
        rule_for(namespace), resource_spec("cpu", query=query), now, now + 5, pods=pods("web-1", "web.2")
    )

    assert usage(observation) == pytest.approx({"web-1": 0.25, "web.2": 0.5})
    assert amp_stack.proxy.requests[-1].body.decode().count("pod%3D~") == 0


def test_too_many_pods_for_the_matcher_select_the_namespace_and_keep_the_listed(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = namespace_of(metric_name)
    now = time.time()
    feed(write_series, namespace, WEB, now)
    monkeypatch.setattr(resource_queries, "MAX_POD_MATCHER_PODS", 1)

    observation = source_for(amp_stack).observe(
        rule_for(namespace), resource_spec("cpu"), now, now + 5, pods=pods("web-1", "web.2")
    )

    assert "pod%3D~" not in amp_stack.proxy.requests[-1].body.decode()
    assert usage(observation) == pytest.approx({"web-1": 0.30, "web.2": 0.60})


def test_no_listed_pods_asks_nothing(amp_stack: AmpStack, metric_name: str) -> None:
    now = time.time()
    observation = source_for(amp_stack).observe(
        rule_for(namespace_of(metric_name)), resource_spec("cpu"), now, now + 5, pods=[]
    )

    assert observation.error is not None and "selector matches no pods" in observation.error
    assert amp_stack.proxy.requests == []
