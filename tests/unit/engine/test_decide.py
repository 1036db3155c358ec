"""decide(): whole evaluations, shaped like horizontal_test.go's testCase.runTest, plus ampscaler's
KEDA-style extras (fallback, scale to/from zero) and the paused/dry-run modes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from ampscaler.engine import decide, reasons
from ampscaler.engine.types import (
    ControllerConfig,
    Decision,
    EngineState,
    MetricObservation,
    PodInfo,
    Recommendation,
    ScaleEvent,
)
from ampscaler.model import Behavior, Fallback, Rule
from tests.unit.engine.builders import (
    behavior,
    failed,
    metric,
    observe,
    per_pod,
    pod_values,
    pods,
    policy,
    rule,
    scale_down_rules,
    scale_up_rules,
    state,
    value,
)

NOW = 1_700_000_000.0
EMPTY = EngineState()  # stored state with no history: no seeding, no stabilization
NO_STAB = behavior(down=scale_down_rules(window=0))


@dataclass(frozen=True)
class DecideCase:
    """One evaluation: rule + observation + state -> expected decision fields."""

    name: str
    rule: Rule
    current: int
    samples: Sequence[MetricObservation]
    expected: int
    pod_list: Sequence[PodInfo] | None = None
    state: EngineState | None = EMPTY
    status_replicas: int | None = None
    action: str | None = None
    conditions: dict[str, tuple[bool, str]] = field(default_factory=dict)
    reason: str | None = None
    controller: ControllerConfig = field(default_factory=ControllerConfig)


def qps(levels: Sequence[float]) -> MetricObservation:
    return per_pod("qps", pod_values(levels))


PODS15 = metric("qps", "Pods", 15)
EXT = metric("backlog", "External", 40)
OBJ = metric("queue", "Object", 15)

CASES = [
    # --- legacy path (no behavior): upstream horizontal_test.go shapes -----------------------------
    DecideCase(
        "scale up on a pods metric (TestScaleUpCM)",
        rule([PODS15], 2, 6),
        3,
        [qps([20, 10, 30])],
        4,
        pods(3),
        action="scale",
        reason="pods metric qps above target",
        conditions={
            "AbleToScale": (True, "ReadyForNewScale"),
            "ScalingActive": (True, "ValidMetricFound"),
            "ScalingLimited": (False, "DesiredWithinRange"),
        },
    ),
    DecideCase(
        "pods metric ignores readiness (TestScaleUpCMUnreadyAndHotCpuNoLessScale)",
        rule([PODS15], 2, 6),
        3,
        [qps([50, 10, 30])],
        6,
        pods(3, ready=[True, True, False]),
    ),
    DecideCase(
        "scale up capped by maxReplicas",
        rule([PODS15], 2, 5),
        3,
        [qps([50, 10, 30])],
        5,
        pods(3),
        conditions={"ScalingLimited": (True, "TooManyReplicas")},
    ),
    DecideCase(
        "scale up capped by the legacy scale-up limit",
        rule([PODS15], 1, 100),
        2,
        [qps([150, 150])],
        4,
        pods(2),
        conditions={"ScalingLimited": (True, "ScaleUpLimit")},
    ),
    DecideCase(
        "legacy scale-up limit is twice current above 4",
        rule([PODS15], 1, 100),
        10,
        [qps([150] * 10)],
        20,
        pods(10),
        conditions={"ScalingLimited": (True, "ScaleUpLimit")},
    ),
    DecideCase(
        "scale down on a pods metric with no history (TestScaleDownCM)",
        rule([metric("qps", "Pods", 20)], 2, 6),
        5,
        [qps([12] * 5)],
        3,
        pods(5),
        reason="All metrics below target",
    ),
    DecideCase(
        "scale down limited by minReplicas",
        rule([metric("qps", "Pods", 20)], 4, 6),
        5,
        [qps([12] * 5)],
        4,
        pods(5),
        conditions={"ScalingLimited": (True, "TooFewReplicas")},
    ),
    DecideCase(
        "first evaluation seeds history so scale down is stabilized",
        rule([metric("qps", "Pods", 20)], 2, 6),
        5,
        [qps([12] * 5)],
        5,
        pods(5),
        state=None,
        action="none",
        conditions={"AbleToScale": (True, "ScaleDownStabilized")},
    ),
    DecideCase(
        "legacy stabilization keeps the max of the last 5 minutes",
        rule([metric("qps", "Pods", 20)], 2, 6),
        5,
        [qps([12] * 5)],
        4,
        pods(5),
        state=state([(NOW - 60, 4), (NOW - 400, 6)]),
        conditions={"AbleToScale": (True, "ScaleDownStabilized")},
    ),
    DecideCase(
        "legacy stabilization honours the controller flag",
        rule([metric("qps", "Pods", 20)], 2, 6),
        5,
        [qps([12] * 5)],
        3,
        pods(5),
        state=state([(NOW - 60, 5)]),
        controller=ControllerConfig(downscale_stabilization_seconds=30),
    ),
    DecideCase(
        "scale up object value (TestScaleUpCMObject shape)",
        rule([OBJ], 2, 6),
        3,
        [value("queue", 20)],
        4,
        pods(3),
        reason="object metric queue above target",
    ),
    DecideCase(
        "scale down object average value (TestScaleDownPerPodCMObject)",
        rule([metric("queue", "Object", 2, "AverageValue")], 2, 6),
        5,
        [value("queue", 6)],
        3,
        pods(5),
    ),
    DecideCase(
        "scale up external average value (TestScaleUpPerPodCMExternal shape)",
        rule([metric("backlog", "External", 2.15, "AverageValue")], 2, 6),
        3,
        [value("backlog", 8.6)],
        4,
        pods(3),
        reason="external metric backlog above target",
    ),
    DecideCase(
        "scale down external value (TestScaleDownCMExternal)",
        rule([metric("b", "External", 14.334)], 2, 6),
        5,
        [value("b", 8.6)],
        3,
        pods(5),
    ),
    DecideCase(
        "external value within tolerance (TestToleranceCMExternal)",
        rule([metric("b", "External", 8.888)], 2, 6),
        4,
        [value("b", 8.6)],
        4,
        pods(4),
        action="none",
        reason="recommended size matches current size",
    ),
    DecideCase(
        "pods without listing are taken from the samples",
        rule([PODS15], 2, 6),
        3,
        [qps([20, 10, 30])],
        4,
        None,
    ),
    DecideCase(
        "external value without pod listing uses status replicas",
        rule([EXT], 1, 10),
        5,
        [value("backlog", 30)],
        4,
        None,
        status_replicas=5,
    ),
    # --- invalid metrics (computeReplicasForMetrics) ------------------------------------------------
    DecideCase(
        "one failed metric does not block scale up (TestScaleUpOneMetricEmpty)",
        rule([PODS15, EXT], 2, 6),
        3,
        [qps([20, 10, 30]), failed("backlog")],
        4,
        pods(3),
        conditions={"ScalingActive": (True, "ValidMetricFound")},
    ),
    DecideCase(
        "one failed metric blocks scale down (TestNoScaleDownOneMetricEmpty)",
        rule([metric("qps", "Pods", 20), EXT], 2, 6),
        5,
        [qps([12] * 5), failed("backlog")],
        5,
        pods(5),
        action="none",
        conditions={"ScalingActive": (False, "FailedGetExternalMetric")},
    ),
    DecideCase(
        "one failed metric keeps count when the other is within tolerance",
        rule([metric("qps", "Pods", 10), EXT], 2, 6),
        5,
        [qps([10] * 5), failed("backlog")],
        5,
        pods(5),
        conditions={"ScalingActive": (True, "ValidMetricFound")},
    ),
    DecideCase(
        "all metrics failed keeps count with the first failure's reason",
        rule([PODS15, EXT], 2, 6),
        3,
        [failed("qps"), failed("backlog")],
        3,
        pods(3),
        action="none",
        conditions={"ScalingActive": (False, "FailedGetPodsMetric")},
    ),
    DecideCase(
        "object metric failure reason",
        rule([OBJ], 2, 6),
        3,
        [failed("queue")],
        3,
        pods(3),
        conditions={"ScalingActive": (False, "FailedGetObjectMetric")},
    ),
    DecideCase(
        "metric missing from the observation counts as failed",
        rule([PODS15, EXT], 2, 6),
        5,
        [qps([1] * 5)],
        5,
        pods(5),
        conditions={"ScalingActive": (False, "FailedGetExternalMetric")},
    ),
    DecideCase(
        "NaN external value is a failed metric",
        rule([EXT], 2, 6),
        5,
        [value("backlog", float("nan"))],
        5,
        pods(5),
        conditions={"ScalingActive": (False, "FailedGetExternalMetric")},
    ),
    DecideCase(
        "max over valid metrics wins",
        rule([PODS15, EXT], 1, 20),
        3,
        [qps([15, 15, 15]), value("backlog", 200)],
        6,
        pods(3),
        reason="external metric backlog above target",
    ),
    DecideCase(
        "max over metrics when one proposes scale down",
        rule([PODS15, EXT], 1, 20),
        4,
        [qps([1] * 4), value("backlog", 60)],
        6,
        pods(4),
    ),
    # --- out-of-range current and scaling disabled (reconcileAutoscaler) ---------------------------
    DecideCase(
        "current above max jumps to max",
        rule([PODS15], 2, 6),
        8,
        [qps([15] * 8)],
        6,
        pods(8),
        reason="Current number of replicas above Spec.MaxReplicas",
        conditions={"ScalingLimited": (True, "TooManyReplicas")},
    ),
    DecideCase(
        "current below min jumps to min",
        rule([PODS15], 3, 6),
        1,
        [qps([1])],
        3,
        pods(1),
        reason="Current number of replicas below Spec.MinReplicas",
        conditions={"ScalingLimited": (True, "TooFewReplicas")},
    ),
    DecideCase(
        "current above max even when metrics fail", rule([PODS15], 2, 6), 8, [failed("qps")], 6, pods(8)
    ),
    DecideCase(
        "zero replicas with minReplicas > 0 disables scaling",
        rule([PODS15], 1, 6),
        0,
        [qps([100])],
        0,
        (),
        action="none",
        conditions={"ScalingActive": (False, "ScalingDisabled")},
        reason="scaling is disabled since the replica count of the target is zero",
    ),
    # --- behavior path ------------------------------------------------------------------------------
    DecideCase(
        "default behavior scale up limited by 4 pods or 100%",
        rule([PODS15], 1, 100, behavior()),
        3,
        [qps([150] * 3)],
        7,
        pods(3),
        conditions={"ScalingLimited": (True, "ScaleUpLimit")},
    ),
    DecideCase(
        "default behavior scale down stabilized by the controller default window",
        rule([metric("qps", "Pods", 20)], 1, 100, behavior()),
        5,
        [qps([12] * 5)],
        5,
        pods(5),
        state=state([(NOW - 100, 5)]),
        conditions={"AbleToScale": (True, "ScaleDownStabilized")},
    ),
    DecideCase(
        "scale down window set by the controller flag",
        rule([metric("qps", "Pods", 20)], 1, 100, behavior()),
        5,
        [qps([12] * 5)],
        3,
        pods(5),
        state=state([(NOW - 100, 5)]),
        controller=ControllerConfig(downscale_stabilization_seconds=60),
    ),
    DecideCase(
        "scale up stabilization takes the min of the window",
        rule([PODS15], 1, 100, behavior(up=scale_up_rules(window=120))),
        3,
        [qps([30] * 3)],
        4,
        pods(3),
        state=state([(NOW - 60, 4), (NOW - 30, 5)]),
        conditions={"AbleToScale": (True, "ScaleUpStabilized")},
    ),
    DecideCase(
        "scale up limited by recent scale-up events",
        rule([PODS15], 1, 100, behavior(up=scale_up_rules(policies=[policy("Pods", 2, 60)]))),
        6,
        [qps([60] * 6)],
        6,
        pods(6),
        state=state(up=[(NOW - 30, 2)]),
        conditions={"ScalingLimited": (True, "ScaleUpLimit")},
        action="none",
    ),
    DecideCase(
        "scale up disabled by selectPolicy",
        rule([PODS15], 1, 100, behavior(up=scale_up_rules(select="Disabled"))),
        3,
        [qps([60] * 3)],
        3,
        pods(3),
        conditions={"ScalingLimited": (True, "ScaleUpLimit")},
    ),
    DecideCase(
        "scale down limited by percent policy",
        rule(
            [metric("qps", "Pods", 20)],
            1,
            100,
            behavior(down=scale_down_rules(window=0, policies=[policy("Percent", 10, 60)])),
        ),
        10,
        [qps([2] * 10)],
        9,
        pods(10),
        conditions={"ScalingLimited": (True, "ScaleDownLimit")},
    ),
    DecideCase(
        "behavior scale-up tolerance overrides the controller tolerance",
        rule([metric("b", "External", 100)], 1, 100, behavior(up=scale_up_rules(tolerance=0.01))),
        10,
        [value("b", 105)],
        11,
        pods(10),
    ),
    DecideCase(
        "behavior scale-down tolerance keeps a 20% drop",
        rule(
            [metric("b", "External", 100)], 1, 100, behavior(down=scale_down_rules(window=0, tolerance=0.25))
        ),
        10,
        [value("b", 80)],
        10,
        pods(10),
    ),
    DecideCase(
        "rule tolerance applies to both directions",
        rule([metric("b", "External", 100)], 1, 100, tolerance=0.3),
        10,
        [value("b", 125)],
        10,
        pods(10),
    ),
]


def _run(tc: DecideCase) -> Decision:
    obs = observe(tc.current, tc.samples, tc.pod_list, tc.status_replicas)
    return decide(tc.rule, obs, tc.state, NOW, tc.controller)


@pytest.mark.parametrize("tc", CASES, ids=[c.name for c in CASES])
def test_decide_table(tc: DecideCase) -> None:
    """One runner, like horizontal_test.go testCase.runTest."""
    decision = _run(tc)
    assert decision.desired_replicas == tc.expected
    assert decision.current_replicas == tc.current
    expected_action = tc.action or ("scale" if tc.expected != tc.current else "none")
    assert decision.action == expected_action
    conditions: dict[str, tuple[bool, str]] = {c.type: (c.status, c.reason) for c in decision.conditions}
    assert [c.type for c in decision.conditions] == ["AbleToScale", "ScalingActive", "ScalingLimited"]
    for kind, expected in tc.conditions.items():
        assert conditions[kind] == expected, kind
    if tc.reason is not None:
        assert decision.reason == tc.reason
    assert [m.name for m in decision.metrics] == [m.name for m in tc.rule.metrics]
    assert decision.extra["mode"] == "active"


def test_worked_example_external_value_5_4_3_3() -> None:
    """Issue 2: External Value target 40, metric 30, 5 ready replicas -> 4 -> 3 -> 3."""
    r = rule([EXT], 1, 10, NO_STAB)
    current, st, seen = 5, None, []
    for step in range(4):
        decision = decide(r, observe(current, [value("backlog", 30)], pods(current)), st, NOW + 15 * step)
        seen.append(decision.desired_replicas)
        current, st = decision.desired_replicas, decision.state
    assert seen == [4, 3, 3, 3]
    assert st is not None
    assert [e.change for e in st.scale_down_events] == [1, 1]


def test_scale_events_recorded_only_with_behavior() -> None:
    legacy = decide(rule([EXT], 1, 10), observe(5, [value("backlog", 80)], pods(5)), EMPTY, NOW)
    assert legacy.action == "scale"
    assert legacy.state.scale_up_events == ()
    with_behavior = decide(
        rule([EXT], 1, 20, behavior()), observe(5, [value("backlog", 80)], pods(5)), EMPTY, NOW
    )
    assert with_behavior.state.scale_up_events == (ScaleEvent(NOW, 5),)


def test_recommendation_history_pruned_to_longest_window() -> None:
    r = rule([EXT], 1, 10, behavior(up=scale_up_rules(window=60), down=scale_down_rules(window=120)))
    st = state([(NOW - 500, 9), (NOW - 100, 4)])
    decision = decide(r, observe(5, [value("backlog", 50)], pods(5)), st, NOW)
    assert decision.state.recommendations == (Recommendation(NOW - 100, 4), Recommendation(NOW, 7))


def test_invalid_metrics_record_no_recommendation() -> None:
    st = state([(NOW - 10, 5)])
    decision = decide(rule([EXT], 1, 10), observe(5, [failed("backlog")], pods(5)), st, NOW)
    assert decision.state.recommendations == st.recommendations


# --- fallback (KEDA semantics through the HPA) ----------------------------------------------------
# KEDA feeds the HPA a metric value that makes it compute the fallback count, so the count is a
# recommendation like any other: windows, behavior policies (or the legacy limits) and the clamp
# apply, and the HPA's own early branches (scaled to zero by hand, outside the bounds) come first.
# Every case: the one External metric fails for the 4th time in a row (previous failures 3),
# failureThreshold 3, so fallback is due; numbers worked by hand in each case's comment.


@dataclass(frozen=True)
class FallbackCase:
    """One evaluation with every metric failing: rule shape + fallback -> expected decision."""

    name: str
    current: int
    fallback: Fallback
    expected: int
    active: bool = True
    min_replicas: int = 1
    max_replicas: int = 10
    behavior: Behavior | None = None
    history: Sequence[tuple[float, int]] = ()
    up_events: Sequence[tuple[float, int]] = ()
    previous_failures: int = 3
    conditions: dict[str, tuple[bool, str]] = field(default_factory=dict)


def fb(replicas: int, how: str = "static") -> Fallback:
    return Fallback(failure_threshold=3, replicas=replicas, behavior=how)  # type: ignore[arg-type]


FALLBACK_CASES = [
    FallbackCase("below the threshold the failed metric holds the count", 5, fb(4), 5, active=False,
                 previous_failures=2),  # 3 failures, not > 3
    FallbackCase("static replaces the proposal and scales down when nothing holds it", 5, fb(4), 4),
    FallbackCase("currentReplicas keeps the current count", 7, fb(4, "currentReplicas"), 7),
    FallbackCase("currentReplicasIfHigher keeps a higher count", 7, fb(4, "currentReplicasIfHigher"), 7),
    FallbackCase("currentReplicasIfHigher raises a lower count", 2, fb(4, "currentReplicasIfHigher"), 4),
    FallbackCase("currentReplicasIfLower keeps a lower count", 2, fb(4, "currentReplicasIfLower"), 2),
    FallbackCase("currentReplicasIfLower lowers a higher count", 7, fb(4, "currentReplicasIfLower"), 4),
    # Legacy limit max(2 x 2, 4) = 4, not 20.
    FallbackCase("the legacy scale-up limit caps the fallback count", 2, fb(20), 4, max_replicas=30,
                 conditions={"ScalingLimited": (True, "ScaleUpLimit")}),
    # Legacy 300 s window: max(8 from 60 s ago, 4) = 8.
    FallbackCase("the legacy scale-down window holds a lower fallback count", 8, fb(4), 8,
                 history=[(NOW - 60, 8)], conditions={"AbleToScale": (True, "ScaleDownStabilized")}),
    # 301 s ago is outside the 300 s window: only the fallback 4 is left.
    FallbackCase("a recommendation older than the window no longer holds it", 8, fb(4), 4,
                 history=[(NOW - 301, 8)]),
    # scaleUp policy 2 pods per 60 s: 3 + 2 = 5, not 10.
    FallbackCase("a scaleUp Pods policy limits the fallback count", 3, fb(10), 5,
                 behavior=behavior(up=scale_up_rules(policies=[policy("Pods", 2, 60)])),
                 conditions={"ScalingLimited": (True, "ScaleUpLimit")}),
    # 2 pods added 30 s ago count against the 60 s period: (5 - 2) + 2 = 5, no change.
    FallbackCase("earlier scale-up events count against the scaleUp policy", 5, fb(10), 5,
                 behavior=behavior(up=scale_up_rules(policies=[policy("Pods", 2, 60)])),
                 up_events=[(NOW - 30, 2)], conditions={"ScalingLimited": (True, "ScaleUpLimit")}),
    # scaleDown 50 % per 60 s from 8: ceil(8 x 0.5) = 4, not 2.
    FallbackCase("a scaleDown Percent policy limits the fallback count", 8, fb(2), 4,
                 behavior=behavior(down=scale_down_rules(window=0, policies=[policy("Percent", 50, 60)])),
                 conditions={"ScalingLimited": (True, "ScaleDownLimit")}),
    # behavior window 120 s: max(6 from 60 s ago, 2) = 6.
    FallbackCase("a behavior scale-down window holds a lower fallback count", 6, fb(2), 6,
                 behavior=behavior(down=scale_down_rules(window=120)), history=[(NOW - 60, 6)],
                 conditions={"AbleToScale": (True, "ScaleDownStabilized")}),
    # Legacy limit max(2 x 10, 4) = 20 allows 40; maxReplicas 10 does not.
    FallbackCase("a fallback count above maxReplicas is clamped", 10, fb(40), 10,
                 conditions={"ScalingLimited": (True, "TooManyReplicas")}),
    FallbackCase("a fallback count below minReplicas is clamped", 7, fb(2), 5, min_replicas=5,
                 conditions={"ScalingLimited": (True, "TooFewReplicas")}),
    # As any HPA recommendation: never below 1, even with minReplicas 0.
    FallbackCase("a fallback count of 0 stops at 1 on a scale-to-zero rule", 3, fb(0), 1, min_replicas=0,
                 conditions={"ScalingLimited": (True, "TooFewReplicas")}),
    # The HPA's "scaling is disabled" case: an operator scaled it to 0 with minReplicas 1.
    FallbackCase("a target scaled to zero by hand is left alone", 0, fb(4), 0, active=False,
                 conditions={"ScalingActive": (False, "ScalingDisabled")}),
    # The HPA jumps to maxReplicas before it reads any metric; fallback is not consulted.
    FallbackCase("above maxReplicas the jump to max comes first", 12, fb(4), 10, active=False,
                 conditions={"ScalingLimited": (True, "TooManyReplicas")}),
    # minReplicas 0 at 0: the fallback wakes the target, capped by the legacy limit max(2 x 0, 4) = 4.
    FallbackCase("a scale-to-zero rule asleep at 0 wakes through the scale-up limit", 0, fb(6), 4,
                 min_replicas=0, conditions={"ScalingLimited": (True, "ScaleUpLimit")}),
    # currentReplicasIfLower at 0: min(0, 4) = 0, nothing to wake.
    FallbackCase("a scale-to-zero rule asleep at 0 stays there on a fallback count of 0", 0,
                 fb(4, "currentReplicasIfLower"), 0, min_replicas=0),
]  # fmt: skip


@pytest.mark.parametrize("case", FALLBACK_CASES, ids=[c.name for c in FALLBACK_CASES])
def test_fallback_table(case: FallbackCase) -> None:
    r = rule([EXT], case.min_replicas, case.max_replicas, case.behavior, fallback=case.fallback)
    prior = state(case.history, up=case.up_events, failures=case.previous_failures)

    decision = decide(r, observe(case.current, [failed("backlog")], pods(case.current)), prior, NOW)

    assert decision.desired_replicas == case.expected
    assert decision.action == ("scale" if case.expected != case.current else "none")
    assert decision.fallback_active is case.active
    assert decision.state.consecutive_failures == case.previous_failures + 1
    got: dict[str, tuple[bool, str]] = {c.type: (c.status, c.reason) for c in decision.conditions}
    for kind, expected in case.conditions.items():
        assert got[kind] == expected, kind
    if case.active:
        assert decision.reason.startswith("fallback: every metric failed in 4 consecutive evaluations")


def test_fallback_count_is_recorded_as_the_recommendation_even_when_held() -> None:
    """The held-back fallback count enters the history, so the window releases it later."""
    r = rule([EXT], 1, 10, fallback=fb(4))
    prior = state([(NOW - 60, 8)], failures=3)

    held = decide(r, observe(8, [failed("backlog")], pods(8)), prior, NOW)
    later = decide(r, observe(8, [failed("backlog")], pods(8)), held.state, NOW + 241)

    assert held.desired_replicas == 8
    assert held.state.recommendations[-1] == Recommendation(NOW, 4)
    assert held.reason.startswith(
        "fallback: every metric failed in 4 consecutive evaluations (failureThreshold 3), "
        f"static fallback to 4 replicas, but {reasons.MSG_SCALE_DOWN_STABILIZED}; "
    )
    # 241 s later the 8 from NOW - 60 is 301 s old: out of the 300 s window, only 4s remain.
    assert (later.desired_replicas, later.action) == (4, "scale")


def test_fallback_reset_by_one_success() -> None:
    r = rule([EXT], 1, 10, fallback=Fallback(failure_threshold=1, replicas=4))
    decision = decide(r, observe(5, [value("backlog", 50)], pods(5)), state(failures=9), NOW)
    assert decision.state.consecutive_failures == 0
    assert decision.fallback_active is False


def test_fallback_needs_every_metric_failed() -> None:
    r = rule([EXT, PODS15], 1, 10, fallback=Fallback(failure_threshold=0, replicas=9))
    decision = decide(r, observe(5, [failed("backlog"), qps([15] * 5)], pods(5)), state(failures=5), NOW)
    assert decision.fallback_active is False
    assert decision.state.consecutive_failures == 0


# --- scale to / from zero (KEDA activation) -------------------------------------------------------

ZERO = rule([metric("backlog", "External", 10, activation=5)], 0, 10, NO_STAB, cooldown=300)

ZERO_CASES = [
    # name, current, value, below_since, expected desired, expected below_since
    ("at zero and idle stays at zero", 0, 3, None, 0, NOW),
    ("at zero, exactly at the threshold is not active", 0, 5, None, 0, NOW),
    ("at zero, above threshold activates to one", 0, 6, None, 1, None),
    ("at zero, activation takes the HPA proposal when higher", 0, 45, None, 5, None),
    ("at zero, activation respects maxReplicas", 0, 1000, None, 10, None),
    ("running and idle inside cooldown keeps HPA minimum of one", 3, 2, NOW - 100, 1, NOW - 100),
    ("running and idle after cooldown scales to zero", 3, 2, NOW - 300, 0, NOW - 300),
    ("idle starts the cooldown clock", 3, 2, None, 1, NOW),
    ("activity resets the cooldown clock", 3, 10, NOW - 1000, 3, None),
]


@pytest.mark.parametrize(
    ("name", "current", "v", "below_since", "expected", "expected_since"),
    ZERO_CASES,
    ids=[c[0] for c in ZERO_CASES],
)
def test_scale_to_and_from_zero_table(
    name: str, current: int, v: float, below_since: float | None, expected: int, expected_since: float | None
) -> None:
    decision = decide(
        ZERO, observe(current, [value("backlog", v)], pods(current)), state(below_since=below_since), NOW
    )
    assert decision.desired_replicas == expected
    assert decision.state.below_activation_since == expected_since


def test_failed_metric_never_scales_to_zero() -> None:
    decision = decide(ZERO, observe(3, [failed("backlog")], pods(3)), state(below_since=NOW - 10_000), NOW)
    assert decision.desired_replicas == 3
    assert decision.state.below_activation_since is None


def test_pods_metric_activation_uses_per_pod_average() -> None:
    r = rule([metric("qps", "Pods", 10, activation=4)], 0, 10, NO_STAB)
    idle = decide(r, observe(2, [qps([3, 4])], pods(2)), state(below_since=NOW - 301), NOW)
    assert idle.desired_replicas == 0
    busy = decide(r, observe(2, [qps([3, 6])], pods(2)), state(below_since=NOW - 301), NOW)
    assert busy.desired_replicas == 1
    assert busy.state.below_activation_since is None


def test_pods_metric_activates_from_zero_without_pods() -> None:
    r = rule([metric("qps", "Pods", 10)], 0, 10, NO_STAB)
    decision = decide(r, observe(0, [per_pod("qps", {"gone": 3.0})], ()), EMPTY, NOW)
    assert decision.desired_replicas == 1
    assert decision.action == "scale"


# --- paused / dry-run ----------------------------------------------------------------------------

MODE_CASES = [
    ("paused scale up", {"paused": True}, 50, "paused", "paused: would scale 5 -> 7"),
    ("paused no change", {"paused": True}, 40, "paused", "paused: no change"),
    ("dry-run scale up", {"dry_run": True}, 50, "dryRun", "dry-run: would scale 5 -> 7"),
    ("dry-run no change", {"dry_run": True}, 40, "dryRun", "dry-run: no change"),
]


@pytest.mark.parametrize(("name", "flags", "v", "mode", "prefix"), MODE_CASES, ids=[c[0] for c in MODE_CASES])
def test_paused_and_dry_run_table(
    name: str, flags: dict[str, bool], v: float, mode: str, prefix: str
) -> None:
    r = rule([EXT], 1, 10, behavior(), paused=flags.get("paused", False), dry_run=flags.get("dry_run", False))
    decision = decide(r, observe(5, [value("backlog", v)], pods(5)), EMPTY, NOW)
    assert decision.action == "none"
    assert decision.extra["mode"] == mode
    assert decision.reason.startswith(prefix)
    assert decision.state.scale_up_events == ()
    assert decision.state.scale_down_events == ()
