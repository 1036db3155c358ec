"""Shared CLI formatting: kubectl-style tables, ages (HumanDuration), numbers, TARGETS cells, diffs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ampscaler.cli.formatting import (
    TargetCell,
    age,
    format_number,
    format_quantity,
    format_targets,
    human_duration,
    metric_averages,
    metric_currents,
    render_table,
    target_cells,
    timestamp,
    unified_diff,
)
from ampscaler.model import MetricSpec, MetricTarget


@dataclass(frozen=True)
class DurationCase:
    name: str
    seconds: float
    expected: str


# Upstream: k8s.io/apimachinery/pkg/util/duration HumanDuration and its table test.
DURATION_CASES = [
    DurationCase("two seconds in the future is invalid", -2, "<invalid>"),
    DurationCase("one second in the future counts as now", -1, "0s"),
    DurationCase("zero", 0, "0s"),
    DurationCase("fractions are truncated", 59.9, "59s"),
    DurationCase("seconds up to two minutes", 119, "119s"),
    DurationCase("two minutes", 120, "2m"),
    DurationCase("minutes and seconds below ten minutes", 5 * 60 + 30, "5m30s"),
    DurationCase("whole minutes from ten minutes", 10 * 60 + 30, "10m"),
    DurationCase("minutes up to three hours", 179 * 60, "179m"),
    DurationCase("three hours", 3 * 3600, "3h"),
    DurationCase("hours and minutes below eight hours", 7 * 3600 + 59 * 60, "7h59m"),
    DurationCase("whole hours from eight hours", 8 * 3600 + 30 * 60, "8h"),
    DurationCase("hours up to two days", 47 * 3600, "47h"),
    DurationCase("days and hours below eight days", 3 * 86400 + 4 * 3600, "3d4h"),
    DurationCase("whole days", 2 * 86400, "2d"),
    DurationCase("days up to two years", 400 * 86400, "400d"),
    DurationCase("years and days", 2 * 365 * 86400 + 10 * 86400, "2y10d"),
    DurationCase("whole years from eight years", 9 * 365 * 86400 + 3 * 86400, "9y"),
]


@pytest.mark.parametrize("case", DURATION_CASES, ids=lambda c: c.name)
def test_human_duration_matches_kubectl(case: DurationCase) -> None:
    assert human_duration(case.seconds) == case.expected


def test_age_of_nothing_is_none_and_of_a_time_is_the_duration_since() -> None:
    assert age(None, 1000.0) == "<none>"
    assert age(1000.0 - 300, 1000.0) == "5m"
    assert age(1000.0 - 7200, 1000.0) == "120m", "kubectl keeps minutes up to three hours"
    assert age(1000.0 - 5 * 3600, 1000.0) == "5h"


def test_timestamp_is_rfc3339_utc() -> None:
    assert timestamp(1_700_000_000.9) == "2023-11-14T22:13:20Z"
    assert timestamp(None) == "<none>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10.0, "10"),
        (12.5, "12.5"),
        (12.345, "12.35"),
        (1234567.0, "1234567"),
        (0.5, "0.5"),
        (0.012345, "0.0123"),
        (0.0, "0"),
        (-3.25, "-3.25"),
        (None, "<unknown>"),
        (float("nan"), "<unknown>"),
    ],
)
def test_format_number_short_and_exact_enough(value: float | None, expected: str) -> None:
    assert format_number(value) == expected


def _spec(
    name: str, amount: float, metric_type: str = "Pods", target_type: str = "AverageValue"
) -> MetricSpec:
    target = (
        MetricTarget("AverageValue", average_value=amount)
        if target_type == "AverageValue"
        else MetricTarget("Value", value=amount)
    )
    return MetricSpec(name=name, type=metric_type, query="q", target=target)  # type: ignore[arg-type]


def test_targets_current_over_target_with_unknown_for_missing_values() -> None:
    specs = [_spec("rps", 10), _spec("queue", 40, "External", "Value")]
    decision = {"metrics": [{"name": "rps", "current": 12.5}, {"name": "queue", "current": None}]}

    cells = target_cells(specs, metric_currents(decision))

    assert cells == [TargetCell("rps", 12.5, 10.0), TargetCell("queue", None, 40.0)]
    assert format_targets(cells) == "12.5/10, <unknown>/40"


def test_targets_mark_object_and_external_average_values_avg_like_kubectl() -> None:
    specs = [_spec("backlog", 40, "External"), _spec("lag", 5, "Object"), _spec("rps", 10, "Pods")]
    cells = target_cells(specs, {"backlog": 65.0, "lag": 1.5})
    assert [c.average for c in cells] == [True, True, False]
    assert format_targets(cells, shown=3) == "65/40 (avg), 1.5/5 (avg), <unknown>/10"


def test_targets_without_a_decision_are_all_unknown() -> None:
    cells = target_cells([_spec("rps", 10)], metric_currents(None))
    assert format_targets(cells) == "<unknown>/10"


def test_targets_show_two_metrics_then_count_the_rest_like_kubectl() -> None:
    cells = [
        TargetCell("a", 1.0, 2.0),
        TargetCell("b", 3.0, 4.0),
        TargetCell("c", None, 5.0),
        TargetCell("d", None, 6.0),
    ]
    assert format_targets(cells) == "1/2, 3/4 + 2 more..."
    assert format_targets([]) == "<none>"


def test_metric_currents_ignores_malformed_entries() -> None:
    decision = {
        "metrics": [{"name": "a", "current": 1}, {"current": 2.0}, "junk", {"name": "b", "current": "x"}]
    }
    assert metric_currents(decision) == {"a": 1.0, "b": None}
    assert metric_currents({"metrics": "not a list"}) == {}


def test_render_table_aligns_columns_three_spaces_apart_without_trailing_blanks() -> None:
    text = render_table(("NAME", "REPLICAS", "STATUS"), [["web", "3", "ok"], ["queue-worker", "12", ""]])
    assert text.splitlines() == [
        "NAME           REPLICAS   STATUS",
        "web            3          ok",
        "queue-worker   12",
    ]


def test_render_table_indents_every_line() -> None:
    assert render_table(("A", "B"), [["1", "2"]], indent="  ").splitlines() == ["  A   B", "  1   2"]


def test_unified_diff_of_a_new_parameter_adds_every_line() -> None:
    diff = unified_diff(None, '{\n  "a": 1\n}\n', "/r/web")
    assert diff.splitlines() == [
        "--- /dev/null",
        "+++ /r/web (to write)",
        "@@ -0,0 +1,3 @@",
        "+{",
        '+  "a": 1',
        "+}",
    ]


def test_unified_diff_shows_only_the_changed_line_and_nothing_when_equal() -> None:
    before = '{\n  "a": 1,\n  "b": 2\n}\n'
    after = '{\n  "a": 1,\n  "b": 3\n}\n'
    lines = unified_diff(before, after, "/r/web").splitlines()
    assert lines[:2] == ["--- /r/web (in SSM)", "+++ /r/web (to write)"]
    assert [line for line in lines if line[:1] in "+-" and not line.startswith(("---", "+++"))] == [
        '-  "b": 2',
        '+  "b": 3',
    ]
    assert unified_diff(before, before, "/r/web") == ""


def resource_metric(
    name: str, resource: str, target: MetricTarget, container: str | None = None
) -> MetricSpec:
    return MetricSpec(
        name=name,
        type="ContainerResource" if container else "Resource",
        query="",
        target=target,
        resource=resource,  # type: ignore[arg-type]
        container=container,
    )


def test_targets_show_resource_utilization_and_quantities_like_kubectl_get_hpa() -> None:
    specs = [
        resource_metric("cpu", "cpu", MetricTarget(type="Utilization", average_utilization=60)),
        resource_metric(
            "memory-app", "memory", MetricTarget(type="AverageValue", average_value=256 * 1024.0**2), "app"
        ),
    ]
    cells = target_cells(specs, {"cpu": 45.0, "memory-app": 200 * 1024.0**2})
    assert format_targets(cells) == "cpu: 45%/60%, memory: 200Mi/256Mi"
    assert format_targets(target_cells(specs, {})) == "cpu: <unknown>/60%, memory: <unknown>/256Mi"


@pytest.mark.parametrize(
    ("value", "resource", "expected"),
    [
        (0.25, "cpu", "250m"),
        (2.0, "cpu", "2"),
        # Millicores round up, as a quantity's MilliValue does.
        (0.2251, "cpu", "226m"),
        (200 * 1024.0**2, "memory", "200Mi"),
        (1.5 * 1024.0**3, "memory", "1.5Gi"),
        (512.0, "memory", "512"),
        (None, "cpu", "<unknown>"),
    ],
)
def test_format_quantity_as_kubernetes_writes_it(value: float | None, resource: str, expected: str) -> None:
    assert format_quantity(value, resource) == expected


def test_metric_averages_read_the_raw_average_of_utilization_metrics() -> None:
    decision = {
        "metrics": [{"name": "cpu", "current": 45, "averageValue": 0.225}, {"name": "rps", "current": 3}]
    }
    assert metric_averages(decision) == {"cpu": 0.225}
    assert metric_averages(None) == {}
