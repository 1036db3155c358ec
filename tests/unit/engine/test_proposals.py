"""Per-metric proposals: ports of replica_calculator_test.go (non-CPU cases) and groupPods."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ampscaler.engine.pods import (
    NO_METRICS_ERROR,
    NO_PODS_ERROR,
    Tolerances,
    calc_plain_metric_replicas,
    group_pods,
    to_milli,
)
from ampscaler.engine.proposals import compute_replicas_for_metric, resolve_tolerances
from ampscaler.engine.types import ControllerConfig, MetricObservation, PodInfo, PodPhase
from ampscaler.model import MetricType, TargetType
from tests.unit.engine.builders import (
    behavior,
    metric,
    observe,
    pod_values,
    pods,
    rule,
    scale_down_rules,
    scale_up_rules,
)

DEFAULT = Tolerances(0.1, 0.1)


@dataclass(frozen=True)
class ReplicaCalcCase:
    """One row, shaped like upstream's replicaCalcTestCase (levels in units, not milli)."""

    name: str
    current_replicas: int
    levels: tuple[float, ...]
    target: float
    metric_type: MetricType = "Pods"
    target_type: TargetType | None = None
    expected_replicas: int | None = None
    expected_current: float | None = None
    expected_error: str | None = None
    ready: tuple[bool, ...] | None = None
    phases: tuple[PodPhase, ...] | None = None
    deleting: tuple[bool, ...] | None = None
    pod_names: tuple[str, ...] | None = None
    status_replicas: int | None = None
    tolerances: Tolerances = field(default=DEFAULT)
    pod_count: int | None = None


