"""``ampscaler describe RULE``: one rule in detail with its conditions, decisions and errors, like ``kubectl describe hpa``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from ampscaler import contract
from ampscaler.adapters.rules_ssm import SsmRuleStore
from ampscaler.cli.common import (
    add_cluster_option,
    add_prefix_option,
    add_table_option,
    aws_session,
    fail,
    rule_store,
    state_store,
    warn,
)
from ampscaler.cli.formatting import (
    NONE,
    UNKNOWN,
    age,
    format_number,
    format_quantity,
    metric_averages,
    render_table,
    timestamp,
)
from ampscaler.cli.get import RuleView, load_views
from ampscaler.errors import AmpscalerError, RuleInvalidError
from ampscaler.model import MetricSpec, Rule, ScalingRules
from ampscaler.resource_queries import STACK_DEFAULT_SERIES, ResolvedSeries, resource_query
from ampscaler.rule import parse_rule
from ampscaler.settings import Settings

EXAMPLES = ["ampscaler describe shop/web                        # conditions, last decision, errors"]

# Invalid versions listed, newest first (SSM keeps the last 100 versions of a parameter).
INVALID_VERSIONS_SHOWN = 5
_LABEL_WIDTH = 20


@dataclass(frozen=True)
class InvalidVersion:
    """One version of the rule's parameter that fails validation."""

    version: int
    errors: tuple[str, ...]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``describe`` command."""
    parser = subparsers.add_parser(
        "describe",
        help="show one rule with its conditions, last decision and errors, like kubectl describe hpa",
        description="Describe one rule: spec from SSM, status from the scaler's state table.",
    )
    parser.add_argument("rule", metavar="RULE", help="rule name (the SSM parameter under --prefix)")
    add_prefix_option(parser)
    add_table_option(parser)
    add_cluster_option(parser)
    parser.set_defaults(func=run)


def invalid_versions(
    store: SsmRuleStore, name: str, limit: int = INVALID_VERSIONS_SHOWN
) -> list[InvalidVersion]:
    """Versions of rule ``name`` in the parameter history that do not validate, newest first.

    ``SsmRuleStore`` walks the history only to recover the newest valid version, so the listing
    is read here.

    Raises
    ------
    AmpscalerError
        The history cannot be read (the message names ssm:GetParameterHistory).
    """
    parameter = store.parameter_name(name)
    found: list[InvalidVersion] = []
    try:
        versions = sorted(_history(store, parameter), key=lambda item: item[0], reverse=True)
    except (ClientError, BotoCoreError) as exc:
        raise AmpscalerError(
            f"cannot read the history of {parameter}: {exc} (needs ssm:GetParameterHistory)"
        ) from exc
    for version, value in versions:
        try:
            parse_rule(value, name=name, default_cluster=store.default_cluster)
        except RuleInvalidError as exc:
            found.append(InvalidVersion(version, tuple(exc.errors) or (str(exc),)))
        if len(found) >= limit:
            break
    return found


def _history(store: SsmRuleStore, parameter: str) -> Iterator[tuple[int, str]]:
    paginator = store.client.get_paginator("get_parameter_history")
    for page in paginator.paginate(Name=parameter, WithDecryption=False):
        for entry in page.get("Parameters", []):
            yield int(entry.get("Version", 0)), str(entry.get("Value", ""))


def _line(label: str, value: object) -> str:
    return f"{label + ':':<{_LABEL_WIDTH}}{value}"


def _seconds(value: int | None, default: str) -> str:
    return default if value is None else f"{value} seconds"


def _behavior_lines(rule: Rule) -> list[str]:
    if rule.behavior is None:
        # Upstream: normalizeDesiredReplicas, the pre-behavior limits of the controller.
        legacy = (
            "<none> (controller limits: scale up to at most max(2 x current, 4) per evaluation; "
            "scale down after the controller's 300 seconds stabilization window)"
        )
        return [_line("Behavior", legacy)]
    lines = ["Behavior:"]
    for title, rules in (("Scale Up", rule.behavior.scale_up), ("Scale Down", rule.behavior.scale_down)):
        lines.extend(_scaling_rules_lines(title, rules))
    return lines


def _scaling_rules_lines(title: str, rules: ScalingRules) -> list[str]:
    # Upstream: describeHorizontalPodAutoscalerV2's behavior section.
    lines = [f"  {title}:"]
    window = _seconds(rules.stabilization_window_seconds, "controller default (300 seconds)")
    lines.append(f"    Stabilization Window: {window}")
    lines.append(f"    Select Policy: {rules.select_policy}")
    if rules.tolerance is not None:
        lines.append(f"    Tolerance: {format_number(rules.tolerance)}")
    lines.append("    Policies:")
    type_width = max((len(p.type) for p in rules.policies), default=0)
    value_width = max((len(str(p.value)) for p in rules.policies), default=0)
    for policy in rules.policies:
        lines.append(
            f"      - Type: {policy.type:<{type_width}}  Value: {policy.value:<{value_width}}  "
            f"Period: {policy.period_seconds} seconds"
        )
    return lines


def describe_json(
    view: RuleView, invalid: list[InvalidVersion] | None, running: int | None
) -> dict[str, Any]:
    """Everything ``describe`` shows, as one JSON object."""
    rule = view.rule
    record = view.record
    state = record.state if record else None
    engine = state.engine if state else None
    return {
        "name": view.loaded.name,
        "parameter": view.loaded.parameter,
        "version": view.loaded.version,
        "runningVersion": running,
        "status": view.status,
        "errors": list(view.loaded.errors),
        "rule": dict(rule.source) if rule else None,
        "replicas": view.replicas,
        "lastEvaluated": state.last_evaluated if state else None,
        "lastScaleTime": state.last_scale_time if state else None,
        "lastDecision": dict(view.last_decision) if view.last_decision else None,
        "engineState": None if engine is None else contract.state_to_dict(engine),
        # Steady evaluations are not written, so this may be older than lastEvaluated.
        "stateWritten": None if state is None else state.written_at,
        "recentErrors": recent_errors(view),
        "invalidVersions": None
        if invalid is None
        else [{"version": v.version, "errors": list(v.errors)} for v in invalid],
    }


def recent_errors(view: RuleView) -> list[str]:
    """Problems recorded in the rule's state item: failed metrics, failing conditions, failure streak."""
    errors: list[str] = []
    decision = view.last_decision or {}
    for metric in decision.get("metrics") or []:
        if isinstance(metric, Mapping) and metric.get("error"):
            errors.append(f"metric {metric.get('name')}: {metric['error']}")
    for condition in decision.get("conditions") or []:
        if (
            isinstance(condition, Mapping)
            and not condition.get("status")
            and str(condition.get("reason", "")).startswith("Failed")
        ):
            errors.append(f"{condition.get('type')} {condition.get('reason')}: {condition.get('message')}")
    engine = view.record.state.engine if view.record else None
    if engine is not None and engine.consecutive_failures:
        errors.append(f"every metric failed in the last {engine.consecutive_failures} evaluation(s)")
    last_error = view.record.state.last_error if view.record else None
    if last_error:
        when = last_error.get("time")
        stamp = timestamp(when) if isinstance(when, int | float) else "unknown time"
        errors.append(f"{stamp}: evaluation failed: {last_error.get('message')}")
    return errors


