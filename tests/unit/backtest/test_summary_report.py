"""Summary arithmetic, the CSV layout, the text/JSON summary and the chart file."""

from __future__ import annotations

import csv
import json

import pytest

from ampscaler.backtest.report import csv_columns, format_json, format_table, rfc3339, write_chart, write_csv
from ampscaler.backtest.simulate import (
    BacktestOptions,
    MetricPoint,
    PodsHistory,
    StepRow,
    TimeGrid,
    simulate,
    summarize_observed,
    summarize_simulated,
)
from tests.unit.backtest.helpers import pods_rule


def row(t: float, current: int, desired: int, value: float | None, observed: int | None = None) -> StepRow:
    point = MetricPoint("rps", observed=value, value=value, target=10.0, proposal=desired)
    return StepRow(
        t, observed, current, current, desired, "scale" if desired != current else "none", "r", (point,)
    )


def test_summarize_simulated_counts_hours_events_flips_and_time_above_target():
    # Counts in force: 2 4 4 3 3 5 (the first decision already scales 2 -> 4? no: 2 -> 2).
    rows = [
        row(0, 2, 2, 10.0),
        row(15, 2, 4, 20.0),  # ratio 2.0: above 1.1
        row(30, 4, 4, 11.0),  # ratio 1.1: inside the tolerance (both ends inside)
        row(45, 4, 3, 5.0),
        row(60, 3, 3, None),  # failed metric: not "above"
        row(75, 3, 5, 12.0),  # above
    ]
    s = summarize_simulated(rows, 15.0, 0.1)
    assert s.ticks == 6
    assert s.replica_hours == pytest.approx((2 + 4 + 4 + 3 + 3 + 5) * 15 / 3600)
    assert s.mean_replicas == pytest.approx(21 / 6)
    assert (s.peak_replicas, s.min_replicas) == (5, 2)
    assert (s.scale_events, s.scale_ups, s.scale_downs) == (3, 2, 1)
    assert s.direction_changes == 2
    assert s.above_target_seconds == 30.0
    assert s.above_target_percent == pytest.approx(100 * 2 / 6)


def test_summarize_simulated_counts_a_change_made_by_the_first_decision():
    s = summarize_simulated([row(0, 8, 4, 1.0), row(15, 4, 4, 1.0)], 15.0, 0.1)
    assert (s.scale_events, s.scale_downs) == (1, 1)


def test_summarize_observed_uses_known_counts_only():
    rows = [
        row(0, 1, 1, 10.0, observed=3),
        row(15, 1, 1, 10.0, observed=None),
        row(30, 1, 1, 10.0, observed=6),
    ]
    s = summarize_observed(rows, 15.0, 0.1)
    assert s is not None
    assert s.replica_hours == pytest.approx((3 + 6) * 15 / 3600)
    assert (s.scale_ups, s.peak_replicas) == (1, 6)
    assert summarize_observed([row(0, 1, 1, 1.0)], 15.0, 0.1) is None


def _result(name: str = "web", target: float = 10):
    grid = TimeGrid(1_700_000_000, 1_700_000_000 + 9 * 15, 15)
    history = PodsHistory([20.0] * 10, [5] * 10)
    return simulate(pods_rule(target=target, name=name), grid, {"rps": history}, BacktestOptions())


def test_write_csv_has_one_row_per_step_and_the_documented_columns(tmp_path):
    path = tmp_path / "out.csv"
    assert write_csv(path, [_result()]) == 10
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "rule",
        "time",
        "unix",
        "observed_replicas",
        "current_replicas",
        "ready_pods",
        "desired_replicas",
        "action",
        "rps_observed",
        "rps_value",
        "rps_target",
        "rps_proposal",
        "reason",
    ]
    assert len(rows) == 10
    first = rows[0]
    assert first["time"] == "2023-11-14T22:13:20Z"
    assert (first["observed_replicas"], first["current_replicas"], first["desired_replicas"]) == (
        "5",
        "5",
        "10",
    )
    assert (first["rps_observed"], first["rps_value"], first["rps_target"]) == ("20", "20", "10")
    assert first["action"] == "scale"


def test_write_csv_compare_writes_both_rules_in_long_format(tmp_path):
    path = tmp_path / "out.csv"
    assert write_csv(path, [_result("a"), _result("b", target=5)]) == 20
    with open(path, newline="") as fh:
        names = [r["rule"] for r in csv.DictReader(fh)]
    assert names == ["a"] * 10 + ["b"] * 10
    assert csv_columns([_result("a")]).count("rps_value") == 1


def test_format_table_lists_each_rule_and_observed():
    text = format_table([_result("a"), _result("b", target=5)])
    header = text.splitlines()[1].split()
    assert header == ["a", "b", "observed"]
    line = next(x for x in text.splitlines() if x.startswith("replica-hours"))
    # a: 10 replicas x 10 steps of 15 s; observed: 5 x 10. b (target 5, demand 100): the legacy
    # scale-up limit max(2 x 5, 4) allows 10 at the first step, then 20: (10 + 9 x 20) x 15 s.
    assert line.split()[1:] == ["0.42", "0.79", "0.21"]


def test_format_json_carries_summaries_and_files():
    doc = json.loads(format_json([_result()], {"csv": "x.csv"}))
    assert doc["rules"][0]["rule"] == "web"
    assert doc["rules"][0]["summary"]["peakReplicas"] == 10
    assert doc["observed"]["peakReplicas"] == 5
    assert doc["files"] == {"csv": "x.csv"}
    assert doc["from"] == rfc3339(1_700_000_000)


def test_write_chart_writes_a_png(tmp_path):
    path = tmp_path / "chart.png"
    write_chart(path, [_result("a"), _result("b", target=5)])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
