"""Stabilization, rate limits and clamps: ports of horizontal_test.go behavior tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from ampscaler.engine.behavior import (
    NormalizationArg,
    calculate_scale_down_limit_with_behaviors,
    calculate_scale_up_limit_with_scaling_rules,
    convert_desired_replicas_with_behavior_rate,
    convert_desired_replicas_with_rules,
    get_replicas_change_per_period,
    stabilize_recommendation,
    stabilize_recommendation_with_behaviors,
    store_scale_event,
)
from ampscaler.engine.types import Recommendation, ScaleEvent
from ampscaler.model import ScalingPolicy, ScalingRules
from tests.unit.engine.builders import behavior, policy, scale_down_rules, scale_up_rules

NOW = 1_700_000_000.0


def generate_scaling_rules(
    pods: int, pods_period: int, percent: int, percent_period: int, window: int
) -> ScalingRules:
    """Upstream: generateScalingRules (Max select policy)."""
    pols: list[ScalingPolicy] = []
    if pods:
        pols.append(policy("Pods", pods, pods_period))
    if percent:
        pols.append(policy("Percent", percent, percent_period))
    return ScalingRules(window, "Max", tuple(pols))


def events_uniform(raw: Sequence[int], period: int) -> tuple[ScaleEvent, ...]:
    """Upstream: generateEventsUniformDistribution (each event centred in its segment)."""
    segment = period / len(raw)
    return tuple(
        ScaleEvent(NOW - int(period - segment * (i + 1) + segment / 2), change)
        for i, change in enumerate(raw)
    )


@dataclass(frozen=True)
class ScalingWithRulesCase:
    name: str
    current: int
    prenormalized: int
    min_replicas: int
    max_replicas: int
    expected: int
    condition: str
    up: ScalingRules | None = None
    down: ScalingRules | None = None
    up_events: tuple[ScaleEvent, ...] = ()
    down_events: tuple[ScaleEvent, ...] = ()


E159 = events_uniform([1, 5, 9], 120)
SCALING_WITH_RULES = [
    ScalingWithRulesCase("prenormalized desired replicas within range", 5, 7, 3, 8, 7, "DesiredWithinRange"),
    ScalingWithRulesCase("prenormalized desired replicas < minReplicas", 3, 1, 2, 8, 2, "TooFewReplicas"),
    ScalingWithRulesCase(
        "prenormalized desired replicas within range when minReplicas is 0",
        1,
        0,
        0,
        10,
        0,
        "DesiredWithinRange",
    ),
    ScalingWithRulesCase(
        "maxReplicas is the limit because maxReplicas < scaleUpLimit", 20, 1000, 1, 10, 10, "TooManyReplicas"
    ),
    ScalingWithRulesCase(
        "desired replica count is more than the maximum replica count",
        100,
        1000,
        100,
        150,
        150,
        "TooManyReplicas",
    ),
    ScalingWithRulesCase(
        "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies",
        3,
        1000,
        1,
        2000,
        4,
        "ScaleUpLimit",
        up=generate_scaling_rules(0, 0, 1, 60, 0),
    ),
    ScalingWithRulesCase(
        "scaleDownLimit is the limit because scaleDownLimit > minReplicas with user policies",
        1000,
        3,
        3,
        2000,
        980,
        "ScaleDownLimit",
        down=generate_scaling_rules(20, 60, 0, 0, 0),
    ),
    ScalingWithRulesCase("scaleUp with default behavior", 10, 50, 1, 1000, 20, "ScaleUpLimit"),
    ScalingWithRulesCase(
        "scaleUp with pods policy larger than percent policy",
        10,
        500,
        1,
        1000,
        110,
        "ScaleUpLimit",
        up=generate_scaling_rules(100, 60, 100, 60, 0),
    ),
    ScalingWithRulesCase(
        "scaleUp with percent policy larger than pods policy",
        10,
        500,
        1,
        1000,
        20,
        "ScaleUpLimit",
        up=generate_scaling_rules(2, 60, 100, 60, 0),
    ),
    ScalingWithRulesCase(
        "scaleUp with spec MaxReplicas limitation with large pod policy",
        10,
        50,
        1,
        1000,
        50,
        "DesiredWithinRange",
        up=generate_scaling_rules(100, 60, 0, 0, 0),
    ),
    ScalingWithRulesCase(
        "scaleUp with spec MaxReplicas limitation with large percent policy",
        10,
        50,
        1,
        1000,
        50,
        "DesiredWithinRange",
        up=generate_scaling_rules(10000, 60, 0, 0, 0),
    ),
    ScalingWithRulesCase(
        "scaleUp with pod policy limitation",
        10,
        50,
        1,
        1000,
        40,
        "ScaleUpLimit",
        up=generate_scaling_rules(30, 60, 0, 0, 0),
    ),
    ScalingWithRulesCase(
        "scaleUp with percent policy limitation",
        10,
        50,
        1,
        1000,
        30,
        "ScaleUpLimit",
        up=generate_scaling_rules(0, 0, 200, 60, 0),
    ),
    ScalingWithRulesCase(
        "scaleDown with percent policy larger than pod policy",
        100,
        2,
        1,
        1000,
        80,
        "ScaleDownLimit",
        down=generate_scaling_rules(20, 60, 1, 60, 300),
    ),
    ScalingWithRulesCase(
        "scaleDown with pod policy larger than percent policy",
        100,
        2,
        1,
        1000,
        98,
        "ScaleDownLimit",
        down=generate_scaling_rules(2, 60, 1, 60, 300),
    ),
    ScalingWithRulesCase(
        "scaleDown with spec MinReplicas=nil limitation with large pod policy",
        10,
        0,
        1,
        1000,
        1,
        "TooFewReplicas",
        down=generate_scaling_rules(100, 60, 0, 0, 300),
    ),
    ScalingWithRulesCase(
        "scaleDown with spec MinReplicas limitation with large percent policy",
        10,
        2,
        5,
        1000,
        5,
        "TooFewReplicas",
        down=generate_scaling_rules(0, 0, 100, 60, 300),
    ),
    ScalingWithRulesCase(
        "scaleDown with pod policy limitation",
        10,
        2,
        1,
        1000,
        5,
        "ScaleDownLimit",
        down=generate_scaling_rules(5, 60, 0, 0, 300),
    ),
    ScalingWithRulesCase(
        "scaleDown with percent policy limitation",
        10,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=generate_scaling_rules(0, 0, 50, 60, 300),
    ),
    ScalingWithRulesCase(
        "scaleUp with spec MaxReplicas limitation with large pod policy and events",
        100,
        500,
        1,
        200,
        200,
        "TooManyReplicas",
        up=generate_scaling_rules(300, 60, 0, 0, 0),
        up_events=E159,
    ),
    ScalingWithRulesCase(
        "scaleUp with spec MaxReplicas limitation with large percent policy and events",
        100,
        500,
        1,
        200,
        200,
        "TooManyReplicas",
        up=generate_scaling_rules(0, 0, 10000, 60, 0),
        up_events=E159,
    ),
    ScalingWithRulesCase(
        "scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent "
        "scale up events",
        100,
        500,
        1,
        1000,
        100,
        "ScaleUpLimit",
        up=generate_scaling_rules(5, 120, 0, 0, 0),
        up_events=E159,
    ),
    ScalingWithRulesCase(
        "scaleUp with pod policy and previous scale up events",
        100,
        500,
        1,
        1000,
        235,
        "ScaleUpLimit",
        up=generate_scaling_rules(150, 120, 0, 0, 0),
        up_events=E159,
    ),
    ScalingWithRulesCase(
        "scaleUp with percent policy and previous scale up events",
        100,
        500,
        1,
        1000,
        255,
        "ScaleUpLimit",
        up=generate_scaling_rules(0, 0, 200, 120, 0),
        up_events=E159,
    ),
    ScalingWithRulesCase(
        "scaleUp with percent policy and previous scale up and down events",
        6,
        24,
        1,
        1000,
        16,
        "ScaleUpLimit",
        up=generate_scaling_rules(0, 0, 300, 300, 0),
        up_events=events_uniform([4], 120),
        down_events=events_uniform([2], 120),
    ),
    ScalingWithRulesCase(
        "scaleDown with default policy and previous events",
        10,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down_events=E159,
    ),
    ScalingWithRulesCase(
        "scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events",
        100,
        0,
        1,
        1000,
        1,
        "TooFewReplicas",
        down=generate_scaling_rules(115, 120, 0, 0, 300),
        down_events=E159,
    ),
    ScalingWithRulesCase(
        "scaleDown with spec MinReplicas limitation with large pod policy and previous events",
        100,
        0,
        5,
        1000,
        5,
        "TooFewReplicas",
        down=generate_scaling_rules(130, 120, 0, 0, 300),
        down_events=E159,
    ),
    ScalingWithRulesCase(
        "scaleDown with spec MinReplicas limitation with large percent policy and previous events",
        100,
        2,
        5,
        1000,
        5,
        "TooFewReplicas",
        down=generate_scaling_rules(0, 0, 100, 120, 300),
        down_events=E159,
    ),
    ScalingWithRulesCase(
        "scaleDown with pod policy limitation and previous events",
        100,
        2,
        1,
        1000,
        100,
        "ScaleDownLimit",
        down=generate_scaling_rules(5, 120, 0, 0, 300),
        down_events=E159,
    ),
    ScalingWithRulesCase(
        "scaleDown with percent policy limitation and previous events",
        100,
        0,
        1,
        1000,
        56,
        "ScaleDownLimit",
        down=generate_scaling_rules(0, 0, 50, 120, 300),
        down_events=events_uniform([2, 4, 6], 120),
    ),
    ScalingWithRulesCase(
        "scaleDown with percent policy and previous scale up and down events",
        10,
        1,
        1,
        1000,
        6,
        "ScaleDownLimit",
        down=generate_scaling_rules(0, 0, 50, 180, 0),
        up_events=events_uniform([2], 120),
        down_events=events_uniform([4], 120),
    ),
    ScalingWithRulesCase(
        "scaleDown with previous events preventing further scale down",
        100,
        0,
        1,
        1000,
        100,
        "ScaleDownLimit",
        down=generate_scaling_rules(0, 0, 10, 120, 300),
        down_events=events_uniform([10, 10, 10], 120),
    ),
    ScalingWithRulesCase(
        "scaleDown with with previous events still allowing more scale down",
        10,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=generate_scaling_rules(0, 0, 1000, 120, 300),
        down_events=events_uniform([10, 10, 10], 120),
    ),
    ScalingWithRulesCase(
        "check 'outdated' flag for events for one behavior for up",
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=generate_scaling_rules(1000, 60, 0, 0, 0),
        up_events=events_uniform([8, 12, 9, 11], 120),
    ),
    ScalingWithRulesCase(
        "check that events were not marked 'outdated' for two different policies in the behavior for up",
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=generate_scaling_rules(1000, 120, 100, 60, 0),
        up_events=events_uniform([8, 12, 9, 11], 120),
    ),
    ScalingWithRulesCase(
        "check 'outdated' flag for events for one behavior for down",
        100,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=generate_scaling_rules(1000, 60, 0, 0, 300),
        down_events=events_uniform([8, 12, 9, 11], 120),
    ),
    ScalingWithRulesCase(
        "check that events were marked 'outdated' for two different policies in the behavior for down",
        100,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=generate_scaling_rules(1000, 30, 100, 60, 300),
        down_events=events_uniform([8, 12, 9, 11], 120),
    ),
    # ampscaler additions in the same shape
    ScalingWithRulesCase(
        "scaleUp disabled keeps current",
        5,
        10,
        1,
        100,
        5,
        "ScaleUpLimit",
        up=ScalingRules(0, "Disabled", (policy("Pods", 4, 15),)),
    ),
    ScalingWithRulesCase(
        "scaleDown disabled keeps current",
        5,
        1,
        1,
        100,
        5,
        "ScaleDownLimit",
        down=ScalingRules(300, "Disabled", (policy("Percent", 100, 15),)),
    ),
    ScalingWithRulesCase(
        "scaleUp Min select picks the smaller policy",
        10,
        100,
        1,
        1000,
        12,
        "ScaleUpLimit",
        up=ScalingRules(0, "Min", (policy("Pods", 2, 60), policy("Percent", 100, 60))),
    ),
    ScalingWithRulesCase(
        "scaleDown Min select picks the smaller change",
        10,
        1,
        1,
        1000,
        8,
        "ScaleDownLimit",
        down=ScalingRules(0, "Min", (policy("Pods", 2, 60), policy("Percent", 50, 60))),
    ),
    ScalingWithRulesCase(
        "scaleUp percent rounds up (10% of 3 adds one pod)",
        3,
        10,
        1,
        100,
        4,
        "ScaleUpLimit",
        up=generate_scaling_rules(0, 0, 10, 60, 0),
    ),
    ScalingWithRulesCase(
        "scaleDown percent floors the limit (9 * 0.9 = 8.1 allows 8)",
        9,
        1,
        1,
        100,
        8,
        "ScaleDownLimit",
        down=generate_scaling_rules(0, 0, 10, 60, 0),
    ),
    ScalingWithRulesCase(
        "scaleDown percent 15% of 20 leaves 17",
        20,
        1,
        1,
        100,
        17,
        "ScaleDownLimit",
        down=generate_scaling_rules(0, 0, 15, 60, 0),
    ),
    ScalingWithRulesCase(
        "event exactly one period old no longer counts",
        10,
        100,
        1,
        1000,
        14,
        "ScaleUpLimit",
        up=generate_scaling_rules(4, 60, 0, 0, 0),
        up_events=(ScaleEvent(NOW - 60, 5),),
    ),
    ScalingWithRulesCase(
        "event just inside the period counts",
        10,
        100,
        1,
        1000,
        10,
        "ScaleUpLimit",
        up=generate_scaling_rules(4, 60, 0, 0, 0),
        up_events=(ScaleEvent(NOW - 59, 5),),
    ),
]


@pytest.mark.parametrize("tc", SCALING_WITH_RULES, ids=[c.name for c in SCALING_WITH_RULES])
def test_scaling_with_rules_table(tc: ScalingWithRulesCase) -> None:
    """Upstream: TestScalingWithRules -> convertDesiredReplicasWithBehaviorRate."""
    arg = NormalizationArg(
        scale_up=tc.up or scale_up_rules(),
        scale_down=tc.down or scale_down_rules(),
        scale_down_window_seconds=300,
        min_replicas=tc.min_replicas,
        max_replicas=tc.max_replicas,
        current_replicas=tc.current,
        desired_replicas=tc.prenormalized,
    )
    replicas, condition, _ = convert_desired_replicas_with_behavior_rate(
        arg, tc.up_events, tc.down_events, NOW
    )
    assert replicas == tc.expected
    assert condition == tc.condition


def test_calculate_scale_up_limit_with_scaling_rules_min_policy() -> None:
    """Upstream: TestCalculateScaleUpLimitWithScalingRules."""
    rules = ScalingRules(300, "Min", (policy("Pods", 2, 60), policy("Percent", 50, 60)))
    assert calculate_scale_up_limit_with_scaling_rules(1, (), (), rules, NOW) == 2


def test_calculate_scale_down_limit_with_behaviors_min_policy() -> None:
    """Upstream: TestCalculateScaleDownLimitWithBehaviors."""
    rules = ScalingRules(300, "Min", (policy("Pods", 2, 60), policy("Percent", 50, 60)))
    assert calculate_scale_down_limit_with_behaviors(5, (), (), rules, NOW) == 3


CONVERT_WITH_RULES = [
    ("prenormalized desired replicas within range", 5, 7, 3, 8, 7, "DesiredWithinRange"),
    ("prenormalized desired replicas < minReplicas", 3, 1, 2, 8, 2, "TooFewReplicas"),
    ("prenormalized desired zeroed replicas within range", 1, 0, 0, 10, 0, "DesiredWithinRange"),
    ("maxReplicas is the limit because maxReplicas < scaleUpLimit", 20, 1000, 1, 10, 10, "TooManyReplicas"),
    ("scaleUpLimit is the limit because scaleUpLimit < maxReplicas", 3, 1000, 1, 2000, 6, "ScaleUpLimit"),
    ("scaleUpLimit minimum of 4 applies to one replica", 1, 1000, 1, 2000, 4, "ScaleUpLimit"),
]


@pytest.mark.parametrize(
    ("name", "current", "desired", "lo", "hi", "expected", "condition"),
    CONVERT_WITH_RULES,
    ids=[c[0] for c in CONVERT_WITH_RULES],
)
def test_convert_desired_replicas_with_rules_table(
    name: str, current: int, desired: int, lo: int, hi: int, expected: int, condition: str
) -> None:
    """Upstream: TestConvertDesiredReplicasWithRules (legacy scale-up limit factor 2, minimum 4)."""
    replicas, reason, _ = convert_desired_replicas_with_rules(current, desired, lo, hi, 2.0, 4.0)
    assert (replicas, reason) == (expected, condition)


LEGACY_STABILIZATION = [
    ("empty log", [], 5, 5, [5]),
    ("stabilize", [(4, -120), (5, -60)], 3, 5, [4, 5, 3]),
    ("no stabilize", [(1, -120), (2, -60)], 3, 3, [1, 2, 3]),
    ("no stabilize - old recommendations", [(10, -600), (9, -540)], 3, 3, [3]),
    ("stabilize - old recommendations", [(10, -600), (4, -60), (5, -120), (9, -540)], 3, 5, [4, 5, 3]),
    ("sample exactly at the window edge still counts", [(7, -300)], 3, 7, [7, 3]),
]


@pytest.mark.parametrize(
    ("name", "recs", "prenormalized", "expected", "kept"),
    LEGACY_STABILIZATION,
    ids=[c[0] for c in LEGACY_STABILIZATION],
)
def test_normalize_desired_replicas_stabilization_table(
    name: str, recs: list[tuple[int, int]], prenormalized: int, expected: int, kept: list[int]
) -> None:
    """Upstream: TestNormalizeDesiredReplicas (5 minute window). Out-of-window samples are pruned
    instead of having their slot reused, so only the in-window history is compared."""
    history = tuple(Recommendation(NOW + offset, replicas) for replicas, offset in recs)
    stabilized, new_history = stabilize_recommendation(history, prenormalized, NOW, 300)
    assert stabilized == expected
    assert [r.replicas for r in new_history] == kept
    assert new_history[-1] == Recommendation(NOW, prenormalized)


BEHAVIOR_STABILIZATION = [
    # name, recs (replicas, offset s), current, prenormalized, expected, kept, up window, down window
    ("empty recommendations for scaling down", [], 100, 5, 5, [5], 0, 0),
    ("simple scale down stabilization", [(4, -120), (5, -60)], 100, 3, 5, [4, 5, 3], 0, 180),
    ("simple scale up stabilization", [(4, -120), (5, -60)], 1, 7, 4, [4, 5, 7], 300, 0),
    ("no scale down stabilization", [(1, -120), (2, -60)], 100, 3, 3, [1, 2, 3], 300, 0),
    ("no scale up stabilization", [(4, -120), (5, -60)], 1, 3, 3, [4, 5, 3], 0, 300),
    (
        "no scale down stabilization, reuse recommendation element",
        [(10, -600), (9, -540)],
        100,
        3,
        3,
        [3],
        0,
        0,
    ),
    (
        "no scale up stabilization, reuse recommendation element",
        [(10, -600), (9, -540)],
        1,
        100,
        100,
        [100],
        0,
        0,
    ),
    (
        "scale down stabilization, reuse one of obsolete recommendation element",
        [(10, -600), (4, -60), (5, -120), (9, -540)],
        100,
        3,
        5,
        [4, 5, 3],
        0,
        180,
    ),
    (
        "scale up stabilization, reuse one of obsolete recommendation element",
        [(10, -6000), (6, -60), (5, -120), (9, -180)],
        1,
        100,
        5,
        [6, 5, 9, 100],
        300,
        0,
    ),
    (
        "scale up and down stabilization, do not scale up when prenormalized rec goes down",
        [(2, -6000), (3, -180)],
        2,
        1,
        2,
        [3, 1],
        300,
        300,
    ),
    (
        "scale up and down stabilization, do not scale down when prenormalized rec goes up",
        [(2, -6000), (1, -180)],
        2,
        3,
        2,
        [1, 3],
        300,
        300,
    ),
    ("sample exactly at the window edge does not count", [(9, -300)], 10, 3, 3, [9, 3], 0, 300),
]


@pytest.mark.parametrize(
    ("name", "recs", "current", "prenormalized", "expected", "kept", "up_window", "down_window"),
    BEHAVIOR_STABILIZATION,
    ids=[c[0] for c in BEHAVIOR_STABILIZATION],
)
def test_normalize_desired_replicas_with_behavior_table(
    name: str,
    recs: list[tuple[int, int]],
    current: int,
    prenormalized: int,
    expected: int,
    kept: list[int],
    up_window: int,
    down_window: int,
) -> None:
    """Upstream: TestNormalizeDesiredReplicasWithBehavior -> stabilizeRecommendationWithBehaviors."""
    arg = NormalizationArg(
        scale_up=ScalingRules(up_window, "Max", ()),
        scale_down=ScalingRules(down_window, "Max", ()),
        scale_down_window_seconds=down_window,
        min_replicas=1,
        max_replicas=1000,
        current_replicas=current,
        desired_replicas=prenormalized,
    )
    history = tuple(Recommendation(NOW + offset, replicas) for replicas, offset in recs)
    stabilized, _, _, new_history = stabilize_recommendation_with_behaviors(arg, history, NOW)
    assert stabilized == expected
    assert [r.replicas for r in new_history] == kept


STORE_EVENTS = [
    # name, change, prev events (change, age s), rules (None: no behavior), expected change in last 60s, kept
    ("empty entries with default behavior", 5, [], None, 0, []),
    ("empty entries with two-policy-behavior", 5, [], generate_scaling_rules(10, 60, 100, 60, 0), 0, [5]),
    ("one outdated entry to be kept untouched without behavior", 5, [(7, 61)], None, 0, [7]),
    (
        "one outdated entry to be replaced with behavior",
        5,
        [(7, 61)],
        generate_scaling_rules(10, 60, 100, 60, 0),
        0,
        [5],
    ),
    (
        "one actual entry to be not touched with behavior",
        5,
        [(7, 58)],
        generate_scaling_rules(10, 60, 100, 60, 0),
        7,
        [7, 5],
    ),
    (
        "two entries, one of them to be replaced",
        5,
        [(7, 61), (6, 59)],
        generate_scaling_rules(10, 60, 0, 0, 0),
        6,
        [6, 5],
    ),
    (
        "replace one entry, use policies with different periods",
        5,
        [(8, 29), (6, 59), (7, 61), (9, 61)],
        generate_scaling_rules(10, 60, 100, 30, 0),
        14,
        [8, 6, 5],
    ),
    (
        "two entries, both actual",
        5,
        [(7, 58), (6, 59)],
        generate_scaling_rules(10, 120, 100, 30, 0),
        13,
        [7, 6, 5],
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "prev", "rules", "expected_change", "kept"),
    STORE_EVENTS,
    ids=[c[0] for c in STORE_EVENTS],
)
def test_store_scale_events_table(
    name: str,
    change: int,
    prev: list[tuple[int, int]],
    rules: ScalingRules | None,
    expected_change: int,
    kept: list[int],
) -> None:
    """Upstream: TestStoreScaleEvents, for both directions. Outdated events are dropped rather than
    marked, so ``kept`` lists the changes that remain."""
    events = tuple(ScaleEvent(NOW - age, c) for c, age in prev)
    assert get_replicas_change_per_period(60, events, NOW) == expected_change
    # Without behavior nothing is stored and the old events stay as they were.
    expected_kept = kept if rules is not None else [c for c, _ in prev]
    beh_up = behavior(up=rules) if rules is not None else None
    up, down = store_scale_event(beh_up, events, (), 10, 10 + change, NOW)
    assert [e.change for e in up] == expected_kept
    assert down == ()
    beh_down = behavior(down=rules) if rules is not None else None
    up, down = store_scale_event(beh_down, (), events, 10, 10 - change, NOW)
    assert [e.change for e in down] == expected_kept
    assert up == ()