CASES = [
    # --- upstream TestReplicaCalc*CM (Pods metrics) ---
    ReplicaCalcCase(
        "scale up pods metric (TestReplicaCalcScaleUpCM)",
        3,
        (20, 10, 30),
        15,
        expected_replicas=4,
        expected_current=20,
    ),
    ReplicaCalcCase(
        "pods metric ignores readiness (TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale)",
        3,
        (50, 10, 30),
        15,
        ready=(True, True, False),
        expected_replicas=6,
        expected_current=30,
    ),
    ReplicaCalcCase(
        "pods metric ignores readiness with truncated average "
        "(TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown)",
        3,
        (50, 15, 30),
        15,
        ready=(False, True, False),
        expected_replicas=7,
        expected_current=31.666,
    ),
    ReplicaCalcCase(
        "scale up pods metric single pod (TestReplicaCalcScaleUpCMExternal podMetric)",
        1,
        (8.6,),
        4.4,
        expected_replicas=2,
        expected_current=8.6,
    ),
    ReplicaCalcCase(
        "scale down pods metric (TestReplicaCalcScaleDownCM)",
        5,
        (12,) * 5,
        20,
        expected_replicas=3,
        expected_current=12,
    ),
    ReplicaCalcCase(
        "pods metric within tolerance (TestReplicaCalcToleranceCM)",
        3,
        (20, 21, 21),
        20,
        expected_replicas=3,
        expected_current=20.666,
    ),
    # --- missing, pending, failed, deleted pods (groupPods paths) ---
    ReplicaCalcCase(
        "missing pods count as target on scale down (TestReplicaCalcMissingMetrics shape)",
        4,
        (4, 0.95),
        10,
        pod_count=4,
        expected_replicas=3,
    ),
    ReplicaCalcCase(
        "missing pods count as target: refilled ratio still below tolerance scales down",
        4,
        (1, 1),
        10,
        pod_count=4,
        expected_replicas=3,
    ),
    ReplicaCalcCase(
        "missing pod counts as zero on scale up", 3, (20, 20), 10, pod_count=3, expected_replicas=4
    ),
    ReplicaCalcCase(
        "missing pods keep count when refilled ratio is within tolerance (NoChangeEq)",
        2,
        (10,),
        10,
        pod_count=2,
        expected_replicas=2,
    ),
    ReplicaCalcCase(
        "missing pods keep count when refilled ratio flips to within tolerance (NoChangeGt)",
        2,
        (19,),
        10,
        pod_count=2,
        expected_replicas=2,
    ),
    ReplicaCalcCase(
        "missing pods keep count on scale down within tolerance (NoChangeLt)",
        2,
        (6,),
        10,
        pod_count=2,
        expected_replicas=2,
    ),
    ReplicaCalcCase(
        "pending pod is zero on scale up",
        3,
        (20, 20),
        10,
        phases=("Running", "Running", "Pending"),
        expected_replicas=4,
    ),
    ReplicaCalcCase(
        "pending pod is dropped on scale down",
        5,
        (1,),
        10,
        phases=("Running", "Pending", "Pending", "Pending", "Pending"),
        expected_replicas=1,
    ),
    ReplicaCalcCase(
        "pending pod with flip to within tolerance keeps count",
        2,
        (11.5,),
        10,
        phases=("Running", "Pending"),
        expected_replicas=2,
    ),
    ReplicaCalcCase(
        "pending pod: refilled ratio below 1 on scale up keeps current",
        2,
        (15,),
        10,
        phases=("Running", "Pending", "Pending"),
        expected_replicas=2,
    ),
    ReplicaCalcCase(
        "failed pods ignored on scale up (TestReplicaCalcScaleUpIgnoresFailedPods shape)",
        2,
        (25, 35),
        10,
        phases=("Running", "Running", "Failed", "Failed"),
        expected_replicas=6,
    ),
    ReplicaCalcCase(
        "deleting pods ignored on scale down (TestReplicaCalcScaleDownIgnoresDeletionPods shape)",
        5,
        (5, 5, 5, 5, 5),
        10,
        deleting=(False, False, False, False, False, True, True),
        expected_replicas=3,
    ),
    ReplicaCalcCase(
        "failed pods' samples are dropped from the average",
        2,
        (10, 10, 100),
        10,
        phases=("Running", "Running", "Failed"),
        expected_replicas=2,
    ),
    ReplicaCalcCase(
        "samples for pods not in the list stay in the average (upstream)",
        2,
        (20, 20, 20),
        10,
        pod_count=2,
        pod_names=("test-pod-0", "test-pod-1", "an-older-pod"),
        expected_replicas=4,
    ),
    ReplicaCalcCase(
        "superfluous samples widen the denominator after a refill",
        2,
        (40, 40),
        10,
        pod_count=3,
        pod_names=("test-pod-0", "gone-pod", "x"),
        expected_replicas=8,
    ),
    ReplicaCalcCase(
        "no pods returned by selector is an error", 0, (10,), 10, pod_count=0, expected_error=NO_PODS_ERROR
    ),
    ReplicaCalcCase(
        "all pods pending is an error",
        2,
        (10, 10),
        10,
        phases=("Pending", "Pending"),
        expected_error=NO_METRICS_ERROR,
    ),
    ReplicaCalcCase(
        "no sample at all: every pod missing", 2, (), 10, pod_count=2, expected_error=NO_METRICS_ERROR
    ),
    ReplicaCalcCase(
        "running but not ready pod counts as ready for a non-CPU metric",
        2,
        (20, 20),
        10,
        ready=(True, False),
        expected_replicas=4,
    ),
    # --- Object/External Value targets (getUsageRatioReplicaCount) ---
    ReplicaCalcCase(
        "object value scale up (TestReplicaCalcScaleUpCMObject)",
        3,
        (20,),
        15,
        metric_type="Object",
        expected_replicas=4,
        expected_current=20,
    ),
    ReplicaCalcCase(
        "object value ignores unready pods (TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods)",
        3,
        (50,),
        10,
        metric_type="Object",
        ready=(False, True, False),
        expected_replicas=5,
    ),
    ReplicaCalcCase(
        "external value ignores unready pods (TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods)",
        3,
        (8.6,),
        4.4,
        metric_type="External",
        ready=(False, True, False),
        expected_replicas=2,
    ),
    ReplicaCalcCase(
        "external value scale down (TestReplicaCalcScaleDownCMExternal)",
        5,
        (8.6,),
        14.334,
        metric_type="External",
        expected_replicas=3,
    ),
    ReplicaCalcCase(
        "object value scale down (TestReplicaCalcScaleDownCMObject)",
        5,
        (12,),
        20,
        metric_type="Object",
        expected_replicas=3,
    ),
    ReplicaCalcCase(
        "object value within tolerance (TestReplicaCalcToleranceCMObject)",
        3,
        (20.666,),
        20,
        metric_type="Object",
        expected_replicas=3,
    ),
    ReplicaCalcCase(
        "external value within tolerance (TestReplicaCalcToleranceCMExternal)",
        3,
        (8.6,),
        8.888,
        metric_type="External",
        expected_replicas=3,
    ),
    ReplicaCalcCase(
        "external value ratio exactly 1.1 is within tolerance",
        5,
        (44,),
        40,
        metric_type="External",
        expected_replicas=5,
    ),
    ReplicaCalcCase(
        "external value ratio exactly 0.9 is within tolerance",
        5,
        (36,),
        40,
        metric_type="External",
        expected_replicas=5,
    ),
    ReplicaCalcCase(
        "external value ratio just above 1.1 scales up",
        5,
        (44.1,),
        40,
        metric_type="External",
        expected_replicas=6,
    ),
    ReplicaCalcCase(
        "external value worked example 5 -> 4", 5, (30,), 40, metric_type="External", expected_replicas=4
    ),
    ReplicaCalcCase(
        "external value worked example 4 -> 3", 4, (30,), 40, metric_type="External", expected_replicas=3
    ),
    ReplicaCalcCase(
        "external value worked example 3 stays 3", 3, (30,), 40, metric_type="External", expected_replicas=3
    ),
    ReplicaCalcCase(
        "object value from zero replicas ignores tolerance and pods",
        0,
        (20,),
        15,
        metric_type="Object",
        pod_count=0,
        expected_replicas=2,
    ),
    ReplicaCalcCase(
        "external value from zero replicas at exactly target gives 1",
        0,
        (1,),
        1,
        metric_type="External",
        pod_count=0,
        expected_replicas=1,
    ),
    ReplicaCalcCase(
        "external value with empty pod list is an error",
        2,
        (100,),
        10,
        metric_type="External",
        pod_count=0,
        expected_error="unable to calculate ready pods: " + NO_PODS_ERROR,
    ),
    ReplicaCalcCase(
        "external value within tolerance needs no pods",
        2,
        (10,),
        10,
        metric_type="External",
        pod_count=0,
        expected_replicas=2,
    ),
    # --- AverageValue targets (GetObjectPerPodMetricReplicas / GetExternalPerPodMetricReplicas) ---
    ReplicaCalcCase(
        "object average value scale up (TestReplicaCalcScaleUpCMPerPodObject)",
        3,
        (20,),
        5,
        metric_type="Object",
        target_type="AverageValue",
        expected_replicas=4,
        expected_current=6.667,
    ),
    ReplicaCalcCase(
        "external average value scale up (TestReplicaCalcScaleUpPerPodCMExternal)",
        3,
        (8.6,),
        2.15,
        metric_type="External",
        target_type="AverageValue",
        expected_replicas=4,
        expected_current=2.867,
    ),
    ReplicaCalcCase(
        "object average value scale down (TestReplicaCalcScaleDownPerPodCMObject)",
        5,
        (6,),
        2,
        metric_type="Object",
        target_type="AverageValue",
        expected_replicas=3,
        expected_current=1.2,
    ),
    ReplicaCalcCase(
        "external average value scale down (TestReplicaCalcScaleDownPerPodCMExternal)",
        5,
        (8.6,),
        2.867,
        metric_type="External",
        target_type="AverageValue",
        expected_replicas=3,
        expected_current=1.72,
    ),
    ReplicaCalcCase(
        "object average value within tolerance (TestReplicaCalcTolerancePerPodCMObject)",
        4,
        (20.166,),
        5,
        metric_type="Object",
        target_type="AverageValue",
        expected_replicas=4,
        expected_current=5.042,
    ),
    ReplicaCalcCase(
        "external average value within tolerance (TestReplicaCalcTolerancePerPodCMExternal)",
        3,
        (8.6,),
        2.9,
        metric_type="External",
        target_type="AverageValue",
        expected_replicas=3,
        expected_current=2.867,
    ),
    ReplicaCalcCase(
        "average value tolerance uses status replicas, not spec",
        3,
        (8.6,),
        2.9,
        metric_type="External",
        target_type="AverageValue",
        status_replicas=2,
        expected_replicas=3,
    ),
    ReplicaCalcCase(
        "average value with zero status replicas proposes ceil(total/target)",
        0,
        (25,),
        10,
        metric_type="External",
        target_type="AverageValue",
        pod_count=0,
        expected_replicas=3,
    ),
    ReplicaCalcCase(
        "average value of zero with zero status replicas proposes zero",
        0,
        (0,),
        10,
        metric_type="External",
        target_type="AverageValue",
        pod_count=0,
        expected_replicas=0,
    ),
    # --- per-direction tolerance (HPAConfigurableTolerance) ---
    ReplicaCalcCase(
        "scale-up tolerance 0 scales on ratio 1.05",
        10,
        (10.5,),
        10,
        metric_type="External",
        tolerances=Tolerances(0.1, 0.0),
        expected_replicas=11,
    ),
    ReplicaCalcCase(
        "scale-down tolerance 0.5 keeps ratio 0.6",
        10,
        (6,),
        10,
        metric_type="External",
        tolerances=Tolerances(0.5, 0.1),
        expected_replicas=10,
    ),
    ReplicaCalcCase(
        "scale-down tolerance 0.3 lets ratio 0.6 scale down",
        10,
        (6,),
        10,
        metric_type="External",
        tolerances=Tolerances(0.3, 0.1),
        expected_replicas=6,
    ),
    ReplicaCalcCase(
        "scale-up tolerance 0.5 keeps pods ratio 1.4",
        3,
        (14, 14, 14),
        10,
        tolerances=Tolerances(0.1, 0.5),
        expected_replicas=3,
    ),
    ReplicaCalcCase(
        "scale-up tolerance at exactly 1+tol keeps count",
        4,
        (15,),
        10,
        metric_type="Object",
        tolerances=Tolerances(0.1, 0.5),
        expected_replicas=4,
    ),
]