def render(view: RuleView, invalid: list[InvalidVersion] | None, running: int | None, now: float) -> str:
    """The ``describe`` text of one rule."""
    rule = view.rule
    record = view.record
    state = record.state if record else None
    decision = view.last_decision or {}
    lines = [
        _line("Name", view.loaded.name),
        _line("Parameter", f"{view.loaded.parameter} (version {view.loaded.version})"),
        _line("Status", view.status),
    ]
    if view.loaded.errors:
        ran = f"version {running}" if running is not None else "no valid version: the rule is not evaluated"
        lines.append(_line("Running", ran))
    if rule is None:
        if invalid is None:
            lines.extend(_errors_section("Validation errors", list(view.loaded.errors)))
        lines.extend(_invalid_section(invalid))
        return "\n".join(lines)
    target = rule.target
    mode = "paused" if rule.paused else ("dry-run" if rule.dry_run else "active")
    lines += [
        _line("Reference", f"{target.reference} ({target.api_version})"),
        _line("Cluster", target.cluster or "<scaler's CLUSTER_NAME>"),
        _line("Namespace", target.namespace),
        _line("Mode", mode),
        _line("Metrics", "( current / target )"),
    ]
    currents = {cell.metric: cell.current for cell in view.targets()}
    results = {m.get("name"): m for m in decision.get("metrics") or [] if isinstance(m, Mapping)}
    averages = metric_averages(decision)
    for spec in rule.metrics:
        if spec.type in ("Resource", "ContainerResource"):
            lines.extend(_resource_metric_lines(spec, rule.target.namespace, currents, averages))
        else:
            kind = "average value" if spec.target.type == "AverageValue" else "value"
            current = format_number(currents.get(spec.name))
            lines.append(
                f'  "{spec.name}" ({spec.type} metric, {kind}):  {current} / {format_number(spec.target.amount)}'
            )
            lines.append(f"    query: {spec.query}")
        proposal = results.get(spec.name, {}).get("proposal")
        if proposal is not None:
            lines.append(f"    proposal: {proposal} replicas")
    lines += [
        _line("Min replicas", rule.min_replicas),
        _line("Max replicas", rule.max_replicas),
        _line(
            "Tolerance",
            format_number(rule.tolerance) if rule.tolerance is not None else "controller default (0.1)",
        ),
    ]
    lines.extend(_behavior_lines(rule))
    if rule.fallback is not None:
        fb = rule.fallback
        lines.append(
            _line(
                "Fallback",
                f"{fb.behavior} {fb.replicas} replicas after {fb.failure_threshold} failed evaluations",
            )
        )
    replicas = view.replicas
    desired = decision.get("to")
    lines.append(
        _line(
            "Replicas",
            f"{replicas if replicas is not None else UNKNOWN} current / "
            f"{desired if desired is not None else UNKNOWN} desired",
        )
    )
    if state is None:
        lines.append(_line("Last evaluated", f"{NONE} (no item in the state table)"))
    else:
        evaluated = state.last_evaluated
        version = (
            f", parameter version {state.parameter_version}" if state.parameter_version is not None else ""
        )
        lines.append(_line("Last evaluated", f"{timestamp(evaluated)} ({age(evaluated, now)} ago){version}"))
        scaled = state.last_scale_time
        lines.append(
            _line("Last scale time", f"{timestamp(scaled)} ({age(scaled, now)} ago)" if scaled else NONE)
        )
    lines.extend(_conditions_section(decision))
    lines.extend(_decision_section(decision, now))
    lines.extend(_history_section(view, now))
    lines.extend(_errors_section("Recent errors", recent_errors(view)))
    if view.loaded.errors and invalid is None:
        # Without the history, at least the current version's errors.
        lines.extend(
            _errors_section(f"Validation errors (version {view.loaded.version})", list(view.loaded.errors))
        )
    if record is not None and record.state.written_at is not None:
        # Steady evaluations are not written: this can be older than "Last evaluated".
        written = record.state.written_at
        lines.append(_line("State written", f"{timestamp(written)} ({age(written, now)} ago)"))
    lines.extend(_invalid_section(invalid))
    return "\n".join(lines)


