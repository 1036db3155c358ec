"""cAdvisor-shaped series, as the kubelet's /metrics/cadvisor exposes them and AMP's managed collector
scrapes them, for tests and the demo's CPU scenario.

Per pod the kubelet reports one series per container, one for the pause (sandbox) container
(``container="POD"`` on older runtimes) and one for the pod's cgroup as a whole (no ``container``
label); the default Resource queries must count only the first kind. CPU is a counter of CPU
seconds (``container_cpu_usage_seconds_total``), memory a gauge of bytes
(``container_memory_working_set_bytes``). Names can be relabelled, as a collector with
``metric_relabel_configs`` would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ampscaler.resource_queries import STACK_DEFAULT_SERIES, ResolvedSeries

Labels = Mapping[str, str]
Points = list[tuple[float, float]]

# What the pause container and the pod cgroup use, so tests can tell they were left out.
PAUSE_CPU_CORES = 0.001
PAUSE_MEMORY_BYTES = 1_000_000.0
# A CPU counter's value at the series' first sample: large, so rate() never extrapolates to zero.
COUNTER_START_SECONDS = 10_000.0


@dataclass(frozen=True)
class ContainerUsage:
    """One container's steady usage: cores of CPU and bytes of working set."""

    cpu_cores: float = 0.0
    memory_bytes: float = 0.0


@dataclass(frozen=True)
class PodUsage:
    """One pod's containers (name -> usage) in a namespace."""

    namespace: str
    pod: str
    containers: Mapping[str, ContainerUsage] = field(default_factory=dict)


def pod_series(
    usage: PodUsage,
    times: Sequence[float],
    names: ResolvedSeries = STACK_DEFAULT_SERIES,
    *,
    with_pause: bool = True,
    with_pod_cgroup: bool = True,
    counter_start: float = COUNTER_START_SECONDS,
) -> list[tuple[Labels, Points]]:
    """The cAdvisor series of one pod at ``times`` (unix seconds): CPU counters and memory gauges.

    A counter at time t is ``counter_start + cores * (t - times[0])``, so ``rate()`` over any window
    inside ``times`` is ``cores``.
    """
    start = times[0] if times else 0.0
    base = {
        names.namespace_label: usage.namespace,
        names.pod_label: usage.pod,
        "job": "kubelet",
        "metrics_path": "/metrics/cadvisor",
    }
    parts: list[tuple[dict[str, str], ContainerUsage]] = [
        (
            {
                names.container_label: name,
                "image": f"registry.example.com/{name}:1",
                "id": f"/kubepods/{usage.pod}/{name}",
            },
            container,
        )
        for name, container in usage.containers.items()
    ]
    if with_pause:
        parts.append(
            (
                {names.container_label: "POD", "id": f"/kubepods/{usage.pod}/pause"},
                ContainerUsage(PAUSE_CPU_CORES, PAUSE_MEMORY_BYTES),
            )
        )
    if with_pod_cgroup:
        # The pod cgroup: every container together, with no container label (cAdvisor's "").
        total = ContainerUsage(
            sum(c.cpu_cores for c in usage.containers.values()) + PAUSE_CPU_CORES,
            sum(c.memory_bytes for c in usage.containers.values()) + PAUSE_MEMORY_BYTES,
        )
        parts.append(({"id": f"/kubepods/{usage.pod}"}, total))
    series: list[tuple[Labels, Points]] = []
    for extra, container in parts:
        labels = {**base, **extra}
        series.append(
            (
                {"__name__": names.cpu_metric, "cpu": "total", **labels},
                [(t, counter_start + container.cpu_cores * (t - start)) for t in times],
            )
        )
        series.append(
            ({"__name__": names.memory_metric, **labels}, [(t, container.memory_bytes) for t in times])
        )
    return series


def sample_times(end: float, seconds: float, step: float = 15.0) -> list[float]:
    """Scrape times every ``step`` seconds over the ``seconds`` before ``end`` (``end`` included)."""
    count = int(seconds // step)
    return [end - step * (count - i) for i in range(count + 1)]


def pod_snapshot(
    namespace: str,
    pod: str,
    cpu_seconds: Mapping[str, float],
    memory_bytes: Mapping[str, float],
    at: float,
    names: ResolvedSeries = STACK_DEFAULT_SERIES,
) -> list[tuple[Labels, Points]]:
    """One scrape of a pod at ``at``: each container's CPU counter and working set, and the pod cgroup.

    ``cpu_seconds`` maps container names (``POD`` for the pause container) to their counters; the
    pod cgroup series (no container label) carries the sums, as cAdvisor reports it.
    """
    base = {names.namespace_label: namespace, names.pod_label: pod, "job": "kubelet"}
    series: list[tuple[Labels, Points]] = []
    for container in cpu_seconds:
        labels = {**base, names.container_label: container, "id": f"/kubepods/{pod}/{container}"}
        series.append(
            ({"__name__": names.cpu_metric, "cpu": "total", **labels}, [(at, cpu_seconds[container])])
        )
        series.append(({"__name__": names.memory_metric, **labels}, [(at, memory_bytes.get(container, 0.0))]))
    cgroup = {**base, "id": f"/kubepods/{pod}"}
    series.append(
        ({"__name__": names.cpu_metric, "cpu": "total", **cgroup}, [(at, sum(cpu_seconds.values()))])
    )
    series.append(({"__name__": names.memory_metric, **cgroup}, [(at, sum(memory_bytes.values()))]))
    return series
