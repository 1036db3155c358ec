"""The default PromQL of Resource/ContainerResource metrics: cAdvisor usage per pod, as the HPA reads it.

Pure: no I/O. The HPA takes a pod's CPU and memory usage from the resource metrics API
(metrics-server, which sums the kubelet's per-container cAdvisor figures per pod). ampscaler reads
the same cAdvisor series from Prometheus (AMP's managed collector and the usual Prometheus agents
scrape them from every kubelet):

- cpu: ``sum by (pod) (rate(container_cpu_usage_seconds_total{...}[window]))``, in cores;
- memory: ``sum by (pod) (container_memory_working_set_bytes{...})``, in bytes;

filtered to the target's namespace and to the pods the tick listed, without the pause container
(``container="POD"``, which older kubelets report) and the pod-level cgroup series (empty
``container``); a ContainerResource metric keeps the named container only. The series names, the
label names and the rate window are the stack's (``RESOURCE_*`` settings, template parameters) and
can be overridden per rule (``MetricSpec.series``), for collectors that relabel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ampscaler.errors import MetricQueryError
from ampscaler.model import MetricSpec, ResourceName, ResourceSeries, ScaleTargetRef
from ampscaler.rule.limits import MAX_WINDOW_SECONDS as RULE_MAX_WINDOW_SECONDS

DEFAULT_CPU_METRIC = "container_cpu_usage_seconds_total"
DEFAULT_MEMORY_METRIC = "container_memory_working_set_bytes"
DEFAULT_NAMESPACE_LABEL = "namespace"
DEFAULT_POD_LABEL = "pod"
DEFAULT_CONTAINER_LABEL = "container"
# prometheus-adapter's Helm chart reads CPU over the same window (rules.resource.window: 3m), so
# rules migrated from it see the same numbers; four 30 s scrapes of the managed collector and more.
DEFAULT_WINDOW_SECONDS = 180
# The range a rule's series.windowSeconds may take (ampscaler.rule.limits), for the stack's too.
MIN_WINDOW_SECONDS = 1
MAX_WINDOW_SECONDS = RULE_MAX_WINDOW_SECONDS
# cAdvisor's name for the pod sandbox ("pause") container; the HPA's metrics-server skips it too.
PAUSE_CONTAINER = "POD"

# The pods are named in the query (``pod=~"a|b|c"``) up to these bounds; past them the query
# selects the whole namespace and the adapter keeps the listed pods' series. Either way the
# answer stays under the adapter's series and byte caps or fails with their message.
MAX_POD_MATCHER_PODS = 500
MAX_POD_MATCHER_CHARS = 32 * 1024

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# RE2 metacharacters: escaped so a pod name matches only itself.
_REGEX_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


@dataclass(frozen=True)
class ResolvedSeries:
    """Every series/label name and the window, after the rule's overrides and the stack's settings."""

    cpu_metric: str = DEFAULT_CPU_METRIC
    memory_metric: str = DEFAULT_MEMORY_METRIC
    namespace_label: str = DEFAULT_NAMESPACE_LABEL
    pod_label: str = DEFAULT_POD_LABEL
    container_label: str = DEFAULT_CONTAINER_LABEL
    window_seconds: int = DEFAULT_WINDOW_SECONDS

    def metric_for(self, resource: ResourceName) -> str:
        """The series holding ``resource``'s usage."""
        return self.cpu_metric if resource == "cpu" else self.memory_metric

    def problems(self) -> list[tuple[str, str]]:
        """``(field, what is wrong)`` for each name that is not a Prometheus name and a window out of range."""
        found: list[tuple[str, str]] = []
        for field_name, value in (("cpu_metric", self.cpu_metric), ("memory_metric", self.memory_metric)):
            if not _METRIC_NAME.match(value):
                found.append((field_name, f"{value[:64]!r} is not a Prometheus metric name"))
        for field_name, value in (
            ("namespace_label", self.namespace_label),
            ("pod_label", self.pod_label),
            ("container_label", self.container_label),
        ):
            if not _LABEL_NAME.match(value):
                found.append((field_name, f"{value[:64]!r} is not a Prometheus label name"))
        if not MIN_WINDOW_SECONDS <= self.window_seconds <= MAX_WINDOW_SECONDS:
            found.append(
                (
                    "window_seconds",
                    f"{self.window_seconds} is outside {MIN_WINDOW_SECONDS} … {MAX_WINDOW_SECONDS} seconds",
                )
            )
        return found


STACK_DEFAULT_SERIES = ResolvedSeries()


def resolve_series(
    rule_series: ResourceSeries | None, stack: ResolvedSeries = STACK_DEFAULT_SERIES
) -> ResolvedSeries:
    """The stack's series settings with the rule's non-None fields laid over them."""
    if rule_series is None:
        return stack
    return ResolvedSeries(
        cpu_metric=rule_series.cpu_metric or stack.cpu_metric,
        memory_metric=rule_series.memory_metric or stack.memory_metric,
        namespace_label=rule_series.namespace_label or stack.namespace_label,
        pod_label=rule_series.pod_label or stack.pod_label,
        container_label=rule_series.container_label or stack.container_label,
        window_seconds=(
            rule_series.window_seconds if rule_series.window_seconds is not None else stack.window_seconds
        ),
    )


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal (backslash, quote and newlines escaped)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def pod_regex(pods: Sequence[str]) -> str:
    """An RE2 alternation matching exactly the given pod names (metacharacters escaped, sorted, unique)."""
    return "|".join(_REGEX_META.sub(r"\\\1", name) for name in sorted(set(pods)))


