"""The replay's mechanics (fake engine) and its results with the real engine (hand-worked numbers)."""

from __future__ import annotations

import pytest

from ampscaler.backtest.simulate import (
    BacktestOptions,
    PodsHistory,
    TimeGrid,
    ValueHistory,
    simulate,
)
from tests.unit.backtest.helpers import FakeEngine, external_rule, pods_rule

STEP = 15.0


def grid(n: int, start: float = 1_700_000_000.0) -> TimeGrid:
    return TimeGrid(start, start + (n - 1) * STEP, STEP)


def constant_pods(n: int, per_pod: float, pods: int) -> PodsHistory:
    return PodsHistory([per_pod] * n, [pods] * n)


# -- the grid ---------------------------------------------------------------------------------


def test_time_grid_half_open_24h_at_15s_has_5760_steps():
    g = TimeGrid.half_open(0, 86_400, 15)
    assert len(g) == 5760
    assert g.times()[-1] == 86_400 - 15


def test_time_grid_inclusive_counts_both_ends_like_query_range():
    assert len(TimeGrid(0, 60, 15)) == 5
    assert TimeGrid(0, 60, 15).index(45.0) == 3
    assert TimeGrid(0, 60, 15).index(50.0) is None


def test_time_grid_rejects_nonpositive_step():
    with pytest.raises(ValueError, match="step"):
        TimeGrid(0, 60, 0)


# -- mechanics with a recording fake engine ---------------------------------------------------


def test_simulate_pods_demand_is_spread_over_simulated_ready_pods():
    # Observed: 4 pods at 25 each = 100 demand. Simulated: 2 pods -> 50 each.
    engine = FakeEngine([])
    simulate(
        pods_rule(),
        grid(2),
        {"rps": constant_pods(2, 25.0, 4)},
        BacktestOptions(initial_replicas=2),
        decide=engine,
    )
    _, obs = engine.calls[0]
    assert obs.scale.spec_replicas == 2 and obs.scale.status_replicas == 2
    assert obs.metrics[0].pod_values is not None
    assert sorted(obs.metrics[0].pod_values.values()) == [50.0, 50.0]
    assert obs.pods is not None and all(p.phase == "Running" and p.ready for p in obs.pods)


def test_simulate_scale_up_pods_are_pending_until_the_startup_delay_passed():
    # Demand 100; scale 2 -> 4 at t0; start-up delay 30 s with 15 s steps.
    engine = FakeEngine([4])
    result = simulate(
        pods_rule(),
        grid(4),
        {"rps": constant_pods(4, 50.0, 2)},
        BacktestOptions(initial_replicas=2, startup_delay_seconds=30),
        decide=engine,
    )
    # t0 + 15 s: 4 pods, the 2 new ones Pending without metrics; the 2 old ones carry everything.
    _, obs = engine.calls[1]
    assert obs.pods is not None
    assert [p.phase for p in obs.pods] == ["Running", "Running", "Pending", "Pending"]
    assert [p.ready for p in obs.pods] == [True, True, False, False]
    assert obs.metrics[0].pod_values is not None
    assert sorted(obs.metrics[0].pod_values.values()) == [50.0, 50.0]
    # t0 + 30 s: all 4 ready, 25 each.
    _, obs = engine.calls[2]
    assert obs.metrics[0].pod_values is not None
    assert sorted(obs.metrics[0].pod_values.values()) == [25.0] * 4
    assert [r.ready_pods for r in result.rows] == [2, 2, 4, 4]
    assert [r.current_replicas for r in result.rows] == [2, 4, 4, 4]


def test_simulate_zero_startup_delay_pods_take_load_at_the_next_step():
    engine = FakeEngine([4])
    result = simulate(
        pods_rule(),
        grid(2),
        {"rps": constant_pods(2, 50.0, 2)},
        BacktestOptions(initial_replicas=2, startup_delay_seconds=0),
        decide=engine,
    )
    assert [r.ready_pods for r in result.rows] == [2, 4]


