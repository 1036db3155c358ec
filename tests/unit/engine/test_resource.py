"""Resource and ContainerResource metrics: upstream's replica_calculator_test.go resource cases, ported.

Each row mirrors one ``TestReplicaCalc*`` function of the upstream test file (kubernetes
pkg/controller/podautoscaler/replica_calculator_test.go) with its expected numbers. The runner
builds what upstream's fake clients serve: every pod has two containers, container1 and
container2, each requesting ``requests[i]`` cores; ``levels[i]`` holds each container's usage in
milli-cores; a Resource sample is the pod's sum, a ContainerResource sample the named container's
usage. As there, samples are stamped at the zero time with a one-minute window, pods started at
the zero time unless a row says "hot" (started 1 minute ago) or "cool" (3 minutes ago), and the
controller runs with upstream's testing flags (2-minute CPU initialization period, 10-second
initial readiness delay). The zero time is unix 0 here, long before ``NOW``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ampscaler.engine.decide import decide
from ampscaler.engine.pods import (
    CpuReadiness,
    Tolerances,
    calculate_requests,
    group_pods,
    pod_request_milli,
)
from ampscaler.engine.proposals import compute_replicas_for_metric
from ampscaler.engine.types import (
    ContainerInfo,
    ControllerConfig,
    MetricObservation,
    Observation,
    PodInfo,
    PodPhase,
    ScaleObservation,
)
from ampscaler.model import MetricSpec, MetricTarget, ResourceName, Rule

from .builders import TARGET

NOW = 1_000_000.0
HOT = NOW - 60  # upstream hotCPUCreationTime: inside the initialization period
COOL = NOW - 180  # upstream coolCPUCreationTime: past it
TESTING_CONTROLLER = ControllerConfig(
    cpu_initialization_period_seconds=120, initial_readiness_delay_seconds=10
)
DEFAULT = Tolerances(0.1, 0.1)


def levels(*per_pod: int) -> tuple[tuple[int, ...], ...]:
    """Upstream makePodMetricLevels: both containers of each pod use the same milli-cores."""
    return tuple((value, value) for value in per_pod)


@dataclass(frozen=True)
class ResourceCase:
    name: str
    current_replicas: int
    requests: Sequence[float]
    levels: Sequence[Sequence[int]]
    target_utilization: int
    expected_replicas: int = 0
    expected_utilization: int = 0
    # The raw per-pod average in milli-units (upstream expectedValue).
    expected_value: int = 0
    expected_error: str | None = None
    readiness: Sequence[bool] | None = None
    phases: Sequence[PodPhase] | None = None
    deleting: Sequence[bool] | None = None
    start_times: Sequence[float] | None = None
    container: str | None = None
    pod_names: Sequence[str] = ()
    resource: ResourceName = "cpu"


def build_pods(tc: ResourceCase) -> tuple[PodInfo, ...]:
    """Upstream prepareTestClientSet: failed pods beyond currentReplicas are listed as well."""
    count = max(tc.current_replicas, len(tc.phases or ()))
    result = []
    for i in range(count):
        requests: dict[str, float] = {tc.resource: tc.requests[i]} if i < len(tc.requests) else {}
        result.append(
            PodInfo(
                name=f"test-pod-{i}",
                phase=tc.phases[i] if tc.phases else "Running",
                ready=tc.readiness[i] if tc.readiness and i < len(tc.readiness) else True,
                deleting=bool(tc.deleting and tc.deleting[i]),
                start_time=tc.start_times[i] if tc.start_times else 0.0,
                ready_transition_time=0.0,
                requests={tc.resource: 2 * tc.requests[i]} if i < len(tc.requests) else {},
                containers=(ContainerInfo("container1", requests), ContainerInfo("container2", requests)),
            )
        )
    return tuple(result)


def build_sample(tc: ResourceCase) -> MetricObservation:
    """Upstream prepareTestMetricsClient plus the metrics client's container filter."""
    values: dict[str, float] = {}
    for i, pod_levels in enumerate(tc.levels):
        name = tc.pod_names[i] if i < len(tc.pod_names) else f"test-pod-{i}"
        if tc.container is None:
            values[name] = sum(pod_levels) / 1000.0
        else:
            index = int(tc.container.removeprefix("container")) - 1
            if index < len(pod_levels):
                values[name] = pod_levels[index] / 1000.0
    return MetricObservation(name="cpu", pod_values=values, timestamp=0.0, window_seconds=60.0)


