"""bench/: the BENCHMARKS.md table, the ratio and percentile arithmetic, the cost arithmetic, and a
smoke run of ``python -m bench.run_all --quick --only engine`` writing a table to a temporary file."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import (
    Figure,
    format_ratio,
    format_value,
    merge_figures,
    percentile,
    ratio,
    render_markdown,
    render_table,
)
from bench.cost import SLOTS_PER_MONTH, Phase, monthly_bill
from bench.layer import PRICES, alternative_cost, pod_cost
from bench.run_all import merge_by_benchmark
from bench.sharding import wall_time
from bench.tick import patches, top_hotspots

REPO = Path(__file__).resolve().parents[2]


def fig(key: str, value: float, baseline: float | None, unit: str = "s", **kw: str) -> Figure:
    return Figure(
        key=key, figure=kw.get("figure", key), value=value, unit=unit, baseline=baseline,
        baseline_label=kw.get("label", "floor"), how=kw.get("how", "how"), date="2025-01-02",
        target=kw.get("target", ""),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "baseline", "expected"),
    [
        (3.0, 2.0, 1.5),
        (0.5, 2.0, 0.25),
        (1.0, None, None),
        (1.0, 0.0, None),
        (1.0, -1.0, None),
        (1.0, math.inf, None),
        (math.nan, 1.0, None),
    ],
)
def test_ratio_is_value_over_baseline_or_none_without_a_usable_baseline(
    value: float, baseline: float | None, expected: float | None
) -> None:
    assert ratio(value, baseline) == expected
    assert fig("x", value, baseline).ratio == expected


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 95, 5.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 95, 4.8),  # rank 3.8: 4 + 0.8 x (5 - 4)
        ([5.0, 1.0, 4.0, 2.0, 3.0], 0, 1.0),
        ([1.0, 2.0], 100, 2.0),
    ],
)
def test_percentile_interpolates_between_closest_ranks(
    values: list[float], q: float, expected: float
) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_a_bug() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.0421, "s", "42.1 ms"),
        (3.456, "s", "3.46 s"),
        (29_104_528, "B", "27.8 MB"),
        (2048, "B", "2.0 KB"),
        (12.5, "USD/month", "$12.50/month"),
        (2796.4, "/s", "2,796/s"),
        (None, "s", "n/a"),
    ],
)
def test_format_value_uses_readable_units(value: float | None, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


@pytest.mark.parametrize(
    ("value", "text"), [(1.234, "1.23x"), (0.0035, "0.00350x"), (0.05, "0.050x"), (None, "n/a")]
)
def test_format_ratio_keeps_small_ratios_readable(value: float | None, text: str) -> None:
    assert format_ratio(value) == text


def test_render_table_has_the_six_columns_and_one_row_per_figure() -> None:
    table = render_table(
        [
            fig("tick.rules_100", 0.42, 0.30, figure="Tick, 100 rules", target="≤ 1.5x floor met"),
            fig("layer.size", 29_104_528, None, unit="B", label="", how="sam build | tree size"),
        ]
    )
    lines = table.splitlines()
    assert lines[0] == "| Figure | Value | Baseline | Ratio | How measured | Date |"
    assert len(lines) == 4
    cells = [c.strip() for c in lines[2].strip("|").split(" | ")]
    assert cells == [
        "Tick, 100 rules (target: ≤ 1.5x floor met)",
        "420.0 ms",
        "300.0 ms (floor)",
        "1.40x",
        "how",
        "2025-01-02",
    ]
    # A pipe inside a cell is escaped, so the row keeps its six columns; no baseline shows a dash.
    assert "sam build \\| tree size" in lines[3]
    assert "| — |" in lines[3] and "| n/a |" in lines[3]


def test_render_markdown_carries_how_to_read_machine_notes_and_sections() -> None:
    text = render_markdown(
        [fig("engine.decisions", 10.0, 20.0, unit="/s")],
        {"nproc": "2", "python": "3.13.0"},
        notes=["a note"],
        sections={"Cost estimate (arithmetic)": "| a | b |"},
    )
    assert text.startswith("# Benchmarks\n")
    assert "How to read this" in text
    assert "Machine: nproc 2, python 3.13.0" in text
    assert "| engine.decisions | 10/s | 20/s (floor) | 0.50x |" in text
    assert "## Notes\n\n- a note" in text
    assert "## Cost estimate (arithmetic)\n\n| a | b |" in text


def test_merge_figures_replaces_only_the_benchmarks_that_ran_in_canonical_order() -> None:
    previous = [fig("tick.rules_1", 1.0, 1.0), fig("engine.decisions", 1.0, 1.0), fig("layer.size", 1.0, 1.0)]
    fresh = [fig("engine.decisions", 2.0, 1.0)]
    merged = merge_figures(previous, fresh, ran=["engine"])
    assert [(f.key, f.value) for f in merged] == [
        ("engine.decisions", 2.0),
        ("tick.rules_1", 1.0),
        ("layer.size", 1.0),
    ]
    # A benchmark that ran but produced nothing drops its old figures.
    assert [f.key for f in merge_figures(previous, [], ran=["tick"])] == ["engine.decisions", "layer.size"]


def test_merge_by_benchmark_keeps_entries_of_benchmarks_not_run() -> None:
    merged = merge_by_benchmark({"layer": ["old"], "tick": ["old tick"]}, {"tick": ["new"]}, ["tick"])
    assert merged == {"tick": ["new"], "layer": ["old"]}


def test_figure_json_round_trip_recomputes_the_ratio() -> None:
    original = fig("cold_start.total", 1.2, 0.4, target="≤ 2x MISSED")
    doc = original.to_json()
    assert doc["ratio"] == pytest.approx(3.0)
    doc["ratio"] = 99.0
    assert Figure.from_json(doc) == original


def test_sharding_wall_time_is_earliest_start_to_latest_end() -> None:
    assert wall_time([{"started": 10.0, "ended": 12.0}, {"started": 10.5, "ended": 13.0}]) == 3.0


def test_one_rule_in_ten_scales_in_the_tick_benchmark() -> None:
    assert [i for i in range(100) if patches(i)] == list(range(5, 100, 10))
    assert not patches(0)


def test_top_hotspots_reads_the_rows_of_a_tottime_listing() -> None:
    listing = (
        "   1000 function calls in 1.0 seconds\n\n"
        "   ncalls  tottime  percall  cumtime  percall filename:lineno(function)\n"
        "      10    0.500    0.050    0.600    0.060 ssl.py:1(read)\n"
        "       5    0.200    0.040    0.200    0.040 json/decoder.py:2(decode)\n\n"
    )
    assert top_hotspots(listing) == [
        "10 0.500 0.050 0.600 0.060 ssl.py:1(read)",
        "5 0.200 0.040 0.200 0.040 json/decoder.py:2(decode)",
    ]


def test_monthly_bill_arithmetic_from_a_steady_phase() -> None:
    metric = ("EvaluationErrors", (("service", "s"),))
    steady = Phase(
        rules=10, slots=8, invocations=8, billed_ms=800, write_units=8, read_units=0, state_writes=0,
        decision_bytes=0, tick_bytes=8 * 600, emf_bytes=8 * 400, error_bytes=0, messages_sent=6,
        full_records=0, dropped=0, metrics={metric, ("TickDuration", (("Shard", "0"),))},
    )  # fmt: skip
    scaling = Phase(**{**vars(steady), "decision_bytes": 3000 * 4, "full_records": 4})
    total, lines, alarms = monthly_bill(10, steady, scaling, 120.0, 24, alarms=9)
    items = {name: value for name, _, value in lines}
    slots = 730 * 3600 / 15
    assert slots == SLOTS_PER_MONTH
    assert items["Lambda requests"] == pytest.approx(slots * 0.2e-6)
    assert items["Lambda duration"] == pytest.approx(slots * 0.120 * 0.25 * 0.0000133334)
    heartbeats = 10 * slots * 15 / 1800
    # One fence write per slot, nothing for steady rules, a 4-unit transaction per heartbeat.
    assert items["DynamoDB writes"] == pytest.approx((slots * 1 + heartbeats * 4) * 0.625e-6)
    assert items["AMP query samples"] == pytest.approx(10 * slots * 24 * 0.1e-9)
    log_bytes = slots * (600 + 400) + heartbeats * 3000 + slots * 330
    assert items["CloudWatch Logs ingestion"] == pytest.approx(log_bytes / 2**30 * 0.5)
    assert items["CloudWatch custom metrics"] == pytest.approx(2 * 0.30)
    messages = slots * 6 / 8
    assert items["SQS requests"] == pytest.approx((slots / 4 + 2 * messages + 5 * 3 * 60 * 730) * 0.4e-6)
    assert total == pytest.approx(sum(items.values()))
    assert alarms == pytest.approx(0.90)


def test_alternative_pod_costs_follow_the_stated_vcpu_and_gib_prices() -> None:
    vcpu_hour, gib_hour = PRICES["m7g_large_hour"] / 4, PRICES["m7g_large_hour"] / 16
    assert pod_cost(1000, 1024) == pytest.approx((vcpu_hour + gib_hour) * 730)
    total, lines = alternative_cost("KEDA + SigV4 proxy")
    assert [name for name, _, _ in lines] == [
        "keda-operator",
        "keda-operator-metrics-apiserver",
        "keda-admission-webhooks",
        "aws-sigv4-proxy",
    ]
    expected = sum(pod_cost(c, m) for c, m in ((100, 100), (100, 100), (10, 10), (100, 128)))
    assert total == pytest.approx(expected)


def test_run_all_quick_engine_writes_the_table(tmp_path: Path) -> None:
    output, results = tmp_path / "BENCHMARKS.md", tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--quick", "--only", "engine", "--output", str(output),
         "--results", str(results)],
        cwd=REPO, capture_output=True, text=True, timeout=600,  # a hang bound; idle it takes seconds
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    text = output.read_text()
    assert "| Figure | Value | Baseline | Ratio | How measured | Date |" in text
    row = next(line for line in text.splitlines() if line.startswith("| Engine throughput"))
    assert "/s" in row and "x |" in row
    doc = json.loads(results.read_text())
    (figure,) = doc["figures"]
    assert figure["key"] == "engine.decisions"
    assert figure["ratio"] == pytest.approx(figure["value"] / figure["baseline"])
    assert doc["machine"]["nproc"]
