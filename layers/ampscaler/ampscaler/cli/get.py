"""``ampscaler get [RULE]``: the rules in SSM joined with their state, like ``kubectl get hpa``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from ampscaler.adapters.rules_ssm import SsmRuleStore
from ampscaler.adapters.state_dynamodb import DynamoDbStateStore, StateRecord
from ampscaler.cli.common import (
    CommandError,
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
    UNKNOWN,
    TargetCell,
    age,
    format_targets,
    metric_currents,
    render_table,
    target_cells,
)
from ampscaler.errors import AmpscalerError
from ampscaler.model import Rule
from ampscaler.ports import LoadedRule

EXAMPLES = [
    "ampscaler get                                     # every rule, like kubectl get hpa",
    "ampscaler get shop/web --output json",
]

HELP_EPILOG = """\
columns:
  NAME        rule name (the SSM parameter under --prefix)
  REFERENCE   Kind/name of the scaled workload
  TARGETS     current/target per metric from the last evaluation (<unknown>: no value yet;
              (avg): an Object/External value divided by the pod count)
  MINPODS     minReplicas     MAXPODS  maxReplicas
  REPLICAS    replica count after the last evaluation
  LAST SCALE  time since the scaler last patched the workload
  STATUS      invalid (current SSM version fails validation; the last valid one keeps running),
              fallback (every metric failing past fallback.failureThreshold), paused, dry-run, ok
"""

STATUS_OK = "ok"
STATUS_INVALID = "invalid"
STATUS_FALLBACK = "fallback"
STATUS_PAUSED = "paused"
STATUS_DRY_RUN = "dry-run"

HEADERS = ("NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "LAST SCALE", "STATUS")


@dataclass(frozen=True)
class RuleView:
    """One rule as SSM holds it, joined with its item in the state table (None: never evaluated)."""

    loaded: LoadedRule
    record: StateRecord | None

    @property
    def rule(self) -> Rule | None:
        """The running rule: the current version, or the last valid one when the current is invalid."""
        return self.loaded.rule

    @property
    def last_decision(self) -> Mapping[str, Any] | None:
        """The stored last decision (time, from, to, action, mode, patched, reason, metrics, conditions)."""
        return self.record.state.last_decision if self.record is not None else None

    @property
    def replicas(self) -> int | None:
        """Replica count after the last evaluation: its target count when patched, else the count it saw."""
        decision = self.last_decision
        if not decision:
            return None
        value = decision.get("to") if decision.get("patched") else decision.get("from")
        return value if isinstance(value, int) else None

    @property
    def fallback_active(self) -> bool:
        """Whether the last evaluation ran on the rule's fallback."""
        rule = self.rule
        if rule is None or rule.fallback is None or self.record is None:
            return False
        recorded = (self.last_decision or {}).get("fallbackActive")
        if isinstance(recorded, bool):
            return recorded
        # Items written before the tick recorded the flag: infer it from the failure count.
        engine = self.record.state.engine
        if engine is not None and engine.consecutive_failures > rule.fallback.failure_threshold:
            return True
        reason = str((self.last_decision or {}).get("reason", ""))
        return reason.startswith("fallback:") or "; fallback:" in reason

    @property
    def status(self) -> str:
        """invalid, fallback, paused, dry-run or ok: the first that applies."""
        rule = self.rule
        if self.loaded.errors or rule is None:
            return STATUS_INVALID
        if self.fallback_active:
            return STATUS_FALLBACK
        if rule.paused:
            return STATUS_PAUSED
        if rule.dry_run:
            return STATUS_DRY_RUN
        return STATUS_OK

    def targets(self) -> list[TargetCell]:
        """Current against target for every metric of the running rule."""
        if self.rule is None:
            return []
        return target_cells(self.rule.metrics, metric_currents(self.last_decision))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``get`` command."""
    parser = subparsers.add_parser(
        "get",
        help="list rules with targets, replicas and status, like kubectl get hpa",
        description="List the rules in SSM joined with the scaler's state table.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("rule", nargs="?", metavar="RULE", help="one rule name (default: every rule)")
    add_prefix_option(parser)
    add_table_option(parser)
    add_cluster_option(parser)
    parser.set_defaults(func=run)


def load_views(
    rules: SsmRuleStore, states: DynamoDbStateStore, name: str | None, err: TextIO, command: str = "get"
) -> list[RuleView]:
    """Rules from SSM (one, or all under the prefix) joined with their state items.

    A state table that cannot be read is a warning, not a failure: the rules are still shown,
    with unknown values.

    Raises
    ------
    CommandError
        The rule does not exist, or SSM cannot be read.
    """
    if name is not None:
        one = rules.load_rule(name)
        if one is None:
            raise CommandError(f"rule {name!r} not found ({rules.parameter_name(name)} does not exist)")
        loaded: Sequence[LoadedRule] = [one]
    else:
        loaded = rules.load_rules()
    records: dict[str, StateRecord] = {}
    try:
        if name is not None:
            record = states.get(loaded[0].name)
            if record is not None:
                records[record.rule] = record
        elif loaded:
            records = {r.rule: r for r in states.scan_all()}
    except AmpscalerError as exc:
        warn(command, f"state not shown: {exc}", err)
    return [RuleView(lr, records.get(lr.name)) for lr in loaded]


def view_row(view: RuleView, now: float) -> list[str]:
    """The table cells of one rule."""
    rule = view.rule
    replicas = view.replicas
    record = view.record
    return [
        view.loaded.name,
        rule.target.reference if rule else UNKNOWN,
        format_targets(view.targets()) if rule else UNKNOWN,
        str(rule.min_replicas) if rule else UNKNOWN,
        str(rule.max_replicas) if rule else UNKNOWN,
        str(replicas) if replicas is not None else UNKNOWN,
        age(record.state.last_scale_time if record else None, now),
        view.status,
    ]


def view_json(view: RuleView) -> dict[str, Any]:
    """One rule as ``get --output json`` prints it."""
    rule = view.rule
    record = view.record
    state = record.state if record else None
    decision = view.last_decision or {}
    return {
        "name": view.loaded.name,
        "parameter": view.loaded.parameter,
        "version": view.loaded.version,
        "cluster": rule.target.cluster if rule else None,
        "namespace": rule.target.namespace if rule else None,
        "reference": rule.target.reference if rule else None,
        "targets": [
            {"metric": c.metric, "current": c.current, "target": c.target, "average": c.average}
            for c in view.targets()
        ],
        "minReplicas": rule.min_replicas if rule else None,
        "maxReplicas": rule.max_replicas if rule else None,
        "replicas": view.replicas,
        "desiredReplicas": decision.get("to"),
        "lastScaleTime": state.last_scale_time if state else None,
        "lastEvaluated": state.last_evaluated if state else None,
        "status": view.status,
        "errors": list(view.loaded.errors),
    }


def run(
    args: argparse.Namespace,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """List the rules; return the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        session = aws_session(args)
        views = load_views(rule_store(args, session), state_store(args, session), args.rule, err)
    except AmpscalerError as exc:
        return fail("get", exc, err)
    if getattr(args, "output", "table") == "json":
        print(json.dumps([view_json(v) for v in views], indent=2), file=out)
        return 0
    if not views:
        print(f"No rules found under {args.prefix}.", file=err)
        return 0
    now = clock()
    print(render_table(HEADERS, [view_row(v, now) for v in views]), file=out)
    return 0