def _conditions_section(decision: Mapping[str, Any]) -> list[str]:
    conditions = [c for c in decision.get("conditions") or [] if isinstance(c, Mapping)]
    if not conditions:
        return [_line("Conditions", NONE)]
    rows = [
        [
            str(c.get("type", "")),
            "True" if c.get("status") else "False",
            str(c.get("reason", "")),
            str(c.get("message", "")),
        ]
        for c in conditions
    ]
    headers = ("Type", "Status", "Reason", "Message")
    dashes = [["-" * len(h) for h in headers]]
    return ["Conditions:", render_table(headers, dashes + rows, indent="  ")]


def _decision_section(decision: Mapping[str, Any], now: float) -> list[str]:
    if not decision:
        return [_line("Last decision", NONE)]
    at = decision.get("time")
    when = f"{timestamp(at)} ({age(at, now)} ago)" if isinstance(at, int | float) else UNKNOWN
    patched = "patched" if decision.get("patched") else "not patched"
    return [
        "Last decision:",
        f"  Time:    {when}",
        f"  Change:  {decision.get('from')} -> {decision.get('to')} "
        f"(action {decision.get('action')}, mode {decision.get('mode')}, {patched})",
        f"  Reason:  {decision.get('reason')}",
    ]


def _history_section(view: RuleView, now: float) -> list[str]:
    engine = view.record.state.engine if view.record else None
    if engine is None:
        return []
    lines: list[str] = []
    if engine.recommendations:
        lines.append("Recommendations (stabilization window, newest first):")
        rows = [
            [timestamp(r.time), f"{age(r.time, now)} ago", str(r.replicas)]
            for r in sorted(engine.recommendations, key=lambda r: r.time, reverse=True)
        ]
        lines.append(render_table(("Time", "Age", "Replicas"), rows, indent="  "))
    events = [("up", e) for e in engine.scale_up_events] + [("down", e) for e in engine.scale_down_events]
    if events:
        lines.append("Scale events (rate-limit periods, newest first):")
        rows = [
            [timestamp(e.time), f"{age(e.time, now)} ago", direction, str(e.change)]
            for direction, e in sorted(events, key=lambda item: item[1].time, reverse=True)
        ]
        lines.append(render_table(("Time", "Age", "Direction", "Pods"), rows, indent="  "))
    return lines


