"""Runs every benchmark and rewrites BENCHMARKS.md (one table) and bench/out/results.json.

Run: ``make bench`` (``.venv/bin/python -m bench.run_all``). ``--only tick,reaction`` runs a subset
(figures of the others are kept from the previous results.json, each with its own date);
``--quick`` shortens every benchmark (fewer rules, repeats and trials, a 3 s reaction interval) for
a smoke run. Every figure is a ratio against a baseline measured in the same run, because the
machines this runs on are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    BENCHMARKS,
    DEFAULT_OUTPUT,
    DEFAULT_RESULTS,
    Figure,
    RunContext,
    _last_json_line,
    log,
    machine_info,
    merge_figures,
    render_markdown,
    render_table,
)


def run_engine(ctx: RunContext) -> list[Figure]:
    """bench/engine.py: decisions per second vs the trivial ceil(sum/target) baseline."""
    from bench import engine

    result = engine.main(0.5 if ctx.quick else 2.0)
    return [
        ctx.figure(
            key="engine.decisions",
            figure="Engine throughput, 3-metric rule over 100 pods",
            value=result["decisions_per_second"],
            unit="/s",
            baseline=result["baseline_per_second"],
            baseline_label="ceil(sum/target) over the same 100 values",
            how="bench/engine.py: `decide()` in a loop for a fixed time vs the trivial computation, same process",
        )
    ]


def run_backtest(ctx: RunContext) -> list[Figure]:
    """bench/backtest.py: 24 h at 15 s against a real Prometheus vs one raw query_range."""
    from bench import backtest

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        backtest.main(["--repeat", "1" if ctx.quick else "3"])
    print(buffer.getvalue(), end="")
    doc = _last_json_line(buffer.getvalue())
    slowest = max(doc["backtest_total_s"], doc["cli_with_csv_and_chart_s"])
    ctx.facts["backtest"] = doc
    return [
        ctx.figure(
            key="backtest.total",
            figure=f"Backtest 24 h at 15 s ({doc['ticks']} ticks), fetch + simulate",
            value=doc["backtest_total_s"],
            unit="s",
            baseline=doc["baseline_raw_query_range_s"],
            baseline_label="one raw query_range + JSON decode",
            how=(
                "bench/backtest.py against a real Prometheus backfilled with promtool; best of runs; "
                f"CLI incl. CSV + PNG chart: {doc['cli_with_csv_and_chart_s']:.2f} s"
            ),
            target="< 10 s" + (" met" if slowest < 10 else " MISSED"),
        )
    ]


def _runners() -> dict[str, Callable[[RunContext], list[Figure]]]:
    from bench import cold_start, cost, layer, reaction, sharding, tick

    return {
        "engine": run_engine,
        "backtest": run_backtest,
        "cold_start": cold_start.run,
        "tick": tick.run,
        "sharding": sharding.run,
        "reaction": reaction.run,
        "layer": layer.run,
        "cost": cost.run,
    }


def load_results(path: Path) -> dict[str, Any]:
    """A previous results.json (empty when there is none or it is unreadable)."""
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
        doc["figures"] = [Figure.from_json(f) for f in doc.get("figures", [])]
        return doc
    except (OSError, ValueError, TypeError):
        return {}


def merge_by_benchmark(
    previous: Mapping[str, Any], fresh: Mapping[str, Any], ran: Sequence[str]
) -> dict[str, Any]:
    """Per-benchmark entries (notes, sections): fresh for the benchmarks that ran, else the previous."""
    merged = {k: v for k, v in previous.items() if k not in ran}
    merged.update({k: v for k, v in fresh.items() if k in ran})
    return {k: merged[k] for k in BENCHMARKS if k in merged}


@contextlib.contextmanager
def _timed(name: str) -> Iterator[None]:
    started = time.perf_counter()
    log(f"{name}: start")
    try:
        yield
    finally:
        log(f"{name}: done in {time.perf_counter() - started:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks and rewrite BENCHMARKS.md and results.json."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="short smoke run (fewer rules/repeats/trials)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown file to rewrite")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results.json to rewrite")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the markdown from results.json without running"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        stored = load_results(args.results)
        flat = {t: b for per in stored.get("sections", {}).values() for t, b in per.items()}
        stored_notes = [n for per in stored.get("notes", {}).values() for n in per]
        args.output.write_text(
            render_markdown(stored.get("figures", []), stored.get("machine", {}), stored_notes, flat)
        )
        return 0

    selected = [b.strip() for b in args.only.split(",") if b.strip()] or list(BENCHMARKS)
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    # Run in the canonical order.
    selected = [b for b in BENCHMARKS if b in selected]

    previous = load_results(args.results)
    ctx = RunContext(quick=args.quick, date=dt.date.today().isoformat())
    runners = _runners()
    fresh: list[Figure] = []
    failed: list[str] = []
    notes: dict[str, list[str]] = {}
    sections: dict[str, dict[str, str]] = {}
    try:
        for name in selected:
            ctx.notes, ctx.sections = [], {}
            with _timed(name):
                try:
                    fresh += runners[name](ctx)
                except Exception:
                    # One broken benchmark must not lose the others' figures; it is reported.
                    traceback.print_exc()
                    failed.append(name)
                    ctx.notes.append(
                        f"`{name}` failed in the run of {ctx.date}; its previous figures are kept."
                    )
            notes[name], sections[name] = ctx.notes, ctx.sections
    finally:
        ctx.close()

    ran = [n for n in selected if n not in failed]
    figures = merge_figures(previous.get("figures", []), fresh, ran)
    facts = {**previous.get("facts", {}), **ctx.facts}
    all_notes = merge_by_benchmark(previous.get("notes", {}), notes, selected)
    all_sections = merge_by_benchmark(previous.get("sections", {}), sections, ran)
    flat_sections = {title: body for per in all_sections.values() for title, body in per.items()}
    markdown = render_markdown(
        figures, machine_info(), [n for per in all_notes.values() for n in per], flat_sections
    )
    args.output.write_text(markdown)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps(
            {
                "machine": machine_info(),
                "figures": [f.to_json() for f in figures],
                "facts": facts,
                "notes": all_notes,
                "sections": all_sections,
            },
            indent=2,
            sort_keys=True,
            default=str,
        )
        + "\n"
    )
    log(f"wrote {args.output} and {args.results}")
    print(render_table(figures))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
