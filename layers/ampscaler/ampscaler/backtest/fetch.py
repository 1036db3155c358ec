"""Reads a rule's metric history with Prometheus ``query_range`` and shapes it for the replay.

Long ranges are split into chunks below Prometheus' 11,000-points-per-series limit; ``Pods``
queries keep one series per pod, and the number of series at each step is the observed pod count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from ampscaler.adapters.amp import AmpMetricsSource, RangeSeries
from ampscaler.backtest.simulate import MetricHistory, PodsHistory, TimeGrid, ValueHistory
from ampscaler.errors import MetricQueryError
from ampscaler.model import MetricSpec, Rule
from ampscaler.resource_queries import STACK_DEFAULT_SERIES, ResolvedSeries, backtest_query

# Prometheus rejects a range query whose result would exceed 11,000 points per series.
MAX_POINTS_PER_QUERY = 11_000

ProgressFn = Callable[[int, int], None]


class RangeClient(Protocol):
    """Anything that can run a PromQL range query (a Prometheus server, AMP)."""

    def query_range(self, query: str, start: float, end: float, step: float) -> Sequence[RangeSeries]:
        """Run ``query`` over [start, end] every ``step`` seconds. Raises MetricQueryError."""
        ...


class AmpRangeClient:
    """``RangeClient`` over ``AmpMetricsSource.query_range``: same URL choice, SigV4, retries, messages.

    Parameters
    ----------
    source:
        The adapter (``--workspace-id``/``--region`` become its workspace and region).
    rule:
        Picks the target like a live tick does: the rule's ``prometheus`` block, else the
        adapter's workspace. Pass the rule with ``prometheus.url`` replaced for ``--url``.
    """

    def __init__(self, source: AmpMetricsSource, rule: Rule | None) -> None:
        self.source = source
        self.rule = rule

    def query_range(self, query: str, start: float, end: float, step: float) -> Sequence[RangeSeries]:
        """Run one range query; see ``RangeClient.query_range``."""
        return self.source.query_range(query, start, end, step, rule=self.rule)


def chunks(grid: TimeGrid, max_points: int = MAX_POINTS_PER_QUERY) -> list[tuple[float, float]]:
    """(start, end) windows covering ``grid``, each at most ``max_points`` grid points long."""
    n = len(grid)
    out: list[tuple[float, float]] = []
    for first in range(0, n, max_points):
        last = min(n, first + max_points) - 1
        out.append((grid.start + first * grid.step, grid.start + last * grid.step))
    return out


def _index(grid: TimeGrid, at: float) -> int | None:
    k = round((at - grid.start) / grid.step)
    return k if 0 <= k < len(grid) else None


def pods_history(
    spec: MetricSpec, grid: TimeGrid, series: Sequence[RangeSeries], pod_label: str | None = None
) -> PodsHistory:
    """Per-step per-pod average and pod count of a ``Pods`` query (series keyed by ``podLabel``).

    Also a Resource metric's usage query, keyed by ``pod_label`` (its series' pod label). Series
    of the same pod are added up (they are one pod's value to the HPA); NaN samples count as
    missing.
    """
    n = len(grid)
    label = pod_label or spec.pod_label
    per_pod: dict[str, list[float | None]] = {}
    for s in series:
        pod = s.labels.get(label, "")
        values = per_pod.setdefault(pod, [None] * n)
        for t, v in s.samples:
            k = _index(grid, t)
            if k is None or math.isnan(v):
                continue
            prev = values[k]
            values[k] = v if prev is None else prev + v
    totals = [0.0] * n
    counts = [0] * n
    for pod_values in per_pod.values():
        for k, value in enumerate(pod_values):
            if value is not None:
                totals[k] += value
                counts[k] += 1
    average: list[float | None] = [t / c if c else None for t, c in zip(totals, counts, strict=True)]
    return PodsHistory(average, counts)


def value_history(spec: MetricSpec, grid: TimeGrid, series: Sequence[RangeSeries]) -> ValueHistory:
    """Per-step value of an ``Object``/``External`` query: all series summed, as the HPA does.

    Raises
    ------
    MetricQueryError
        When an ``Object`` query returns more than one series (it must describe one object).
    """
    if spec.type == "Object" and len(series) > 1:
        raise MetricQueryError(
            f"metric {spec.name!r}: an Object query must return one series, got {len(series)}"
            " (aggregate it, e.g. with sum())"
        )
    values: list[float | None] = [None] * len(grid)
    for s in series:
        for t, v in s.samples:
            k = _index(grid, t)
            if k is None or math.isnan(v):
                continue
            prev = values[k]
            values[k] = v if prev is None else prev + v
    return ValueHistory(values)


def fetch_history(
    client: RangeClient,
    rule: Rule,
    grid: TimeGrid,
    progress: ProgressFn | None = None,
    max_points: int = MAX_POINTS_PER_QUERY,
    workers: int = 4,
    resource_series: ResolvedSeries = STACK_DEFAULT_SERIES,
) -> dict[str, MetricHistory]:
    """Fetch every metric of ``rule`` over ``grid``.

    Parameters
    ----------
    client:
        Runs the range queries.
    rule:
        Whose metrics to fetch.
    grid:
        The evaluation times; chunks are aligned to it.
    progress:
        Called as ``progress(done, total)`` after each chunk.
    max_points:
        Points per series per request (Prometheus refuses more than 11,000).
    workers:
        Requests in flight at once.
    resource_series:
        The stack's series settings, for the default queries of Resource metrics (run over the
        pods named after the target, ``resource_queries.backtest_query``).

    Returns
    -------
    dict[str, MetricHistory]
        ``PodsHistory`` for Pods metrics, ``ValueHistory`` for the others, by metric name.

    Raises
    ------
    MetricQueryError
        When a query fails (the whole backtest needs every chunk).
    """
    windows = chunks(grid, max_points)
    resource = {
        spec.name: backtest_query(spec, rule.target, resource_series)
        for spec in rule.metrics
        if spec.type in ("Resource", "ContainerResource")
    }
    queries = {
        spec.name: resource[spec.name].query if spec.name in resource else spec.query for spec in rule.metrics
    }
    jobs = [(spec, window) for spec in rule.metrics for window in windows]
    total = len(jobs)
    done = 0
    results: dict[str, list[RangeSeries]] = {spec.name: [] for spec in rule.metrics}
    # Chunks (and metrics) are fetched a few at a time; results are joined in submission order.
    with ThreadPoolExecutor(max_workers=max(1, min(workers, total))) as pool:
        futures = [
            (spec, pool.submit(client.query_range, queries[spec.name], start, end, grid.step))
            for spec, (start, end) in jobs
        ]
        for spec, fut in futures:
            try:
                results[spec.name].extend(fut.result())
            except MetricQueryError as exc:
                raise MetricQueryError(f"metric {spec.name!r}: {exc}") from exc
            done += 1
            if progress is not None:
                progress(done, total)
    history: dict[str, MetricHistory] = {}
    for spec in rule.metrics:
        if spec.type == "Pods":
            history[spec.name] = pods_history(spec, grid, results[spec.name])
        elif spec.name in resource:
            history[spec.name] = pods_history(spec, grid, results[spec.name], resource[spec.name].pod_label)
        else:
            history[spec.name] = value_history(spec, grid, _merge_chunks(results[spec.name]))
    return history


def _merge_chunks(series: Sequence[RangeSeries]) -> list[RangeSeries]:
    """Join the chunks of one series back together (same label set), so counting series is exact."""
    merged: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for s in series:
        merged.setdefault(tuple(sorted(s.labels.items())), []).extend(s.samples)
    return [RangeSeries(dict(key), tuple(samples)) for key, samples in merged.items()]
