"""Hypothesis properties of decide(): bounds, no scale-down on missing data, determinism, purity."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from ampscaler.engine import decide
from ampscaler.engine.types import (
    EngineState,
    MetricObservation,
    Observation,
    PodInfo,
    Recommendation,
    ScaleEvent,
)
from ampscaler.model import Fallback, Rule
from tests.unit.engine.builders import behavior, metric, observe, rule, scale_down_rules, scale_up_rules

NOW = 1_700_000_000.0

values = st.floats(min_value=0, max_value=10_000, allow_nan=False, allow_infinity=False)
targets = st.floats(min_value=0.01, max_value=1_000, allow_nan=False, allow_infinity=False)


@st.composite
def rules(draw: st.DrawFn, with_fallback: bool = True) -> Rule:
    lo = draw(st.integers(0, 10))
    hi = draw(st.integers(max(lo, 1), 50))
    specs = [
        metric("rps", "Pods", draw(targets), activation=draw(st.floats(0, 50))),
        metric("backlog", "External", draw(targets), draw(st.sampled_from(["Value", "AverageValue"]))),
        metric("queue", "Object", draw(targets), draw(st.sampled_from(["Value", "AverageValue"]))),
    ]
    chosen = draw(st.lists(st.sampled_from(specs), min_size=1, max_size=3, unique_by=lambda m: m.name))
    beh = draw(
        st.one_of(
            st.none(),
            st.builds(
                behavior,
                up=st.builds(
                    scale_up_rules,
                    window=st.integers(0, 600),
                    select=st.sampled_from(["Max", "Min", "Disabled"]),
                ),
                down=st.builds(
                    scale_down_rules,
                    window=st.one_of(st.none(), st.integers(0, 600)),
                    select=st.sampled_from(["Max", "Min", "Disabled"]),
                ),
            ),
        )
    )
    fb = None
    if with_fallback and draw(st.booleans()):
        fb = Fallback(draw(st.integers(0, 5)), draw(st.integers(1, 60)))
    return rule(
        chosen,
        lo,
        hi,
        beh,
        draw(st.one_of(st.none(), st.floats(0, 0.5))),
        fb,
        paused=draw(st.booleans()),
        dry_run=draw(st.booleans()),
        cooldown=draw(st.integers(0, 600)),
    )


@st.composite
def observations(draw: st.DrawFn, r: Rule) -> Observation:
    current = draw(st.integers(0, 60))
    pod_list = [
        PodInfo(
            f"p{i}",
            draw(st.sampled_from(["Running", "Running", "Pending", "Failed"])),
            draw(st.booleans()),
            draw(st.booleans()),
        )
        for i in range(current)
    ]
    samples = []
    for spec in r.metrics:
        if draw(st.integers(0, 9)) == 0:
            samples.append(MetricObservation(spec.name, error="boom"))
        elif spec.type == "Pods":
            names = [p.name for p in pod_list if draw(st.booleans())]
            samples.append(MetricObservation(spec.name, pod_values={n: draw(values) for n in names}))
        else:
            samples.append(MetricObservation(spec.name, value=draw(values)))
    status = draw(st.integers(max(0, current - 2), current + 2))
    return observe(current, samples, pod_list, status)


@st.composite
def states(draw: st.DrawFn) -> EngineState | None:
    if draw(st.booleans()):
        return None
    return EngineState(
        recommendations=tuple(
            Recommendation(NOW - draw(st.integers(0, 900)), draw(st.integers(0, 60)))
            for _ in range(draw(st.integers(0, 5)))
        ),
        scale_up_events=tuple(
            ScaleEvent(NOW - draw(st.integers(0, 120)), draw(st.integers(1, 10)))
            for _ in range(draw(st.integers(0, 3)))
        ),
        scale_down_events=tuple(
            ScaleEvent(NOW - draw(st.integers(0, 120)), draw(st.integers(1, 10)))
            for _ in range(draw(st.integers(0, 3)))
        ),
        consecutive_failures=draw(st.integers(0, 10)),
        below_activation_since=draw(st.one_of(st.none(), st.floats(NOW - 1000, NOW))),
    )


@st.composite
def scenarios(draw: st.DrawFn, with_fallback: bool = True) -> tuple[Rule, Observation, EngineState | None]:
    r = draw(rules(with_fallback))
    return r, draw(observations(r)), draw(states())


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_decide_result_within_bounds_or_unchanged(
    scenario: tuple[Rule, Observation, EngineState | None],
) -> None:
    r, obs, prior = scenario
    decision = decide(r, obs, prior, NOW)
    current = obs.scale.spec_replicas
    if decision.desired_replicas != current:
        # Any change lands inside [min, max], or at 0 only under the scale-to-zero rules.
        assert (r.min_replicas <= decision.desired_replicas <= r.max_replicas) or (
            decision.desired_replicas == 0 and r.min_replicas == 0
        )
    else:
        # No change is only allowed outside the bounds when the target sits at zero.
        assert r.min_replicas <= current <= r.max_replicas or current == 0
    assert decision.action == (
        "scale" if decision.desired_replicas != current and not (r.paused or r.dry_run) else "none"
    )


@settings(max_examples=200, deadline=None)
@given(scenarios(with_fallback=False), st.data())
def test_failed_metric_never_lowers_the_count(
    scenario: tuple[Rule, Observation, EngineState | None], data: st.DataObject
) -> None:
    """Failing one metric never gives fewer replicas than the all-valid baseline."""
    r, obs, prior = scenario
    pod_names = [p.name for p in obs.pods or ()]

    def valid(sample: MetricObservation) -> MetricObservation:
        if sample.error is None:
            return sample
        if r.metric(sample.name).type == "Pods":
            return MetricObservation(sample.name, pod_values=dict.fromkeys(pod_names, 1.0))
        return MetricObservation(sample.name, value=1.0)

    baseline_obs = Observation(obs.scale, tuple(valid(s) for s in obs.metrics), obs.pods)
    victim = data.draw(st.sampled_from([m.name for m in r.metrics]))
    failed_obs = Observation(
        obs.scale,
        tuple(
            MetricObservation(s.name, error="down") if s.name == victim else s for s in baseline_obs.metrics
        ),
        obs.pods,
    )
    baseline = decide(r, baseline_obs, prior, NOW)
    with_failure = decide(r, failed_obs, prior, NOW)
    current = obs.scale.spec_replicas
    assert with_failure.desired_replicas >= min(current, baseline.desired_replicas)
    if with_failure.desired_replicas < current:
        # Only the out-of-range jump lowers the count with a metric down, and it ignores metrics.
        assert with_failure.desired_replicas == baseline.desired_replicas


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_decide_is_deterministic_and_pure(scenario: tuple[Rule, Observation, EngineState | None]) -> None:
    r, obs, prior = scenario
    snapshot = copy.deepcopy((r, obs, prior))
    first = decide(r, obs, prior, NOW)
    second = decide(r, obs, prior, NOW)
    assert first == second
    assert (r, obs, prior) == snapshot