@pytest.mark.parametrize("tc", CASES, ids=[c.name for c in CASES])
def test_replica_calc_table(tc: ReplicaCalcCase) -> None:
    """One runner for every row, like replicaCalcTestCase.runTest."""
    spec = metric("qps", tc.metric_type, tc.target, tc.target_type)
    count = tc.pod_count if tc.pod_count is not None else tc.current_replicas
    pod_list = pods(count, tc.phases, tc.ready, tc.deleting)
    if tc.metric_type == "Pods":
        sample = MetricObservation(name="qps", pod_values=pod_values(tc.levels, tc.pod_names))
    else:
        sample = MetricObservation(name="qps", value=tc.levels[0])
    obs = observe(tc.current_replicas, [sample], pod_list, tc.status_replicas)
    result = compute_replicas_for_metric(spec, sample, obs, tc.tolerances, now=0.0)
    if tc.expected_error is not None:
        assert not result.valid
        assert result.proposal is None
        assert tc.expected_error in (result.error or "")
        return
    assert result.valid, result.error
    assert result.proposal == tc.expected_replicas
    if tc.expected_current is not None:
        assert result.current == pytest.approx(tc.expected_current, abs=1e-3)


@dataclass(frozen=True)
class GroupPodsCase:
    name: str
    pods: tuple[PodInfo, ...]
    metrics: tuple[str, ...]
    ready: int
    unready: frozenset[str] = frozenset()
    missing: frozenset[str] = frozenset()
    ignored: frozenset[str] = frozenset()


