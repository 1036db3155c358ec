"""Shaping range-query results into history, and chunking below the 11,000-point limit."""

from __future__ import annotations

import itertools
import math

import pytest

from ampscaler.adapters.amp import RangeSeries
from ampscaler.backtest.fetch import chunks, fetch_history, pods_history, value_history
from ampscaler.backtest.simulate import PodsHistory, TimeGrid, ValueHistory
from ampscaler.errors import MetricQueryError
from tests.unit.backtest.helpers import external_rule, pods_rule

GRID = TimeGrid(1000, 1060, 15)  # 1000, 1015, 1030, 1045, 1060


def test_pods_history_averages_per_step_and_counts_series_as_pods():
    series = [
        RangeSeries({"pod": "a"}, ((1000, 10.0), (1015, 20.0), (1030, 30.0))),
        RangeSeries({"pod": "b"}, ((1000, 30.0), (1030, float("nan")))),
        # Same pod, second series (another container): added to a's value.
        RangeSeries({"pod": "a", "container": "x"}, ((1000, 2.0),)),
    ]
    h = pods_history(pods_rule().metric("rps"), GRID, series)
    assert list(h.pod_count) == [2, 1, 1, 0, 0]
    assert list(h.average) == [21.0, 20.0, 30.0, None, None]


def test_value_history_sums_series_and_leaves_gaps():
    series = [RangeSeries({"q": "a"}, ((1000, 1.0), (1045, 4.0))), RangeSeries({"q": "b"}, ((1000, 2.0),))]
    h = value_history(external_rule().metric("backlog"), GRID, series)
    assert list(h.values) == [3.0, None, None, 4.0, None]


def test_value_history_object_query_with_two_series_is_an_error():
    from ampscaler.rule import parse_rule

    rule = parse_rule(
        {
            "apiVersion": "ampscaler/v1",
            "target": {"cluster": "c", "namespace": "n", "kind": "Deployment", "name": "w"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {"name": "o", "type": "Object", "query": "x", "target": {"type": "Value", "value": 1}}
            ],
        }
    )
    with pytest.raises(MetricQueryError, match="one series"):
        value_history(rule.metric("o"), GRID, [RangeSeries({"a": "1"}, ()), RangeSeries({"a": "2"}, ())])


@pytest.mark.parametrize(
    ("days", "expected_chunks"),
    [(1, 1), (1.9, 1), (2, 2), (7, 4)],  # 11,000 steps of 15 s = 45.8 h
)
def test_chunks_stay_under_11000_points_and_cover_the_grid_exactly(days, expected_chunks):
    grid = TimeGrid.half_open(0, days * 86400, 15)
    windows = chunks(grid)
    assert len(windows) == expected_chunks
    assert windows[0][0] == grid.start and windows[-1][1] == grid.end
    points = [round((end - start) / 15) + 1 for start, end in windows]
    assert max(points) <= 11_000
    assert sum(points) == len(grid)
    for (_, prev_end), (start, _) in itertools.pairwise(windows):
        assert start == prev_end + 15


class FakeClient:
    """Serves a synthetic per-pod series: 3 pods at value t/1000 at every asked step."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float, float]] = []

    def query_range(self, query, start, end, step):
        self.calls.append((query, start, end, step))
        n = round((end - start) / step) + 1
        ts = [start + k * step for k in range(n)]
        if "by (pod)" in query:
            return [RangeSeries({"pod": f"p{i}"}, tuple((t, t / 1000) for t in ts)) for i in range(3)]
        return [RangeSeries({}, tuple((t, 1.0) for t in ts))]


def test_fetch_history_joins_chunks_into_one_history_per_metric():
    grid = TimeGrid.half_open(0, 3 * 86400, 15)
    client = FakeClient()
    progress: list[tuple[int, int]] = []
    history = fetch_history(client, pods_rule(), grid, progress=lambda d, t: progress.append((d, t)))
    assert len(client.calls) == math.ceil(len(grid) / 11_000)
    h = history["rps"]
    assert isinstance(h, PodsHistory)
    assert len(h.average) == len(grid)
    assert set(h.pod_count) == {3}
    assert h.average[-1] == pytest.approx(grid.end / 1000)
    assert progress[-1] == (len(client.calls), len(client.calls))


def test_fetch_history_external_metric_gives_value_history():
    history = fetch_history(FakeClient(), external_rule(), GRID)
    h = history["backlog"]
    assert isinstance(h, ValueHistory) and list(h.values) == [1.0] * 5


def test_fetch_history_names_the_metric_whose_query_failed():
    class Failing:
        def query_range(self, query, start, end, step):
            raise MetricQueryError("HTTP 422: bad_data")

    with pytest.raises(MetricQueryError, match=r"metric 'rps'.*bad_data"):
        fetch_history(Failing(), pods_rule(), GRID)