def resource_spec(
    resource: ResourceName = "cpu",
    container: str | None = None,
    utilization: int | None = None,
    average_value: float | None = None,
) -> MetricSpec:
    target = (
        MetricTarget(type="Utilization", average_utilization=utilization)
        if utilization is not None
        else MetricTarget(type="AverageValue", average_value=average_value)
    )
    return MetricSpec(
        name="cpu",
        type="ContainerResource" if container else "Resource",
        query="",
        target=target,
        resource=resource,
        container=container,
    )


# Helpers for the rows below.
F, T = False, True
ONES3 = (1.0, 1.0, 1.0)
ONES4 = (1.0,) * 4
ONES5 = (1.0,) * 5
ONES7 = (1.0,) * 7

# The tolerance regression of upstream TestReplicaCalcComputedToleranceAlgImplementation:
# 10 pods using 150m per container against ~300m requests (50 % utilization).
_PER_POD = 300
_TOLERANCE_REQUESTS = tuple((_PER_POD + d) / 1000.0 for d in (100, -100, 10, -10, 2, -2, 1, -1, 0, 0))

CASES = [
    ResourceCase(
        "disjoint metrics and pods give no matching requests",
        1,
        (1.0,),
        levels(100),
        100,
        pod_names=("an-older-pod-name",),
        expected_error="no metrics returned matched known pods",
    ),
    ResourceCase("scale up", 3, ONES3, levels(300, 500, 700), 30, 5, 50, 2 * 500),
    ResourceCase(
        "container scale up counts only the named container",
        3,
        ONES3,
        ((1000, 300), (1000, 500), (1000, 700)),
        30,
        5,
        50,
        500,
        container="container2",
    ),
    ResourceCase(
        "scale up with an unready pod scales less",
        3,
        ONES3,
        levels(300, 500, 700),
        30,
        4,
        60,
        2 * 600,
        readiness=(F, T, T),
    ),
    ResourceCase(
        "container scale up with a hot cpu pod scales less",
        3,
        ONES3,
        ((0, 300), (0, 500), (0, 700)),
        30,
        4,
        60,
        600,
        start_times=(HOT, COOL, COOL),
        container="container2",
    ),
    ResourceCase(
        "scale up with a hot cpu pod scales less",
        3,
        ONES3,
        levels(300, 500, 700),
        30,
        4,
        60,
        2 * 600,
        start_times=(HOT, COOL, COOL),
    ),
    ResourceCase(
        "scale up with unready pods that would reverse direction does not scale",
        3,
        ONES3,
        levels(400, 500, 700),
        30,
        3,
        40,
        2 * 400,
        readiness=(T, F, F),
    ),
    ResourceCase(
        "hot unready cpu pods that would reverse direction do not scale",
        3,
        ONES3,
        levels(400, 500, 700),
        30,
        3,
        40,
        2 * 400,
        readiness=(T, F, F),
        start_times=(COOL, HOT, HOT),
    ),
    ResourceCase(
        "scale up ignores failed pods",
        2,
        ONES4,
        levels(500, 700),
        30,
        4,
        60,
        2 * 600,
        readiness=(T, T, F, F),
        phases=("Running", "Running", "Failed", "Failed"),
    ),
    ResourceCase(
        "container scale up ignores failed pods missing the container's sample",
        2,
        ONES4,
        ((1000, 500), (9000, 700), (1000,), (9000,)),
        30,
        4,
        60,
        600,
        readiness=(T, T, F, F),
        phases=("Running", "Running", "Failed", "Failed"),
        container="container2",
    ),
    ResourceCase(
        "container scale up ignores failed pods",
        2,
        ONES4,
        ((1000, 500), (9000, 700)),
        30,
        4,
        60,
        600,
        readiness=(T, T, F, F),
        phases=("Running", "Running", "Failed", "Failed"),
        container="container2",
    ),
    ResourceCase(
        "scale up ignores pods being deleted",
        2,
        ONES4,
        levels(500, 700),
        30,
        4,
        60,
        2 * 600,
        readiness=(T, T, F, F),
        deleting=(F, F, T, T),
    ),
    ResourceCase(
        "container scale up ignores pods being deleted",
        2,
        ONES4,
        levels(500, 700),
        30,
        4,
        60,
        600,
        readiness=(T, T, F, F),
        deleting=(F, F, T, T),
        container="container1",
    ),
    ResourceCase("scale down", 5, ONES5, levels(100, 300, 500, 250, 250), 50, 3, 28, 2 * 280),
    ResourceCase(
        "container scale down",
        5,
        ONES5,
        ((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
        50,
        3,
        28,
        280,
        container="container2",
    ),
    ResourceCase(
        "scale down excludes unready pods",
        5,
        ONES5,
        levels(100, 300, 500, 250, 250),
        50,
        2,
        30,
        2 * 300,
        readiness=(T, T, T, F, F),
    ),
    ResourceCase(
        "container scale down excludes unready pods",
        5,
        ONES5,
        ((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
        50,
        2,
        30,
        300,
        readiness=(T, T, T, F, F),
        container="container2",
    ),
    ResourceCase(
        "scale down excludes unscheduled pods",
        5,
        ONES5,
        levels(100),
        50,
        1,
        10,
        2 * 100,
        readiness=(T, F, F, F, F),
        phases=("Running", "Pending", "Pending", "Pending", "Pending"),
    ),
    ResourceCase(
        "container scale down excludes unscheduled pods",
        5,
        ONES5,
        ((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
        50,
        1,
        10,
        100,
        readiness=(T, F, F, F, F),
        phases=("Running", "Pending", "Pending", "Pending", "Pending"),
        container="container2",
    ),
    ResourceCase(
        "scale down ignores hot cpu pods",
        5,
        ONES5,
        levels(100, 300, 500, 250, 250),
        50,
        2,
        30,
        2 * 300,
        start_times=(COOL, COOL, COOL, HOT, HOT),
    ),
    ResourceCase(
        "container scale down ignores hot cpu pods",
        5,
        ONES5,
        ((1000, 100), (1000, 300), (1000, 500), (1000, 1000), (1000, 1000)),
        50,
        2,
        30,
        300,
        start_times=(COOL, COOL, COOL, HOT, HOT),
        container="container2",
    ),
    ResourceCase(
        "scale down ignores failed pods",
        5,
        ONES7,
        levels(100, 300, 500, 250, 250),
        50,
        3,
        28,
        2 * 280,
        readiness=(T, T, T, T, T, F, F),
        phases=("Running",) * 5 + ("Failed", "Failed"),
    ),
    ResourceCase(
        "container scale down ignores failed pods",
        5,
        ONES7,
        ((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
        50,
        3,
        28,
        280,
        readiness=(T, T, T, T, T, F, F),
        phases=("Running",) * 5 + ("Failed", "Failed"),
        container="container2",
    ),
    ResourceCase(
        "scale down ignores pods being deleted",
        5,
        ONES7,
        levels(100, 300, 500, 250, 250),
        50,
        3,
        28,
        2 * 280,
        readiness=(T, T, T, T, T, F, F),
        phases=("Running",) * 7,
        deleting=(F, F, F, F, F, T, T),
    ),
    ResourceCase(
        "container scale down ignores pods being deleted while still running",
        5,
        ONES7,
        ((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
        50,
        3,
        28,
        280,
        readiness=(T, T, T, T, T, F, F),
        phases=("Running",) * 7,
        deleting=(F, F, F, F, F, T, T),
        container="container2",
    ),
    ResourceCase(
        "utilization within tolerance keeps the count",
        3,
        (0.9, 1.0, 1.1),
        levels(1010, 1030, 1020),
        100,
        3,
        102,
        2 * 1020,
    ),
    ResourceCase(
        "samples of pods outside the pod list stay out of the utilization",
        4,
        ONES4,
        levels(4000, 9500, 3000, 7000, 3200, 2000),
        100,
        24,
        587,
        2 * 5875,
    ),
    ResourceCase(
        "missing pods count as using their request on a scale down",
        4,
        ONES4,
        levels(400, 95),
        100,
        3,
        24,
        495,
    ),
    ResourceCase(
        "no samples at all is an error",
        4,
        ONES3,
        (),
        100,
        expected_error="did not receive metrics for targeted pods (pods might be unready)",
    ),
    ResourceCase(
        "a container without a cpu request makes the metric invalid",
        1,
        (),
        levels(200),
        100,
        expected_error="missing request for cpu in container container1 of Pod test-pod-0",
    ),
    ResourceCase(
        "missing pods at exactly the target keep the count",
        2,
        (1.0, 1.0),
        levels(1000),
        100,
        2,
        100,
        2 * 1000,
    ),
    ResourceCase(
        "missing pods on a scale up that would reverse direction keep the count",
        2,
        (1.0, 1.0),
        levels(1900),
        100,
        2,
        190,
        2 * 1900,
    ),
    ResourceCase(
        "missing pods on a scale down that would reverse direction keep the count",
        2,
        (1.0, 1.0),
        levels(600),
        100,
        2,
        60,
        2 * 600,
    ),
    ResourceCase(
        "missing and unready pods that would reverse direction keep the count",
        3,
        ONES3,
        levels(100, 450),
        50,
        3,
        45,
        2 * 450,
        readiness=(F, T, T),
    ),
    ResourceCase(
        "missing and hot cpu pods that would reverse direction keep the count",
        3,
        ONES3,
        levels(100, 450),
        50,
        3,
        45,
        2 * 450,
        start_times=(HOT, COOL, COOL),
    ),
    ResourceCase(
        "missing and unready pods count as idle on a scale up",
        3,
        ONES3,
        levels(100, 2000),
        50,
        4,
        200,
        2 * 2000,
        readiness=(F, T, T),
    ),
    ResourceCase(
        "missing and hot unready cpu pods count as idle on a scale up",
        3,
        ONES3,
        levels(100, 2000),
        50,
        4,
        200,
        2 * 2000,
        readiness=(F, T, T),
        start_times=(HOT, COOL, COOL),
    ),
    ResourceCase(
        "missing pods use their request and unready pods are dropped on a scale down",
        4,
        ONES4,
        levels(100, 100, 100),
        50,
        3,
        10,
        2 * 100,
        readiness=(F, T, T, T),
    ),
    ResourceCase(
        "missing pods use the target above 100 percent on a scale down",
        4,
        (1.0, 1.0, 2.0, 2.0),
        levels(200, 100, 100),
        300,
        2,
        6,
        2 * 100,
        readiness=(F, T, T, T),
    ),
    ResourceCase(
        "a surge pod without samples during a rolling update would scale up against a scale down",
        2,
        ONES3,
        levels(100, 100),
        50,
        2,
        10,
        2 * 100,
        phases=("Running", "Running", "Running"),
    ),
    ResourceCase(
        "just beyond the tolerance scales down",
        10,
        _TOLERANCE_REQUESTS,
        levels(*(150,) * 10),
        56,
        9,
        50,
        2 * 150,
    ),
    ResourceCase(
        "just within the tolerance keeps the count",
        10,
        _TOLERANCE_REQUESTS,
        levels(*(150,) * 10),
        55,
        10,
        50,
        2 * 150,
    ),
]


@pytest.mark.parametrize("tc", CASES, ids=[c.name for c in CASES])
def test_resource_utilization_replicas_match_upstream(tc: ResourceCase) -> None:
    """One runner for every row, like upstream's replicaCalcTestCase.runTest."""
    spec = resource_spec(tc.resource, tc.container, utilization=tc.target_utilization)
    observation = Observation(
        scale=ScaleObservation(tc.current_replicas, tc.current_replicas),
        metrics=(build_sample(tc),),
        pods=build_pods(tc),
    )
    result = compute_replicas_for_metric(
        spec, build_sample(tc), observation, DEFAULT, now=NOW, controller=TESTING_CONTROLLER
    )
    if tc.expected_error is not None:
        assert not result.valid
        assert result.error == f"failed to get cpu utilization: {tc.expected_error}"
        return
    assert result.valid, result.error
    assert (result.proposal, result.current, result.average_value) == (
        tc.expected_replicas,
        tc.expected_utilization,
        tc.expected_value / 1000.0,
    )
    assert result.target == tc.target_utilization


# ----------------------------------------------------------------------------- AverageValue targets


@dataclass(frozen=True)
class RawCase:
    """GetRawResourceReplicas: the per-pod average of the usage against averageValue (cores)."""

    name: str
    current_replicas: int
    pod_usage: Sequence[float]
    average_value: float
    expected_replicas: int
    expected_current: float
    readiness: Sequence[bool] | None = None
    start_times: Sequence[float] | None = None
    resource: ResourceName = "cpu"
    pod_count: int | None = None


# Worked by hand from calcPlainMetricReplicas (milli-values, truncating average).
RAW_CASES = [
    RawCase("average above the per-pod target scales up", 3, (0.6, 1.0, 1.4), 0.5, 6, 1.0),
    RawCase("average below the per-pod target scales down", 4, (0.1, 0.2, 0.3, 0.2), 0.5, 2, 0.2),
    RawCase("average within tolerance keeps the count", 3, (0.5, 0.52, 0.48), 0.5, 3, 0.5),
    RawCase(
        "an unready cpu pod counts as idle on a scale up",
        3,
        (0.6, 1.0, 1.4),
        0.5,
        5,
        1.2,
        readiness=(False, True, True),
    ),
    RawCase(
        "a hot cpu pod counts as idle on a scale up",
        3,
        (0.6, 1.0, 1.4),
        0.5,
        5,
        1.2,
        start_times=(HOT, COOL, COOL),
    ),
    RawCase(
        "memory ignores readiness: a running unready pod counts as ready",
        3,
        (600e6, 1000e6, 1400e6),
        500e6,
        6,
        1000e6,
        readiness=(False, True, True),
        resource="memory",
    ),
    RawCase(
        "a missing pod counts as using the target on a scale down",
        3,
        (0.1, 0.1),
        0.5,
        2,
        0.1,
        pod_count=3,
    ),
]


@pytest.mark.parametrize("tc", RAW_CASES, ids=[c.name for c in RAW_CASES])
def test_resource_average_value_replicas_follow_calc_plain_metric_replicas(tc: RawCase) -> None:
    count = tc.pod_count or len(tc.pod_usage)
    pods = tuple(
        PodInfo(
            name=f"p{i}",
            ready=tc.readiness[i] if tc.readiness else True,
            start_time=tc.start_times[i] if tc.start_times else 0.0,
            ready_transition_time=0.0,
        )
        for i in range(count)
    )
    sample = MetricObservation(
        name="cpu",
        pod_values={f"p{i}": v for i, v in enumerate(tc.pod_usage)},
        timestamp=0.0,
        window_seconds=60.0,
    )
    observation = Observation(ScaleObservation(tc.current_replicas, tc.current_replicas), (sample,), pods)
    spec = resource_spec(tc.resource, average_value=tc.average_value)
    result = compute_replicas_for_metric(
        spec, sample, observation, DEFAULT, now=NOW, controller=TESTING_CONTROLLER
    )
    assert result.valid, result.error
    assert (result.proposal, result.average_value) == (tc.expected_replicas, None)
    assert result.current == pytest.approx(tc.expected_current)


# ----------------------------------------------------------------------------- groupPods


def _pod(
    name: str,
    start: float | None,
    ready_since: float | None = None,
    ready: bool = True,
    phase: PodPhase = "Succeeded",
    deleting: bool = False,
) -> PodInfo:
    return PodInfo(
        name=name,
        phase=phase,
        ready=ready,
        deleting=deleting,
        start_time=start,
        ready_transition_time=ready_since,
    )


@dataclass(frozen=True)
class GroupCase:
    name: str
    pods: Sequence[PodInfo]
    samples: Sequence[str]
    cpu: bool
    ready: int
    unready: frozenset[str] = frozenset()
    missing: frozenset[str] = frozenset()
    ignored: frozenset[str] = frozenset()
    # Sample time and window relative to NOW (upstream's PodMetric Timestamp/Window).
    sample_age: float = 0.0
    window: float = 60.0


# Upstream TestGroupPods, with time.Now() as NOW; a pod "without a ready condition" has no
# readyTransitionTime.
GROUP_CASES = [
    GroupCase("void", (), (), True, 0),
    GroupCase("count in a ready pod - memory", (_pod("bentham", None),), ("bentham",), False, 1),
    GroupCase(
        "unready a pod without ready condition - CPU",
        (_pod("lucretius", NOW),),
        ("lucretius",),
        True,
        0,
        unready=frozenset({"lucretius"}),
    ),
    GroupCase(
        "count in a ready pod with fresh metrics during initialization period - CPU",
        (_pod("bentham", NOW - 60, NOW - 30),),
        ("bentham",),
        True,
        1,
        window=30,
    ),
    GroupCase(
        "unready a ready pod without fresh metrics during initialization period - CPU",
        (_pod("bentham", NOW - 60, NOW - 30),),
        ("bentham",),
        True,
        0,
        unready=frozenset({"bentham"}),
        window=60,
    ),
    GroupCase(
        "unready an unready pod during initialization period - CPU",
        (_pod("lucretius", NOW - 600, NOW - 594, ready=False),),
        ("lucretius",),
        True,
        0,
        unready=frozenset({"lucretius"}),
    ),
    GroupCase(
        "count in a ready pod without fresh metrics after initialization period - CPU",
        (_pod("bentham", NOW - 180, NOW - 180),),
        ("bentham",),
        True,
        1,
        sample_age=120,
    ),
    GroupCase(
        "count in an unready pod that was ready after initialization period - CPU",
        (_pod("lucretius", NOW - 600, NOW - 540, ready=False),),
        ("lucretius",),
        True,
        1,
    ),
    GroupCase(
        "unready pod that has never been ready after initialization period - CPU",
        (_pod("lucretius", NOW - 600, NOW - 590, ready=False),),
        ("lucretius",),
        True,
        1,
    ),
    GroupCase("a missing pod", (_pod("epicurus", NOW - 180),), (), True, 0, missing=frozenset({"epicurus"})),
    GroupCase(
        "several pods",
        (_pod("lucretius", NOW), _pod("niccolo", NOW - 180, NOW - 180), _pod("epicurus", NOW - 180)),
        ("lucretius", "niccolo"),
        True,
        1,
        unready=frozenset({"lucretius"}),
        missing=frozenset({"epicurus"}),
    ),
    GroupCase(
        "pending pods are unreadied",
        (_pod("unscheduled", None, phase="Pending"),),
        (),
        True,
        0,
        unready=frozenset({"unscheduled"}),
    ),
    GroupCase(
        "ignore pods with deletion timestamps",
        (_pod("deleted", None, phase="Pending", deleting=True),),
        ("deleted",),
        True,
        0,
        ignored=frozenset({"deleted"}),
    ),
    GroupCase(
        "ignore pods in a failed state",
        (_pod("failed", None, phase="Failed"),),
        ("failed",),
        True,
        0,
        ignored=frozenset({"failed"}),
    ),
]


@pytest.mark.parametrize("tc", GROUP_CASES, ids=[c.name for c in GROUP_CASES])
def test_group_pods_matches_upstream(tc: GroupCase) -> None:
    cpu = (
        CpuReadiness(
            evaluation_time=NOW,
            sample_timestamp=NOW - tc.sample_age,
            sample_window_seconds=tc.window,
            initialization_period_seconds=120,
            initial_readiness_delay_seconds=10,
        )
        if tc.cpu
        else None
    )
    groups = group_pods(tc.pods, dict.fromkeys(tc.samples, 1), cpu)
    assert (groups.ready_pod_count, groups.unready_pods, groups.missing_pods, groups.ignored_pods) == (
        tc.ready,
        tc.unready,
        tc.missing,
        tc.ignored,
    )


def test_cpu_readiness_boundaries_are_strict_as_go_time_after_and_before() -> None:
    """A pod started exactly one initialization period ago is past it; a sample exactly one
    window after the readiness change counts."""
    cpu = CpuReadiness(NOW, NOW, 60, 300, 30)
    assert not cpu.is_unready(_pod("edge", NOW - 300, NOW - 300))
    assert not cpu.is_unready(_pod("fresh", NOW - 100, NOW - 60))
    assert cpu.is_unready(_pod("stale", NOW - 100, NOW - 59))
    # Unready after the period: counted unless readiness changed within the delay of its start.
    assert cpu.is_unready(_pod("never-ready", NOW - 400, NOW - 371, ready=False))
    assert not cpu.is_unready(_pod("was-ready", NOW - 400, NOW - 370, ready=False))


# ----------------------------------------------------------------------------- calculatePodRequests


def _with_containers(*containers: ContainerInfo, name: str = "test-pod") -> PodInfo:
    return PodInfo(name=name, containers=containers)


REQUEST_CASES = [
    ("void", (), None, {}),
    (
        "pod with regular containers",
        (
            _with_containers(
                ContainerInfo("container1", {"cpu": 0.1}), ContainerInfo("container2", {"cpu": 0.05})
            ),
        ),
        None,
        {"test-pod": 150},
    ),
    (
        "calculate requests with special container",
        (
            _with_containers(
                ContainerInfo("container1", {"cpu": 0.1}), ContainerInfo("container2", {"cpu": 0.05})
            ),
        ),
        "container1",
        {"test-pod": 100},
    ),
    (
        "container missing requests",
        (_with_containers(ContainerInfo("container1")),),
        None,
        "missing request for cpu in container container1 of Pod test-pod",
    ),
    (
        "restartable init containers are listed after the containers and count",
        (
            _with_containers(
                ContainerInfo("container1", {"cpu": 0.1}),
                ContainerInfo("restartable-container1", {"cpu": 0.05}),
            ),
        ),
        None,
        {"test-pod": 150},
    ),
    (
        "a named container the pod does not have",
        (_with_containers(ContainerInfo("container1", {"cpu": 0.1})),),
        "sidecar",
        "container sidecar not found in Pod test-pod",
    ),
    (
        "the named container is found before a later container without a request",
        (_with_containers(ContainerInfo("app", {"cpu": 0.25}), ContainerInfo("proxy")),),
        "app",
        {"test-pod": 250},
    ),
    (
        "each container rounds up to a milli-core before the sum, as MilliValue",
        (_with_containers(ContainerInfo("a", {"cpu": 0.0001}), ContainerInfo("b", {"cpu": 0.0001})),),
        None,
        {"test-pod": 2},
    ),
    (
        "a pod listed without containers uses its pod total",
        (PodInfo(name="test-pod", requests={"cpu": 0.5}),),
        None,
        {"test-pod": 500},
    ),
    (
        "a pod listed without containers or a cpu total has no request",
        (PodInfo(name="test-pod", requests={"memory": 1.0}),),
        None,
        "missing request for cpu in Pod test-pod",
    ),
]


@pytest.mark.parametrize(
    ("pods", "container", "expected"),
    [case[1:] for case in REQUEST_CASES],
    ids=[case[0] for case in REQUEST_CASES],
)
def test_calculate_requests_matches_upstream(
    pods: tuple[PodInfo, ...], container: str | None, expected: dict[str, int] | str
) -> None:
    assert calculate_requests(pods, "cpu", container) == expected


def test_memory_requests_are_bytes_in_milli_units() -> None:
    pod = _with_containers(ContainerInfo("app", {"memory": 512 * 2**20}))
    assert pod_request_milli(pod, "memory", None) == 512 * 2**20 * 1000


# ----------------------------------------------------------------------------- through decide


def _rule(spec: MetricSpec) -> Rule:
    return Rule(name="web", target=TARGET, min_replicas=1, max_replicas=10, metrics=(spec,))


def test_decide_scales_on_cpu_utilization_with_upstream_reason() -> None:
    tc = CASES[1]  # scale up: 3 -> 5 at 50 % of requests against a 30 % target
    observation = Observation(ScaleObservation(3, 3), (build_sample(tc),), build_pods(tc))
    decision = decide(_rule(resource_spec(utilization=30)), observation, None, NOW, TESTING_CONTROLLER)
    assert (decision.desired_replicas, decision.action) == (5, "scale")
    assert decision.reason == "cpu resource utilization (percentage of request) above target"
    assert decision.metrics[0].current == 50
    assert decision.metrics[0].average_value == 1.0


def test_decide_reports_a_missing_request_as_failed_get_resource_metric() -> None:
    pods = (
        PodInfo(name="web-1", start_time=0.0, ready_transition_time=0.0, containers=(ContainerInfo("app"),)),
    )
    sample = MetricObservation(name="cpu", pod_values={"web-1": 0.3}, timestamp=NOW, window_seconds=60)
    decision = decide(
        _rule(resource_spec(utilization=60)), Observation(ScaleObservation(1, 1), (sample,), pods), None, NOW
    )
    assert decision.action == "none"
    assert (
        decision.metrics[0].error
        == "failed to get cpu utilization: missing request for cpu in container app of Pod web-1"
    )
    active = next(c for c in decision.conditions if c.type == "ScalingActive")
    assert (active.status, active.reason) == (False, "FailedGetResourceMetric")
    assert active.message.endswith("missing request for cpu in container app of Pod web-1")


def test_container_resource_failure_names_the_container() -> None:
    spec = resource_spec("memory", "app", utilization=80)
    sample = MetricObservation(name="cpu", error="query timed out")
    pods = (PodInfo(name="web-1"),)
    decision = decide(_rule(spec), Observation(ScaleObservation(1, 1), (sample,), pods), None, NOW)
    assert decision.metrics[0].error == (
        "failed to get memory utilization: unable to get metrics for resource memory: query timed out"
    )
    active = next(c for c in decision.conditions if c.type == "ScalingActive")
    assert active.reason == "FailedGetContainerResourceMetric"


@pytest.mark.parametrize(
    ("sample", "pods", "error"),
    [
        pytest.param(
            MetricObservation(name="cpu", pod_values={"a": 0.1}),
            (PodInfo(name="a"),),
            "failed to get cpu utilization: unable to get metrics for resource cpu: "
            "a cpu sample needs its timestamp and window",
            id="cpu-sample-without-timestamp",
        ),
        pytest.param(
            MetricObservation(name="cpu", pod_values={"a": 0.1}, timestamp=NOW, window_seconds=60),
            None,
            "failed to get cpu utilization: unable to get pods while calculating replica count: none listed",
            id="no-pods-listed",
        ),
        pytest.param(
            MetricObservation(name="cpu", value=0.1, timestamp=NOW, window_seconds=60),
            (PodInfo(name="a"),),
            "failed to get cpu utilization: unable to get metrics for resource cpu: "
            "expected per-pod values for a Resource metric",
            id="single-value",
        ),
        pytest.param(
            MetricObservation(name="cpu", pod_values={"a": -0.5}, timestamp=NOW, window_seconds=60),
            (PodInfo(name="a"),),
            "failed to get cpu utilization: unable to get metrics for resource cpu: "
            "pod a reported a negative usage -0.5",
            id="negative-usage",
        ),
        pytest.param(
            MetricObservation(name="cpu", pod_values={"a": 1e301}, timestamp=NOW, window_seconds=60),
            (PodInfo(name="a"),),
            "failed to get cpu utilization: unable to get metrics for resource cpu: pod a reported 1e+301, "
            "beyond the supported magnitude 1e+300",
            id="beyond-magnitude",
        ),
    ],
)
def test_unusable_resource_observations_fail_the_metric_with_a_reason(
    sample: MetricObservation, pods: tuple[PodInfo, ...] | None, error: str
) -> None:
    observation = Observation(ScaleObservation(1, 1), (sample,), pods)
    result = compute_replicas_for_metric(resource_spec(utilization=50), sample, observation, DEFAULT, now=NOW)
    assert (result.valid, result.error) == (False, error)


def test_resource_metrics_take_no_part_in_activation() -> None:
    """KEDA: cpu/memory never hold a scale-to-zero rule up nor wake it."""
    external = MetricSpec(
        name="queue", type="External", query="q", target=MetricTarget(type="Value", value=10)
    )
    rule = Rule(
        name="web",
        target=TARGET,
        min_replicas=0,
        max_replicas=10,
        metrics=(resource_spec(utilization=50), external),
        cooldown_period_seconds=0,
    )
    pods = (PodInfo(name="a", start_time=0.0, ready_transition_time=0.0, requests={"cpu": 1.0}),)
    samples = (
        MetricObservation(name="cpu", pod_values={"a": 0.9}, timestamp=NOW, window_seconds=60),
        MetricObservation(name="queue", value=0.0),
    )
    decision = decide(rule, Observation(ScaleObservation(1, 1), samples, pods), None, NOW)
    assert decision.desired_replicas == 0


# ----------------------------------------------------------------------------- properties

_usage = st.one_of(st.floats(min_value=0, max_value=1e300), st.just(float("nan")), st.just(float("inf")))
_request = st.fixed_dictionaries({}, optional={"cpu": st.floats(0, 1e15), "memory": st.floats(0, 1e15)})
_time = st.one_of(st.none(), st.floats(min_value=0, max_value=2 * NOW))


@st.composite
def _resource_cases(draw: st.DrawFn) -> tuple[MetricSpec, MetricObservation, Observation]:
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), unique=True, max_size=5))
    pods = tuple(
        PodInfo(
            name=name,
            phase=draw(st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"])),
            ready=draw(st.booleans()),
            deleting=draw(st.booleans()),
            start_time=draw(_time),
            ready_transition_time=draw(_time),
            requests=draw(_request),
            containers=tuple(
                ContainerInfo(c, draw(_request))
                for c in draw(st.lists(st.sampled_from(["app", "proxy"]), unique=True))
            ),
        )
        for name in names
    )
    values = draw(st.dictionaries(st.sampled_from(["a", "b", "c", "x"]), _usage, max_size=4))
    sample = MetricObservation("cpu", pod_values=values, timestamp=draw(_time), window_seconds=draw(_time))
    resource: ResourceName = "cpu" if draw(st.booleans()) else "memory"
    container = draw(st.sampled_from([None, "app"]))
    if draw(st.booleans()):
        spec = resource_spec(resource, container, utilization=draw(st.integers(1, 2**31 - 1)))
    else:
        spec = resource_spec(resource, container, average_value=draw(st.floats(1e-6, 1e15)))
    current = draw(st.integers(0, 2**31 - 1))
    return spec, sample, Observation(ScaleObservation(current, current), (sample,), pods)


@settings(max_examples=300, deadline=None)
@given(_resource_cases())
def test_resource_metric_never_raises_and_proposes_within_int32(
    case: tuple[MetricSpec, MetricObservation, Observation],
) -> None:
    spec, sample, observation = case
    result = compute_replicas_for_metric(spec, sample, observation, DEFAULT, now=NOW)
    if result.valid:
        assert result.proposal is not None and 0 <= result.proposal <= 2**31 - 1
        assert result.current is not None and result.current >= 0
    else:
        assert result.proposal is None and result.error
    assert compute_replicas_for_metric(spec, sample, observation, DEFAULT, now=NOW) == result