def test_simulate_scale_down_removes_pods_at_once_newest_first():
    engine = FakeEngine([None, 1])
    simulate(
        pods_rule(),
        grid(3),
        {"rps": constant_pods(3, 30.0, 3)},
        BacktestOptions(initial_replicas=3),
        decide=engine,
    )
    _, obs = engine.calls[2]
    assert obs.pods is not None and [p.name for p in obs.pods] == ["sim-0"]
    assert obs.metrics[0].pod_values == {"sim-0": 90.0}


def test_simulate_scale_down_drops_not_yet_ready_pods_first():
    # 2 -> 5 at t0 (3 pending until t0+60), 5 -> 3 at t0+15: the survivors are the 2 ready + 1 pending.
    engine = FakeEngine([5, 3])
    result = simulate(
        pods_rule(),
        grid(3),
        {"rps": constant_pods(3, 10.0, 2)},
        BacktestOptions(initial_replicas=2, startup_delay_seconds=60),
        decide=engine,
    )
    assert result.rows[2].current_replicas == 3
    assert result.rows[2].ready_pods == 2


def test_simulate_missing_sample_becomes_a_metric_error_for_that_step():
    engine = FakeEngine([])
    history = PodsHistory([10.0, None, 10.0], [3, 0, 3])
    result = simulate(pods_rule(), grid(3), {"rps": history}, decide=engine)
    assert engine.calls[1][1].metrics[0].error is not None
    assert engine.calls[0][1].metrics[0].error is None
    assert result.rows[1].metrics[0].error is not None
    assert result.rows[1].observed_replicas is None
    assert result.summary.metric_error_ticks == 1


def test_simulate_initial_replicas_default_is_first_observed_pod_count():
    engine = FakeEngine([])
    history = PodsHistory([None, 10.0], [0, 7])
    result = simulate(pods_rule(), grid(2), {"rps": history}, decide=engine)
    assert result.rows[0].current_replicas == 7


def test_simulate_initial_replicas_without_pods_metric_is_min_replicas():
    engine = FakeEngine([])
    rule = external_rule(minReplicas=3)
    result = simulate(rule, grid(2), {"backlog": ValueHistory([5.0, 5.0])}, decide=engine)
    assert result.rows[0].current_replicas == 3
    assert result.observed is None


def test_simulate_external_values_are_replayed_as_observed():
    engine = FakeEngine([9])
    simulate(external_rule(), grid(3), {"backlog": ValueHistory([30.0, 31.0, 32.0])}, decide=engine)
    assert [obs.metrics[0].value for _, obs in engine.calls] == [30.0, 31.0, 32.0]


def test_simulate_history_that_does_not_match_the_rule_is_refused():
    with pytest.raises(ValueError, match="no history"):
        simulate(pods_rule(), grid(2), {}, decide=FakeEngine([]))
    with pytest.raises(ValueError, match="PodsHistory"):
        simulate(pods_rule(), grid(2), {"rps": ValueHistory([1.0, 1.0])}, decide=FakeEngine([]))
    with pytest.raises(ValueError, match="steps"):
        simulate(pods_rule(), grid(3), {"rps": constant_pods(2, 1.0, 1)}, decide=FakeEngine([]))


