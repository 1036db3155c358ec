"""What every benchmark module shares: the figure model and its markdown, the run context, logging.

The benchmark modules and ``bench.run_all`` import from here, and nothing here imports them, so
there is no import cycle between the runner and the benchmarks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "BENCHMARKS.md"
DEFAULT_RESULTS = REPO / "bench" / "out" / "results.json"
BENCHMARKS = ("engine", "backtest", "cold_start", "tick", "sharding", "reaction", "layer", "cost")


# -- the figure model (pure; tested in tests/unit/test_bench_report.py) --------------------------


@dataclass(frozen=True)
class Figure:
    """One row of the BENCHMARKS.md table.

    ``ratio`` is ``value / baseline``: for a latency, how many times the floor it takes; for a
    throughput, what fraction of the trivial baseline's rate it reaches.
    """

    key: str
    figure: str
    value: float
    unit: str
    baseline: float | None
    baseline_label: str
    how: str
    date: str = ""
    target: str = ""

    @property
    def ratio(self) -> float | None:
        """``value / baseline``, or None without a usable baseline."""
        return ratio(self.value, self.baseline)

    def to_json(self) -> dict[str, Any]:
        """The figure as results.json stores it (ratio included for tooling)."""
        doc = asdict(self)
        doc["ratio"] = self.ratio
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Figure:
        """Inverse of ``to_json`` (the stored ratio is recomputed, not trusted)."""
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in doc.items() if k in names})


def ratio(value: float, baseline: float | None) -> float | None:
    """``value / baseline``; None when there is no baseline or it is zero, negative or not finite."""
    if baseline is None or not math.isfinite(baseline) or baseline <= 0 or not math.isfinite(value):
        return None
    return value / baseline


def median(values: Sequence[float]) -> float:
    """The median (raises on an empty sequence, which would be a benchmark bug)."""
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))


def format_value(value: float | None, unit: str) -> str:
    """Human form of a figure: seconds to ms below 1 s, bytes to MB, dollars with cents."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if unit == "s":
        if abs(value) < 1.0:
            return f"{value * 1000:.1f} ms"
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "B":
        if abs(value) >= 1024 * 1024:
            return f"{value / 1024 / 1024:.1f} MB"
        if abs(value) >= 1024:
            return f"{value / 1024:.1f} KB"
        return f"{value:.0f} B"
    if unit == "USD/month":
        return f"${value:,.2f}/month"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "x":
        return f"{value:.2f}x"
    if unit:
        return f"{value:,.4g} {unit}"
    return f"{value:,.4g}"


def format_ratio(value: float | None) -> str:
    """``1.23x`` (more digits for small ratios such as engine/baseline throughput)."""
    if value is None:
        return "n/a"
    if value < 0.01:
        return f"{value:.5f}x"
    if value < 0.1:
        return f"{value:.3f}x"
    return f"{value:.2f}x"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(figures: Sequence[Figure]) -> str:
    """The markdown table: figure, value, baseline, ratio, how measured, date."""
    lines = [
        "| Figure | Value | Baseline | Ratio | How measured | Date |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        name = f.figure + (f" (target: {f.target})" if f.target else "")
        baseline = "—" if f.baseline is None else f"{format_value(f.baseline, f.unit)} ({f.baseline_label})"
        if f.baseline is None and f.baseline_label:
            baseline = f.baseline_label
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    name,
                    format_value(f.value, f.unit),
                    baseline,
                    format_ratio(f.ratio),
                    f.how,
                    f.date,
                )
            )
            + " |"
        )
    return "\n".join(lines)


HOW_TO_READ = """\
How to read this: every figure is measured together with a baseline in the same run, on the same
machine, because these machines are noisy; compare ratios, not raw values, across runs and
machines. For latencies and sizes the ratio is value / baseline (1.00x = as fast as the floor,
lower is better). For throughput (engine) it is value / baseline (the fraction of a trivial
computation's rate). Targets come from the issues; a ratio above its target is reported, not
hidden. Regenerate with `make bench` (about 10-15 minutes; `python -m bench.run_all --quick`
for a smoke run, `--only tick,reaction` for a subset)."""


def render_markdown(
    figures: Sequence[Figure],
    machine: Mapping[str, str],
    notes: Sequence[str] = (),
    sections: Mapping[str, str] | None = None,
) -> str:
    """The whole BENCHMARKS.md: title, how to read, machine, the table, then notes and sections."""
    out = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run_all.py`); do not edit by hand.",
        "",
        HOW_TO_READ,
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        render_table(figures),
        "",
    ]
    if notes:
        out += ["## Notes", ""]
        out += [f"- {n}" for n in notes]
        out.append("")
    for title, body in (sections or {}).items():
        out += [f"## {title}", "", body.rstrip(), ""]
    return "\n".join(out)


def merge_figures(previous: Sequence[Figure], fresh: Sequence[Figure], ran: Sequence[str]) -> list[Figure]:
    """Fresh figures replace every previous figure of the benchmarks that ran; others are kept.

    Order: the order of BENCHMARKS, then the order each benchmark produced its figures in.
    """
    kept = [f for f in previous if f.key.split(".", 1)[0] not in ran]
    merged = kept + list(fresh)
    order = {name: i for i, name in enumerate(BENCHMARKS)}
    position = {id(f): i for i, f in enumerate(merged)}
    return sorted(merged, key=lambda f: (order.get(f.key.split(".", 1)[0], 99), position[id(f)]))


def machine_info() -> dict[str, str]:
    """nproc, python and platform of this run."""
    return {
        "nproc": str(os.cpu_count() or "?"),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
    }


# -- the run context shared by the benchmarks ----------------------------------------------------


@dataclass
class RunContext:
    """What the benchmarks share in one run: options, the lazily started LocalStack, facts."""

    quick: bool
    date: str
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)
    # Live objects shared between benchmarks (never written to results.json).
    shared: dict[str, Any] = field(default_factory=dict)
    _stack: Any = None

    def stack(self) -> Any:
        """The LocalStack (Prometheus + SigV4 proxy, moto, kube simulator), started on first use."""
        if self._stack is None:
            from devstack.stack import LocalStack

            self._stack = LocalStack().start()
        return self._stack

    def close(self) -> None:
        """Stop the LocalStack if it was started."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def figure(self, **kwargs: Any) -> Figure:
        """A Figure dated with this run's date ("(quick)" appended to how-measured in quick mode)."""
        if self.quick:
            kwargs["how"] = kwargs.get("how", "") + " (quick run)"
        return Figure(date=self.date, **kwargs)


def log(message: str) -> None:
    """Progress on stderr (stdout carries the benchmarks' own output)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the benchmarks that already print a JSON line ----------------------------------------------


def standalone_main(
    run: Callable[[RunContext], Sequence[Figure]], description: str, argv: Sequence[str] | None = None
) -> int:
    """Entry point of one benchmark module run alone: its figures as JSON lines on stdout."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    ctx = RunContext(quick=args.quick, date=dt.date.today().isoformat())
    try:
        for f in run(ctx):
            print(json.dumps(f.to_json()))
    finally:
        ctx.close()
    return 0


def _last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            doc: dict[str, Any] = json.loads(line)
            return doc
    raise RuntimeError(f"no JSON line in the benchmark output: {text[-500:]!r}")
