"""Backtest output: the per-step CSV, the PNG chart and the printed summary (table or JSON)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ampscaler.backtest.simulate import BacktestResult, Summary

BASE_COLUMNS = (
    "rule",
    "time",
    "unix",
    "observed_replicas",
    "current_replicas",
    "ready_pods",
    "desired_replicas",
    "action",
)
METRIC_COLUMNS = ("observed", "value", "target", "proposal")


def rfc3339(at: float) -> str:
    """``2024-05-01T12:00:00Z`` for unix time ``at`` (UTC, whole seconds unless fractional)."""
    dt = datetime.fromtimestamp(at, tz=UTC)
    text = dt.isoformat(timespec="seconds" if float(at).is_integer() else "milliseconds")
    return text.replace("+00:00", "Z")


def csv_columns(results: Sequence[BacktestResult]) -> list[str]:
    """Header of the CSV: base columns, ``<metric>_<field>`` for every metric name, ``reason``."""
    names: list[str] = []
    for result in results:
        for spec in result.rule.metrics:
            if spec.name not in names:
                names.append(spec.name)
    return [*BASE_COLUMNS, *(f"{n}_{f}" for n in names for f in METRIC_COLUMNS), "reason"]


def _cell(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_csv(path: str | Path, results: Sequence[BacktestResult]) -> int:
    """Write one row per rule and step (long format: a ``rule`` column tells the rules apart).

    Returns
    -------
    int
        Number of data rows written.
    """
    columns = csv_columns(results)
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for result in results:
            name = result.rule.name
            for row in result.rows:
                record: dict[str, str] = {
                    "rule": name,
                    "time": rfc3339(row.time),
                    "unix": str(int(row.time)) if float(row.time).is_integer() else repr(row.time),
                    "observed_replicas": _cell(row.observed_replicas),
                    "current_replicas": str(row.current_replicas),
                    "ready_pods": str(row.ready_pods),
                    "desired_replicas": str(row.desired_replicas),
                    "action": row.action,
                    "reason": row.reason,
                }
                for m in row.metrics:
                    record[f"{m.name}_observed"] = _cell(m.observed)
                    record[f"{m.name}_value"] = _cell(m.value)
                    record[f"{m.name}_target"] = _cell(m.target)
                    record[f"{m.name}_proposal"] = _cell(m.proposal)
                writer.writerow([record.get(c, "") for c in columns])
                count += 1
    return count


_SUMMARY_LINES: tuple[tuple[str, str], ...] = (
    ("ticks", "ticks"),
    ("replica-hours", "replicaHours"),
    ("mean replicas", "meanReplicas"),
    ("peak replicas", "peakReplicas"),
    ("min replicas", "minReplicas"),
    ("scale events", "scaleEvents"),
    ("  up / down", "upDown"),
    ("direction changes", "directionChanges"),
    ("above target (s)", "aboveTargetSeconds"),
    ("above target (%)", "aboveTargetPercent"),
    ("metric error ticks", "metricErrorTicks"),
)


def _summary_cells(summary: Summary) -> dict[str, str]:
    d = summary.to_dict()
    cells = {key: _cell(value) for key, value in d.items()}
    cells["replicaHours"] = f"{summary.replica_hours:.2f}"
    cells["meanReplicas"] = f"{summary.mean_replicas:.2f}"
    cells["aboveTargetSeconds"] = f"{summary.above_target_seconds:.0f}"
    cells["aboveTargetPercent"] = f"{summary.above_target_percent:.2f}"
    cells["upDown"] = f"{summary.scale_ups} / {summary.scale_downs}"
    return cells


def format_table(results: Sequence[BacktestResult]) -> str:
    """The summary as a text table: one column per rule, then ``observed`` when known."""
    first = results[0]
    columns: list[tuple[str, Summary]] = [(r.rule.name, r.summary) for r in results]
    if first.observed is not None:
        columns.append(("observed", first.observed))
    cells = [_summary_cells(s) for _, s in columns]
    label_width = max(len(label) for label, _ in _SUMMARY_LINES)
    widths = [
        max(len(name), *(len(c[key]) for _, key in _SUMMARY_LINES))
        for (name, _), c in zip(columns, cells, strict=True)
    ]
    grid = first.grid
    lines = [
        f"range {rfc3339(grid.start)} .. {rfc3339(grid.end)}, step {grid.step:g}s, "
        f"start-up delay {first.options.startup_delay_seconds:g}s, tolerance {first.tolerance:g}",
        "  ".join(
            [" " * label_width, *(name.rjust(w) for (name, _), w in zip(columns, widths, strict=True))]
        ),
    ]
    for label, key in _SUMMARY_LINES:
        lines.append(
            "  ".join(
                [label.ljust(label_width), *(c[key].rjust(w) for c, w in zip(cells, widths, strict=True))]
            )
        )
    return "\n".join(lines)


def to_json(results: Sequence[BacktestResult], files: dict[str, str] | None = None) -> dict[str, Any]:
    """The summary document printed by ``--output json``."""
    first = results[0]
    doc: dict[str, Any] = {
        "from": rfc3339(first.grid.start),
        "to": rfc3339(first.grid.end),
        "stepSeconds": first.grid.step,
        "startupDelaySeconds": first.options.startup_delay_seconds,
        "rules": [
            {
                "rule": r.rule.name,
                "tolerance": r.tolerance,
                "summary": r.summary.to_dict(),
            }
            for r in results
        ],
        "observed": first.observed.to_dict() if first.observed is not None else None,
    }
    if files:
        doc["files"] = files
    return doc


def format_json(results: Sequence[BacktestResult], files: dict[str, str] | None = None) -> str:
    """``to_json`` rendered with two-space indentation."""
    return json.dumps(to_json(results, files), indent=2)


def write_chart(path: str | Path, results: Sequence[BacktestResult]) -> None:
    """Write a PNG: per rule one column, a panel per metric (value vs target) and the replicas.

    With several results (``--compare``) the columns sit side by side with shared axes, and each
    replica panel also shows the other rules' replicas faintly, so the difference reads at once.
    matplotlib is imported here only, with the Agg backend (no display needed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    ncols = len(results)
    metric_rows = max(len(r.rule.metrics) for r in results)
    nrows = metric_rows + 1
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(7.5 * ncols, 2.6 * nrows + 0.6),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [1.0] * metric_rows + [1.3]},
    )
    replica_axes = []
    times = [[datetime.fromtimestamp(row.time, tz=UTC) for row in r.rows] for r in results]
    for col, result in enumerate(results):
        x = times[col]
        for i, spec in enumerate(result.rule.metrics):
            ax = axes[i][col]
            observed = [row.metrics[i].observed for row in result.rows]
            simulated = [row.metrics[i].value for row in result.rows]
            target = [row.metrics[i].target for row in result.rows]
            if spec.type == "Pods" or any(v is not None for v in observed):
                ax.plot(x, _nan(observed), color="0.6", lw=0.8, label="observed")
            ax.plot(x, _nan(simulated), color="tab:blue", lw=1.0, label="simulated")
            ax.plot(x, target, color="tab:red", lw=1.0, ls="--", label="target")
            unit = "per pod" if spec.target.type == "AverageValue" else "value"
            ax.set_ylabel(f"{spec.name}\n({unit})")
            ax.legend(loc="upper right", fontsize=7)
            ax.grid(alpha=0.3)
        for i in range(len(result.rule.metrics), metric_rows):
            axes[i][col].axis("off")
        ax = axes[metric_rows][col]
        replica_axes.append(ax)
        for other, other_result in enumerate(results):
            if other != col:
                ax.step(
                    times[other],
                    [row.desired_replicas for row in other_result.rows],
                    where="post",
                    color="tab:orange",
                    lw=0.8,
                    alpha=0.5,
                    label=f"{other_result.rule.name} (compare)",
                )
        observed_replicas = [row.observed_replicas for row in result.rows]
        if any(v is not None for v in observed_replicas):
            ax.step(x, _nan(observed_replicas), where="post", color="0.6", lw=0.8, label="observed")
        ax.step(
            x,
            [row.ready_pods for row in result.rows],
            where="post",
            color="tab:green",
            lw=0.8,
            ls=":",
            label="ready",
        )
        ax.step(
            x,
            [row.desired_replicas for row in result.rows],
            where="post",
            color="tab:blue",
            lw=1.2,
            label="replicas",
        )
        ax.set_ylabel("replicas")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize=7)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=UTC))  # type: ignore[no-untyped-call]
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        s = result.summary
        axes[0][col].set_title(
            f"{result.rule.name}: {s.replica_hours:.1f} replica-h, peak {s.peak_replicas}, "
            f"{s.scale_events} scale events, {s.above_target_percent:.1f}% above target",
            fontsize=9,
        )
    if ncols > 1:
        top = max(ax.get_ylim()[1] for ax in replica_axes)
        for ax in replica_axes:
            ax.set_ylim(0, top)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def _nan(values: Sequence[float | int | None]) -> list[float]:
    # matplotlib leaves gaps at NaN, which is what a missing sample should look like.
    return [float("nan") if v is None else float(v) for v in values]
