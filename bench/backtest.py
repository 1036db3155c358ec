"""Times ``ampscaler backtest`` over 24 h at 15 s steps (5,760 ticks) against a real local Prometheus.

The history (per-pod ``http_requests_total`` counters with a daily shape, pods coming and going
like a real HPA-managed Deployment) is backfilled with promtool. Fetch and simulate are timed
separately and together (the CLI path, chart and CSV excluded), each the best of ``--repeat`` runs,
against a baseline measured in the same run: the bare ``query_range`` HTTP request plus JSON
decoding, which no backtest can beat. The target from issue 5 is a whole backtest under 10 s.

Run: ``.venv/bin/python -m bench.backtest`` (prints a table, then one JSON line).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

# One day of traffic: a night trough, a day peak and a short lunch spike.
DAY_SECONDS = 86_400
SCRAPE_SECONDS = 15.0
PER_POD_CAPACITY = 20.0  # rps one pod of the "real" Deployment was scaled for


def demand_rps(t: float, start: float) -> float:
    """Total requests per second at ``t`` for history starting at ``start`` (a daily sine + a spike)."""
    phase = 2 * math.pi * ((t - start) / DAY_SECONDS)
    base = 100.0 - 70.0 * math.cos(phase)  # 30 rps at the start (night), 170 rps half a day in
    spike = 60.0 if 0.55 * DAY_SECONDS <= (t - start) % DAY_SECONDS < 0.56 * DAY_SECONDS else 0.0
    return base + spike


def observed_pods(demand: float) -> int:
    """How many pods the real Deployment ran: what a plain HPA at 20 rps per pod would keep."""
    return max(2, min(12, math.ceil(demand / PER_POD_CAPACITY)))


def daily_http_series(
    metric: str, start: float, end: float, job: str = "web"
) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
    """Per-pod request counters every 15 s over [start, end): ``(labels, [(t, value), ...])``.

    Pod slot ``i`` is ``web-<i>``; it exists while the observed pod count exceeds ``i``. Its counter
    grows by its share of the demand and keeps its value across absences (no reset to model).
    """
    n = int((end - start) // SCRAPE_SECONDS)
    slots = 12
    points: list[list[tuple[float, float]]] = [[] for _ in range(slots)]
    counters = [0.0] * slots
    for k in range(n):
        t = start + k * SCRAPE_SECONDS
        demand = demand_rps(t, start)
        pods = observed_pods(demand)
        for i in range(pods):
            counters[i] += demand / pods * SCRAPE_SECONDS
            points[i].append((t, round(counters[i], 3)))
    return [({"__name__": metric, "job": job, "pod": f"web-{i}"}, pts) for i, pts in enumerate(points) if pts]


def pods_rule_document(metric: str, average_value: float = 20.0, name: str = "web") -> dict[str, Any]:
    """The rule replayed: rps per pod from the counter, target ``average_value``, 2..20 replicas."""
    return {
        "apiVersion": "ampscaler/v1",
        "name": name,
        "target": {"cluster": "local", "namespace": "shop", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 20,
        "metrics": [
            {
                "name": "rps",
                "type": "Pods",
                "query": f'sum by (pod) (rate({metric}{{job="web"}}[2m]))',
                "target": {"type": "AverageValue", "averageValue": average_value},
            }
        ],
    }


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best = math.inf
    result: object = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def raw_fetch(url: str, query: str, start: float, end: float, step: float) -> int:
    """The baseline: one bare query_range POST and its JSON decoding; returns the sample count."""
    resp = requests.post(
        f"{url}/api/v1/query_range",
        data={"query": query, "start": str(start), "end": str(end), "step": str(step)},
        timeout=120,
    )
    resp.raise_for_status()
    return sum(len(s["values"]) for s in resp.json()["data"]["result"])


def run(url: str, metric: str, start: float, end: float, repeat: int) -> dict[str, Any]:
    """Time baseline, fetch, simulate and fetch+simulate for the 24 h rule; return the figures."""
    from dataclasses import replace

    from ampscaler.adapters.amp import AmpMetricsSource
    from ampscaler.backtest.fetch import AmpRangeClient, fetch_history
    from ampscaler.backtest.simulate import TimeGrid, simulate
    from ampscaler.model import PrometheusSource
    from ampscaler.rule import parse_rule

    step = SCRAPE_SECONDS
    rule = parse_rule(pods_rule_document(metric))
    rule = replace(rule, prometheus=PrometheusSource(url=url))
    grid = TimeGrid.half_open(start, end, step)
    client = AmpRangeClient(
        AmpMetricsSource(read_timeout_seconds=120.0, allowed_prometheus_urls=(url,)), rule
    )
    query = rule.metrics[0].query

    baseline_s, samples = _best(lambda: raw_fetch(url, query, grid.start, grid.end, step), repeat)
    fetch_s, history = _best(lambda: fetch_history(client, rule, grid), repeat)
    assert isinstance(history, dict)
    simulate_s, result = _best(lambda: simulate(rule, grid, history), repeat)
    total_s, _ = _best(lambda: simulate(rule, grid, fetch_history(client, rule, grid)), repeat)
    cli_s = _time_cli(url, rule, start, end)
    summary = getattr(result, "summary", None)
    return {
        "benchmark": "backtest_24h_15s",
        "ticks": len(grid),
        "samples": samples,
        "baseline_raw_query_range_s": round(baseline_s, 4),
        "fetch_s": round(fetch_s, 4),
        "simulate_s": round(simulate_s, 4),
        "backtest_total_s": round(total_s, 4),
        "total_vs_baseline": round(total_s / baseline_s, 2),
        "cli_with_csv_and_chart_s": round(cli_s, 4),
        "simulate_us_per_tick": round(simulate_s / len(grid) * 1e6, 1),
        "target_s": 10.0,
        "meets_target": max(total_s, cli_s) < 10.0,
        "replica_hours": round(summary.replica_hours, 2) if summary is not None else None,
    }


def _time_cli(url: str, rule: Any, start: float, end: float) -> float:
    """One full ``ampscaler backtest`` run as a user types it, writing the CSV and the PNG chart."""
    import io
    import tempfile
    from pathlib import Path

    from ampscaler.cli import backtest as cli
    from ampscaler.rule import rule_to_document

    parser = argparse.ArgumentParser(prog="ampscaler")
    cli.register(parser.add_subparsers(dest="command"))
    with tempfile.TemporaryDirectory(prefix="ampscaler-bench-") as tmp:
        rule_file = Path(tmp) / "rule.json"
        rule_file.write_text(json.dumps(rule_to_document(rule)))
        argv = ["backtest", str(rule_file), "--from", str(start), "--to", str(end), "--url", url]
        argv += ["--csv", f"{tmp}/out.csv", "--chart", f"{tmp}/out.png"]
        args = parser.parse_args(argv)
        started = time.perf_counter()
        code = cli.run(args, stdout=io.StringIO(), stderr=io.StringIO())
        elapsed = time.perf_counter() - started
    if code != 0:
        raise RuntimeError("ampscaler backtest failed in the benchmark")
    return elapsed


def _table(figures: Mapping[str, Any]) -> str:
    rows: Sequence[tuple[str, str]] = [
        ("ticks (24 h at 15 s)", f"{figures['ticks']}"),
        ("samples fetched", f"{figures['samples']}"),
        ("baseline: raw query_range + JSON", f"{figures['baseline_raw_query_range_s']:.3f} s"),
        ("fetch (chunked, shaped)", f"{figures['fetch_s']:.3f} s"),
        (
            "simulate (engine x ticks)",
            f"{figures['simulate_s']:.3f} s  ({figures['simulate_us_per_tick']} us/tick)",
        ),
        ("whole backtest (fetch + simulate)", f"{figures['backtest_total_s']:.3f} s"),
        ("ratio whole / baseline", f"{figures['total_vs_baseline']:.1f}x"),
        ("CLI run incl. CSV + PNG chart", f"{figures['cli_with_csv_and_chart_s']:.3f} s"),
        ("target", f"< {figures['target_s']:.0f} s: {'met' if figures['meets_target'] else 'MISSED'}"),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Start a Prometheus, backfill 24 h, time the backtest, print a table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    args = parser.parse_args(argv)

    from devstack.backfill import backfill
    from devstack.prometheus import PrometheusServer

    metric = "bench_http_requests_total"
    # Whole hours, ending two hours ago: entirely in persisted blocks, like real history.
    end = math.floor(time.time() / 3600) * 3600 - 2 * 3600
    start = end - DAY_SECONDS
    with PrometheusServer() as server:
        started = time.perf_counter()
        # Two extra minutes before the range so rate()[2m] has samples at the first tick.
        backfill(server, daily_http_series(metric, start - 120, end))
        print(f"backfilled 24 h into Prometheus in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        figures = run(server.url, metric, start, end, args.repeat)
    print(_table(figures))
    print(json.dumps(figures))
    return 0 if figures["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
