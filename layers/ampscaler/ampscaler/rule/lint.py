"""Semantic checks beyond the format: PromQL structure, Pods grouping, settings without effect."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from ampscaler.model import (
    DEFAULT_COOLDOWN_PERIOD_SECONDS,
    DEFAULT_POD_LABEL,
    Rule,
)
from ampscaler.rule.limits import (
    LABEL_NAME_RE,
)
from ampscaler.rule.messages import (
    ErrorList,
    child_path,
    index_path,
)

_BY_RE: Final = re.compile(r"\bby\s*\(([^)]*)\)")
_WITHOUT_RE: Final = re.compile(r"\bwithout\s*\(([^)]*)\)")
_PAIRS: Final = {")": "(", "]": "[", "}": "{"}


def check_promql_structure(query: str) -> list[str]:
    """A light structural check of PromQL: balanced (), [], {} and closed string quotes.

    Not a parser: a query that passes may still be rejected by Prometheus; one that fails here
    certainly will be.
    """
    problems: list[str] = []
    stack: list[tuple[str, int]] = []
    i = 0
    while i < len(query):
        ch = query[i]
        if ch in "\"'`":
            end = i + 1
            while end < len(query) and query[end] != ch:
                end += 2 if query[end] == "\\" and ch != "`" else 1
            if end >= len(query):
                problems.append(f"unterminated {ch} string starting at column {i + 1}")
                return problems
            i = end + 1
            continue
        if ch == "#":
            # PromQL comment to end of line.
            newline = query.find("\n", i)
            i = len(query) if newline < 0 else newline
            continue
        if ch in "([{":
            stack.append((ch, i))
        elif ch in ")]}":
            if not stack or stack[-1][0] != _PAIRS[ch]:
                problems.append(f"unexpected {ch!r} at column {i + 1}")
                return problems
            stack.pop()
        i += 1
    for opener, position in stack:
        problems.append(f"unclosed {opener!r} from column {position + 1}")
    return problems


def _groups_by_pod(query: str, pod_label: str) -> bool:
    """True when the query keeps ``pod_label`` on its result series as far as grouping goes."""
    for match in _BY_RE.finditer(query):
        if pod_label in [x.strip() for x in match.group(1).split(",")]:
            return True
    withouts = _WITHOUT_RE.findall(query)
    return bool(withouts) and all(pod_label not in [x.strip() for x in w.split(",")] for w in withouts)


def _lint_query(errors: ErrorList, path: str, query: str, metric_type: object, pod_label: str) -> None:
    for problem in check_promql_structure(query):
        errors.add(path, problem)
    if metric_type == "Pods" and not _groups_by_pod(query, pod_label):
        errors.add(
            path,
            f"a Pods query must return one series per pod, grouped by the {pod_label!r} label",
            f"aggregate with sum by ({pod_label}) (...)",
        )


def lint_document(doc: object, path: str = "") -> list[str]:
    """The PromQL checks of ``lint_rule`` on a raw document, whatever else is wrong with it.

    ``ampscaler validate`` reports these next to the format errors, so a document with a typo
    elsewhere still shows its query problems (every problem at once). Metrics whose query, type
    or podLabel is itself malformed are skipped: the format check already reports them.
    """
    errors = ErrorList()
    metrics = doc.get("metrics") if isinstance(doc, Mapping) else None
    if not isinstance(metrics, list):
        return []
    for i, metric in enumerate(metrics):
        if not isinstance(metric, Mapping):
            continue
        query = metric.get("query")
        pod_label = metric.get("podLabel", DEFAULT_POD_LABEL)
        if not isinstance(query, str) or not query.strip():
            continue
        if not isinstance(pod_label, str) or not LABEL_NAME_RE.fullmatch(pod_label):
            pod_label = None
        metric_type = metric.get("type") if pod_label is not None else None
        _lint_query(
            errors,
            child_path(index_path(child_path(path, "metrics"), i), "query"),
            query,
            metric_type,
            pod_label or DEFAULT_POD_LABEL,
        )
    return errors.items


def lint_rule(rule: Rule, path: str = "") -> tuple[list[str], list[str]]:
    """Semantic checks beyond the format: (errors, warnings), each ``json.path: message (hint)``.

    Errors: malformed PromQL structure; a Pods query that does not group by its pod label (an
    aggregation without ``by (pod)`` collapses the per-pod series the Pods type needs).
    Warnings: settings that are valid but have no effect or rarely do what was meant.
    """
    errors = ErrorList()
    warnings = ErrorList()

    def at(key: str) -> str:
        return child_path(path, key)

    for i, spec in enumerate(rule.metrics):
        metric_path = index_path(at("metrics"), i)
        _lint_query(errors, child_path(metric_path, "query"), spec.query, spec.type, spec.pod_label)
        series = spec.series
        if spec.query and series is not None and (series.cpu_metric or series.memory_metric):
            # The series name only feeds the default query; labels and window still say how to
            # read the custom query's result.
            warnings.add(
                child_path(metric_path, "series.metric"),
                "has no effect with a custom query",
                "remove it, or remove query to use the default query",
            )
        if rule.min_replicas > 0 and spec.activation_threshold > 0:
            warnings.add(
                child_path(metric_path, "activationThreshold"),
                "only matters when minReplicas is 0",
            )
    if rule.min_replicas > 0 and rule.cooldown_period_seconds != DEFAULT_COOLDOWN_PERIOD_SECONDS:
        warnings.add(at("cooldownPeriodSeconds"), "only matters when minReplicas is 0")
    if rule.behavior is not None:
        up, down = rule.behavior.scale_up, rule.behavior.scale_down
        if up.select_policy == "Disabled":
            warnings.add(at("behavior.scaleUp.selectPolicy"), "Disabled: this rule never scales up")
        if down.select_policy == "Disabled":
            warnings.add(at("behavior.scaleDown.selectPolicy"), "Disabled: this rule never scales down")
        down_window = down.stabilization_window_seconds
        if (
            up.stabilization_window_seconds
            and down_window is not None
            and up.stabilization_window_seconds > down_window
        ):
            warnings.add(
                at("behavior.scaleUp.stabilizationWindowSeconds"),
                f"longer than the scale-down window ({down_window}s)",
                "the rule would react faster to falling load than to rising load",
            )
    if rule.fallback is not None and rule.fallback.behavior == "static":
        replicas = rule.fallback.replicas
        if not rule.min_replicas <= replicas <= rule.max_replicas:
            warnings.add(
                at("fallback.replicas"),
                f"{replicas} is outside minReplicas..maxReplicas ({rule.min_replicas}..{rule.max_replicas})",
            )
    return errors.items, warnings.items