def _errors_section(title: str, errors: list[str]) -> list[str]:
    if not errors:
        return [_line(title, NONE)]
    return [f"{title}:", *(f"  {e}" for e in errors)]


def _invalid_section(invalid: list[InvalidVersion] | None) -> list[str]:
    if invalid is None:
        return [_line("Invalid versions", UNKNOWN)]
    if not invalid:
        return [_line("Invalid versions", NONE)]
    lines = ["Invalid versions (newest first):"]
    for item in invalid:
        lines.append(f"  version {item.version}:")
        lines.extend(f"    {e}" for e in item.errors)
    return lines


def run(
    args: argparse.Namespace,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Describe one rule; return the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        session = aws_session(args)
        rules = rule_store(args, session)
        view = load_views(rules, state_store(args, session), args.rule, err, command="describe")[0]
    except AmpscalerError as exc:
        return fail("describe", exc, err)
    invalid: list[InvalidVersion] | None
    try:
        invalid = invalid_versions(rules, view.loaded.name)
    except AmpscalerError as exc:
        warn("describe", exc, err)
        invalid = None
    running = rules.running_version(view.loaded.name)
    if getattr(args, "output", "table") == "json":
        print(json.dumps(describe_json(view, invalid, running), indent=2, default=str), file=out)
    else:
        print(render(view, invalid, running, clock()), file=out)
    return 0


def _resource_metric_lines(
    spec: MetricSpec, namespace: str, currents: Mapping[str, float | None], averages: Mapping[str, float]
) -> list[str]:
    """A Resource/ContainerResource metric as ``kubectl describe hpa`` shows one.

    ``resource cpu on pods  (as a percentage of request):  45% (225m) / 60%``, or the raw average
    against an AverageValue target; then the query (the default one in its namespace-wide form:
    each evaluation names the pods it listed).
    """
    resource = spec.resource or "cpu"
    where = f'of container "{spec.container}" ' if spec.type == "ContainerResource" else ""
    current = currents.get(spec.name)
    if spec.target.type == "Utilization":
        shown = UNKNOWN if current is None else f"{format_number(round(current))}%"
        average = averages.get(spec.name)
        if average is not None:
            shown += f" ({format_quantity(average, resource)})"
        head = (
            f'  "{spec.name}" (resource {resource} {where}on pods, as a percentage of request):  '
            f"{shown} / {format_number(spec.target.amount)}%"
        )
    else:
        head = (
            f'  "{spec.name}" (resource {resource} {where}on pods):  '
            f"{format_quantity(current, resource)} / {format_quantity(spec.target.amount, resource)}"
        )
    if spec.query.strip():
        query = spec.query
    else:
        stack = _stack_series()
        query = f"(default, for the listed pods) {resource_query(spec, namespace, None, stack).query}"
    return [head, f"    query: {query}"]


def _stack_series() -> ResolvedSeries:
    """The stack's series settings as the CLI's environment has them (defaults when unset or invalid)."""
    try:
        return Settings.from_env().resource_series
    except AmpscalerError:
        return STACK_DEFAULT_SERIES