def test_simulate_reports_progress_up_to_the_total():
    seen: list[tuple[int, int]] = []
    simulate(
        pods_rule(),
        grid(600),
        {"rps": constant_pods(600, 10.0, 2)},
        decide=FakeEngine([]),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (600, 600)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# -- the real engine, hand-worked -------------------------------------------------------------


def test_backtest_constant_demand_100_target_10_converges_to_10_replicas():
    # Observed 5 pods x 20 rps = 100 rps. t0: ratio 20/10 = 2 -> ceil(2 x 5) = 10 (legacy limit
    # max(2 x 5, 4) = 10 allows it). Then the 5 new pods are unready for 30 s; filling them with
    # 0 gives ratio 100 / (10 x 10) = 1.0, inside the tolerance -> hold. From then on 10 x 10 rps.
    n = 40
    result = simulate(pods_rule(), grid(n), {"rps": constant_pods(n, 20.0, 5)})
    assert [r.desired_replicas for r in result.rows] == [10] * n
    assert result.rows[0].metrics[0].value == pytest.approx(20.0)
    assert result.rows[-1].metrics[0].value == pytest.approx(10.0)
    s = result.summary
    assert s.scale_events == 1 and s.scale_ups == 1 and s.direction_changes == 0
    assert s.peak_replicas == 10
    assert s.replica_hours == pytest.approx(10 * n * STEP / 3600)
    # Only t0 (ratio 2) and t0+15 (20 per ready pod) are above 1.1 x target.
    assert s.above_target_seconds == 2 * STEP
    assert result.observed is not None
    assert result.observed.replica_hours == pytest.approx(5 * n * STEP / 3600)
    assert result.observed.above_target_percent == 100.0


def test_backtest_step_up_then_down_with_startup_delay_and_downscale_stabilization():
    # 10 pods x 10 rps, then demand doubles (200 rps) at step 10 and falls to 50 rps at step 30.
    up, down, n = 10, 30, 60
    demand = [100.0] * up + [200.0] * (down - up) + [50.0] * (n - down)
    history = PodsHistory([d / 10 for d in demand], [10] * n)
    result = simulate(pods_rule(), grid(n), {"rps": history}, BacktestOptions(startup_delay_seconds=30))
    desired = [r.desired_replicas for r in result.rows]
    ready = [r.ready_pods for r in result.rows]
    # Steady at 10 before the step.
    assert desired[:up] == [10] * up
    # ceil(200 / 10) = 20 at once (legacy limit max(2 x 10, 4) = 20); new pods ready 30 s later.
    assert desired[up] == 20
    assert ready[up + 1] == 10 and ready[up + 2] == 20
    # While the 10 new pods start, the 10 old ones carry 20 rps each; afterwards 10 each.
    assert result.rows[up + 1].metrics[0].value == pytest.approx(20.0)
    assert result.rows[up + 2].metrics[0].value == pytest.approx(10.0)
    # Demand falls to 50 -> raw recommendation ceil(50 / 10) = 5, but the 300 s downscale
    # stabilization keeps the max of the last 5 minutes (20) for 19-20 steps.
    t_down = down * STEP
    held = [
        d
        for r, d in zip(result.rows, desired, strict=True)
        if t_down <= r.time - result.grid.start < t_down + 285
    ]
    assert held == [20] * 19
    assert desired[down + 20] == 5 and desired[-1] == 5
    s = result.summary
    assert s.scale_ups == 1 and s.scale_downs == 1 and s.direction_changes == 1
    assert s.peak_replicas == 20 and s.min_replicas == 5


def test_backtest_external_value_target_40_metric_30_from_5_goes_4_3_3():
    # Value target: ratio 30/40 = 0.75 times the ready pods: ceil(3.75) = 4, ceil(3) = 3, then 3.
    rule = external_rule(behavior={"scaleDown": {"stabilizationWindowSeconds": 0}})
    result = simulate(
        rule, grid(4), {"backlog": ValueHistory([30.0] * 4)}, BacktestOptions(initial_replicas=5)
    )
    assert [r.desired_replicas for r in result.rows] == [4, 3, 3, 3]
    assert [m.value for r in result.rows for m in r.metrics] == [30.0] * 4
    assert result.summary.scale_downs == 2 and result.summary.direction_changes == 0


def test_backtest_failed_metric_holds_the_count():
    history = PodsHistory([10.0, None, None, 10.0], [4, 0, 0, 4])
    result = simulate(pods_rule(), grid(4), {"rps": history})
    assert [r.desired_replicas for r in result.rows] == [4, 4, 4, 4]
    assert result.summary.metric_error_ticks == 2