GROUP_CASES = [
    GroupPodsCase("void", (), (), 0),
    GroupPodsCase("count in a ready pod", (PodInfo("bentham"),), ("bentham",), 1),
    GroupPodsCase(
        "count in a running pod that is not ready (non-CPU)",
        (PodInfo("lucretius", ready=False),),
        ("lucretius",),
        1,
    ),
    GroupPodsCase(
        "count in a succeeded pod with a sample (upstream memory case)",
        (PodInfo("bentham", phase="Succeeded"),),
        ("bentham",),
        1,
    ),
    GroupPodsCase("a missing pod", (PodInfo("epicurus"),), (), 0, missing=frozenset({"epicurus"})),
    GroupPodsCase(
        "pending pods are unready",
        (PodInfo("unscheduled", phase="Pending"),),
        (),
        0,
        unready=frozenset({"unscheduled"}),
    ),
    GroupPodsCase(
        "failed pods are ignored",
        (PodInfo("dead", phase="Failed"),),
        ("dead",),
        0,
        ignored=frozenset({"dead"}),
    ),
    GroupPodsCase(
        "deleting pods are ignored",
        (PodInfo("going", deleting=True),),
        ("going",),
        0,
        ignored=frozenset({"going"}),
    ),
    GroupPodsCase(
        "several pods",
        (
            PodInfo("lucretius"),
            PodInfo("niccolo"),
            PodInfo("epicurus"),
            PodInfo("p", phase="Pending"),
            PodInfo("f", phase="Failed"),
        ),
        ("lucretius", "niccolo", "f"),
        2,
        unready=frozenset({"p"}),
        missing=frozenset({"epicurus"}),
        ignored=frozenset({"f"}),
    ),
]


