"""Invariants of the replay with the real engine, over random demand histories (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ampscaler.backtest.simulate import BacktestOptions, PodsHistory, TimeGrid, simulate
from tests.unit.backtest.helpers import pods_rule

demand = st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=2000)), min_size=1, max_size=40)


def _history(values: list[float | None]) -> PodsHistory:
    # The "real" Deployment ran 4 pods throughout; None is a step without data.
    return PodsHistory(
        [None if v is None else v / 4 for v in values], [0 if v is None else 4 for v in values]
    )


@settings(max_examples=40, deadline=None)
@given(values=demand, delay=st.sampled_from([0.0, 15.0, 30.0, 90.0]))
def test_replay_stays_within_min_and_max_and_is_deterministic(values, delay):
    rule = pods_rule(target=10)
    grid = TimeGrid(0, 15 * (len(values) - 1), 15)
    options = BacktestOptions(initial_replicas=4, startup_delay_seconds=delay)
    first = simulate(rule, grid, {"rps": _history(values)}, options)
    again = simulate(rule, grid, {"rps": _history(values)}, options)
    assert [r.desired_replicas for r in first.rows] == [r.desired_replicas for r in again.rows]
    for r in first.rows:
        assert rule.min_replicas <= r.desired_replicas <= rule.max_replicas
        assert 0 <= r.ready_pods <= r.current_replicas
    # The count in force is what the next step starts from.
    for prev, nxt in zip(first.rows, first.rows[1:], strict=False):
        assert nxt.current_replicas == prev.desired_replicas


@settings(max_examples=40, deadline=None)
@given(values=demand)
def test_replay_never_scales_down_on_a_step_without_data(values):
    grid = TimeGrid(0, 15 * (len(values) - 1), 15)
    result = simulate(pods_rule(), grid, {"rps": _history(values)}, BacktestOptions(initial_replicas=4))
    for r, v in zip(result.rows, values, strict=True):
        if v is None:
            assert r.desired_replicas >= r.current_replicas
