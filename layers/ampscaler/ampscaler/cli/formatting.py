"""Shared text output of the operator commands: kubectl-style tables, ages, numbers and TARGETS cells."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ampscaler.model import MetricSpec

# kubectl's placeholders for a value it does not have.
UNKNOWN = "<unknown>"
NONE = "<none>"
# Upstream: formatHPAMetrics shows at most this many metrics, then "+ N more...".
TARGETS_SHOWN = 2
COLUMN_GAP = "   "


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """Left-aligned columns three spaces apart, the way ``kubectl get`` prints (no trailing blanks).

    Parameters
    ----------
    headers
        Column titles, printed as given (kubectl prints them upper-case).
    rows
        Cells as strings; every row has ``len(headers)`` cells.
    indent
        Prefix of every line (``describe`` nests tables).

    Returns
    -------
    str
        The table without a final newline.
    """
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append((indent + COLUMN_GAP.join(cells)).rstrip())
    return "\n".join(lines)


def human_duration(seconds: float) -> str:
    """A duration with ~2-3 significant figures: ``95s``, ``5m30s``, ``2h``, ``3d4h``.

    Upstream: HumanDuration in k8s.io/apimachinery/pkg/util/duration (what kubectl prints in AGE):
    up to 2 s in the future counts as now (clock skew), more is ``<invalid>``.
    """
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


def age(then: float | None, now: float) -> str:
    """How long ago ``then`` was (``human_duration``), or ``<none>`` when it never happened."""
    if then is None:
        return NONE
    return human_duration(now - then)


def timestamp(at: float | None) -> str:
    """RFC 3339 UTC seconds (``2024-05-01T12:00:00Z``), or ``<none>``."""
    if at is None:
        return NONE
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_number(value: float | None) -> str:
    """A metric value short enough for a table cell: ``12.5``, ``10``, ``0.0123``, ``<unknown>``.

    Integral values print without a decimal point; others keep two decimals from 1 up and three
    significant digits below 1, so small per-pod rates do not round to 0.
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return UNKNOWN
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
        if "e" in text:
            return text
    return text.rstrip("0").rstrip(".") if "." in text else text


# Binary suffixes kubectl users read memory in, largest first.
_BINARY_UNITS = (("Ti", 1024.0**4), ("Gi", 1024.0**3), ("Mi", 1024.0**2), ("Ki", 1024.0))


def format_quantity(value: float | None, resource: str) -> str:
    """A usage or request as Kubernetes writes it: ``250m``/``2`` cores, ``200Mi``/``1.5Gi`` bytes.

    CPU is shown in millicores rounded up, as the HPA rounds a quantity's ``MilliValue``; memory in
    the largest binary unit it reaches, with up to three significant digits.
    """
    if value is None or not math.isfinite(value):
        return UNKNOWN
    if resource == "cpu":
        if float(value).is_integer():
            return str(int(value))
        return f"{math.ceil(round(value * 1000, 6))}m"
    for suffix, size in _BINARY_UNITS:
        if abs(value) >= size:
            return f"{format_number(float(f'{value / size:.3g}'))}{suffix}"
    return format_number(value)


def metric_currents(last_decision: Mapping[str, Any] | None) -> dict[str, float | None]:
    """Metric name -> current value from a stored last decision's ``metrics`` (decide output)."""
    found: dict[str, float | None] = {}
    if not last_decision:
        return found
    metrics = last_decision.get("metrics")
    if not isinstance(metrics, list):
        return found
    for item in metrics:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            current = item.get("current")
            found[item["name"]] = float(current) if isinstance(current, int | float) else None
    return found


def metric_averages(last_decision: Mapping[str, Any] | None) -> dict[str, float]:
    """Metric name -> raw per-pod average (``averageValue``) of Utilization metrics in a last decision."""
    found: dict[str, float] = {}
    for item in (last_decision or {}).get("metrics") or ():
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            average = item.get("averageValue")
            if isinstance(average, int | float) and not isinstance(average, bool):
                found[item["name"]] = float(average)
    return found


@dataclass(frozen=True)
class TargetCell:
    """One metric's current value against its target, as TARGETS shows it."""

    metric: str
    current: float | None
    target: float
    # Object/External metrics with an AverageValue target: kubectl marks them "(avg)", because
    # the value shown is the metric divided by the pod count.
    average: bool = False
    # Resource/ContainerResource metrics: the resource (cpu, memory), shown first as kubectl
    # does ("cpu: 45%/60%"), and whether the numbers are percentages of requests.
    resource: str | None = None
    utilization: bool = False

    @property
    def text(self) -> str:
        """``12.5/10``, ``65/40 (avg)``, ``cpu: 45%/60%`` or ``memory: 200Mi/256Mi``."""
        if self.resource is None:
            return f"{format_number(self.current)}/{format_number(self.target)}{' (avg)' if self.average else ''}"
        if self.utilization:
            current = UNKNOWN if self.current is None else f"{format_number(round(self.current))}%"
            return f"{self.resource}: {current}/{format_number(self.target)}%"
        return (
            f"{self.resource}: {format_quantity(self.current, self.resource)}/"
            f"{format_quantity(self.target, self.resource)}"
        )


def target_cells(specs: Sequence[MetricSpec], currents: Mapping[str, float | None]) -> list[TargetCell]:
    """One ``TargetCell`` per metric of the rule, in rule order; current None when unknown."""
    return [
        TargetCell(
            spec.name,
            currents.get(spec.name),
            spec.target.amount,
            spec.type in ("Object", "External") and spec.target.type == "AverageValue",
            spec.resource if spec.type in ("Resource", "ContainerResource") else None,
            spec.target.type == "Utilization",
        )
        for spec in specs
    ]


def format_targets(cells: Sequence[TargetCell], shown: int = TARGETS_SHOWN) -> str:
    """The TARGETS cell: ``12.5/10, <unknown>/40 (avg)`` and ``+ N more...`` past ``shown`` metrics.

    Upstream: formatHPAMetrics in kubectl's printers (current/target per metric, two at most,
    ``(avg)`` after Object/External AverageValue targets, ``cpu: 45%/60%`` for Resource metrics).
    """
    if not cells:
        return NONE
    texts = [c.text for c in cells]
    text = ", ".join(texts[:shown])
    if len(texts) > shown:
        text += f" + {len(texts) - shown} more..."
    return text


def unified_diff(before: str | None, after: str, name: str) -> str:
    """A unified diff from ``before`` (None: does not exist) to ``after``, labelled with ``name``.

    Returns
    -------
    str
        The diff with a final newline, or "" when the texts are equal.
    """
    old = [] if before is None else _lines(before)
    new = _lines(after)
    lines = difflib.unified_diff(
        old,
        new,
        fromfile="/dev/null" if before is None else f"{name} (in SSM)",
        tofile=f"{name} (to write)",
        lineterm="",
    )
    text = "\n".join(lines)
    return text + "\n" if text else ""


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n") if text else []