@pytest.mark.parametrize("tc", GROUP_CASES, ids=[c.name for c in GROUP_CASES])
def test_group_pods_table(tc: GroupPodsCase) -> None:
    """Upstream: TestGroupPods (non-CPU rows)."""
    groups = group_pods(tc.pods, dict.fromkeys(tc.metrics, 1))
    assert groups.ready_pod_count == tc.ready
    assert groups.unready_pods == tc.unready
    assert groups.missing_pods == tc.missing
    assert groups.ignored_pods == tc.ignored


@pytest.mark.parametrize(
    ("value", "milli"),
    [(0.1, 100), (1.0, 1000), (1.0005, 1001), (20.666, 20666), (0.0001, 1), (0.0, 0), (-1.5, -1500)],
)
def test_to_milli_rounds_up_like_quantity_milli_value(value: float, milli: int) -> None:
    assert to_milli(value) == milli


def test_calc_plain_metric_replicas_does_not_mutate_samples() -> None:
    samples = {"test-pod-0": 20000}
    before = dict(samples)
    calc_plain_metric_replicas(samples, pods(3), 3, 10000, DEFAULT)
    assert samples == before


@pytest.mark.parametrize(
    ("name", "r", "expected"),
    [
        ("controller tolerance when nothing set", rule(), Tolerances(0.1, 0.1)),
        ("rule tolerance overrides controller", rule(tolerance=0.2), Tolerances(0.2, 0.2)),
        (
            "behavior tolerances override rule tolerance per direction",
            rule(tolerance=0.2, behavior=behavior(up=scale_up_rules(tolerance=0.05))),
            Tolerances(0.2, 0.05),
        ),
        (
            "scale-down tolerance alone",
            rule(behavior=behavior(down=scale_down_rules(tolerance=0.3))),
            Tolerances(0.3, 0.1),
        ),
    ],
)
def test_resolve_tolerances_table(name: str, r: object, expected: Tolerances) -> None:
    assert resolve_tolerances(r, ControllerConfig()) == expected  # type: ignore[arg-type]