def names_pods(pods: Sequence[str] | None) -> bool:
    """Whether a query for ``pods`` names them (within the matcher bounds) rather than the whole namespace."""
    if pods is None or not pods:
        return False
    return len(set(pods)) <= MAX_POD_MATCHER_PODS and len(pod_regex(pods)) <= MAX_POD_MATCHER_CHARS


def default_query(
    resource: ResourceName,
    namespace: str,
    pods: Sequence[str] | None,
    series: ResolvedSeries = STACK_DEFAULT_SERIES,
    container: str | None = None,
    *,
    pod_pattern: str | None = None,
) -> str:
    """The documented usage query of one resource, one series per pod (docs/rules.md, "Resource metrics").

    Parameters
    ----------
    resource
        ``cpu`` (cores: a rate of CPU seconds) or ``memory`` (bytes: the working set).
    namespace
        The target's namespace.
    pods
        The pods the tick listed (named in a ``pod=~`` matcher when within ``MAX_POD_MATCHER_PODS``
        and ``MAX_POD_MATCHER_CHARS``); None or too many: the whole namespace.
    series
        Series and label names, and the CPU rate window.
    container
        ContainerResource: the one container whose usage counts.
    pod_pattern
        An RE2 pattern for the pod names instead of ``pods`` (backtests, which have no pod list).

    Returns
    -------
    str
        PromQL, e.g. ``sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="shop",
        pod=~"web-1|web-2", container!="", container!="POD"}[180s]))``.

    Raises
    ------
    MetricQueryError
        When a series or label name is not a valid Prometheus name (they become part of the query).
    """
    problems = series.problems()
    if problems:
        raise MetricQueryError("; ".join(f"series {name}: {what}" for name, what in problems))
    matchers = [f"{series.namespace_label}={promql_string(namespace)}"]
    if pod_pattern is not None:
        matchers.append(f"{series.pod_label}=~{promql_string(pod_pattern)}")
    elif pods is not None and names_pods(pods):
        matchers.append(f"{series.pod_label}=~{promql_string(pod_regex(pods))}")
    if container is not None:
        matchers.append(f"{series.container_label}={promql_string(container)}")
    else:
        matchers.append(f'{series.container_label}!=""')
        matchers.append(f"{series.container_label}!={promql_string(PAUSE_CONTAINER)}")
    selector = f"{series.metric_for(resource)}{{{', '.join(matchers)}}}"
    if resource == "cpu":
        selector = f"rate({selector}[{series.window_seconds}s])"
    return f"sum by ({series.pod_label}) ({selector})"


@dataclass(frozen=True)
class ResourceQuery:
    """What to run for one Resource/ContainerResource metric and how to read the answer."""

    query: str
    # The label naming the pod in the answer.
    pod_label: str
    # The window the samples cover (the HPA's PodMetric.Window): the CPU rate window; None for
    # memory, a gauge read at one instant.
    window_seconds: int | None
    # Whether the query names the pods; if not, the adapter keeps only the listed pods' series.
    names_pods: bool


def resource_query(
    spec: MetricSpec,
    namespace: str,
    pods: Sequence[str] | None,
    stack: ResolvedSeries = STACK_DEFAULT_SERIES,
    *,
    pod_pattern: str | None = None,
) -> ResourceQuery:
    """The query of a Resource/ContainerResource metric: its own ``query`` if set, else the default.

    A rule's own query runs as written; it must return one series per pod labelled with the pod
    label (``series.podLabel``, else the stack's), in cores (cpu) or bytes (memory). The default
    selects ``pods`` by name, or, given ``pod_pattern`` instead (a backtest has no pod list), the
    pods whose names match it.

    Raises
    ------
    MetricQueryError
        When ``spec`` is not a Resource/ContainerResource metric or a name is invalid.
    """
    if spec.type not in ("Resource", "ContainerResource") or spec.resource is None:
        raise MetricQueryError(f"metric {spec.name!r} is not a Resource or ContainerResource metric")
    series = resolve_series(spec.series, stack)
    window = series.window_seconds if spec.resource == "cpu" else None
    if spec.query.strip():
        return ResourceQuery(spec.query, series.pod_label, window, names_pods=False)
    container = spec.container if spec.type == "ContainerResource" else None
    query = default_query(spec.resource, namespace, pods, series, container, pod_pattern=pod_pattern)
    named = pod_pattern is None and names_pods(pods)
    return ResourceQuery(query, series.pod_label, window, names_pods=named)


def workload_pod_pattern(kind: str, workload: str) -> str:
    """The names the workload's pods get, as an RE2 pattern.

    A Deployment's pods are ``<name>-<pod-template-hash (up to 10)>-<5 characters>``, a
    StatefulSet's ``<name>-<ordinal>``; any other kind: ``<name>-`` and anything.
    """
    name = _REGEX_META.sub(r"\\\1", workload)
    if kind == "Deployment":
        return name + "-[a-z0-9]{1,10}-[a-z0-9]{5}"
    if kind == "StatefulSet":
        return name + "-[0-9]+"
    return name + "-.+"


def backtest_query(
    spec: MetricSpec, target: ScaleTargetRef, stack: ResolvedSeries = STACK_DEFAULT_SERIES
) -> ResourceQuery:
    """The history query of a Resource/ContainerResource metric for a backtest.

    History has no pod list, so the default query selects the pods named as the target's
    controller names them (``workload_pod_pattern``); a rule's own query runs as written.

    Raises
    ------
    MetricQueryError
        When ``spec`` is not a Resource/ContainerResource metric or a name is invalid.
    """
    pattern = workload_pod_pattern(target.kind, target.name)
    return resource_query(spec, target.namespace, None, stack, pod_pattern=pattern)
