"""``ampscaler explain RULE|FILE``: one read-only evaluation against the live metrics and cluster, step by step."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from ampscaler import contract
from ampscaler.adapters.amp import AmpMetricsSource
from ampscaler.adapters.kube import EksScaleTarget
from ampscaler.adapters.state_dynamodb import DynamoDbStateStore
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
from ampscaler.cli.formatting import NONE, UNKNOWN, format_number, format_quantity, render_table, timestamp
from ampscaler.engine.types import Decision, EngineState, PodInfo
from ampscaler.errors import AmpscalerError, RuleInvalidError
from ampscaler.model import MetricSpec, PrometheusSource, Rule
from ampscaler.ports import MeasuredObservation, MetricsSource, ScaleReading, ScaleTarget
from ampscaler.resource_queries import STACK_DEFAULT_SERIES, resource_query
from ampscaler.rule import load_rule_file
from ampscaler.runtime import metrics_source, scale_target
from ampscaler.settings import Settings
from ampscaler.tick import needs_pods, observe_metrics

EXAMPLES = [
    "ampscaler explain shop/web                        # why would the scaler pick this count now?",
    "ampscaler explain rule.yaml --workspace-id ws-1234 --region eu-west-1",
    "ampscaler explain shop/web -o json --input-json | jq .input > in.json && ampscaler decide -i in.json",
]

HELP_EPILOG = """\
Reads the target's /scale and pods, runs each metric's query at this instant, loads the rule's
engine state from the state table (none: evaluated as a first evaluation) and runs the engine
exactly as the scaler tick does. Nothing is written: no patch, no Event, no state.

Where things are reached (the scaler function's variables, or options):
  metrics   --url, --workspace-id, else the rule's prometheus block, else $AMP_WORKSPACE_ID
            ($AMP_REGION, default the AWS region); $AMP_ENDPOINT_URL replaces the AMP endpoint
  cluster   eks:DescribeCluster of target.cluster, or $CLUSTER_ENDPOINTS
            ({"<cluster>": {"endpoint": URL, "caData": BASE64_PEM}}); your AWS identity needs an
            EKS access entry allowing get on <kind>/scale and list on pods
  state     --table (read with dynamodb:GetItem)
"""

# Bound the whole evaluation like a tick: no query retries after this.
EVALUATION_SECONDS = 30.0


@dataclass(frozen=True)
class LoadedTarget:
    """The rule to explain and where it came from."""

    name: str
    rule: Rule
    origin: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """Everything one read-only evaluation saw and decided."""

    target: LoadedTarget
    now: float
    reading: ScaleReading
    pods: Sequence[PodInfo] | None
    measured: Sequence[MeasuredObservation]
    state: EngineState | None
    state_note: str
    query_target: str
    evaluation: contract.Evaluation
    # The PromQL each metric ran, in rule order (a Resource metric's default query names the pods).
    queries: tuple[str, ...] = ()

    @property
    def decision(self) -> Decision:
        """The engine's decision."""
        return self.evaluation.decision

    @property
    def decide_input(self) -> dict[str, Any]:
        """The decide input document, as the tick logs it."""
        return self.evaluation.input_document

    @property
    def output(self) -> dict[str, Any]:
        """The decide output document, as the tick logs it."""
        return self.evaluation.output_document


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``explain`` command."""
    parser = subparsers.add_parser(
        "explain",
        help="evaluate a rule once against live metrics and cluster, read-only, step by step",
        description="One read-only evaluation: each metric's query, value, target and proposal, "
        "stabilization, rate limits and the final decision. Never patches.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "rule", metavar="RULE|FILE", help="rule file (JSON/YAML, one rule) or rule name in SSM"
    )
    add_prefix_option(parser)
    add_table_option(parser)
    add_cluster_option(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help="query this Prometheus-compatible base URL instead (unsigned)")
    source.add_argument(
        "--workspace-id",
        default=None,
        help="AMP workspace for rules without a prometheus block (default: $AMP_WORKSPACE_ID)",
    )
    parser.add_argument(
        "--input-json",
        action="store_true",
        help="also print the decide input and output documents (replay with ampscaler decide)",
    )
    parser.set_defaults(func=run)


def load_target(args: argparse.Namespace, session: Any, cluster: str | None) -> LoadedTarget:
    """The rule named by ``args.rule``: a file with one rule, else a rule in SSM.

    Raises
    ------
    CommandError
        The file holds no or several rules or is invalid; the SSM rule is missing or has no valid version.
    """
    ref = str(args.rule)
    path = Path(ref)
    if path.is_file():
        try:
            rules = load_rule_file(path, default_cluster=cluster)
        except RuleInvalidError as exc:
            raise CommandError(f"{ref} is invalid: " + "; ".join(exc.errors)) from exc
        except OSError as exc:
            raise CommandError(f"cannot read {ref}: {exc.strerror or exc}") from exc
        if len(rules) != 1:
            raise CommandError(f"{ref} holds {len(rules)} rules; explain takes a file with one rule")
        return LoadedTarget(rules[0].name, rules[0], f"file {ref}")
    store = rule_store(args, session)
    loaded = store.load_rule(ref)
    if loaded is None:
        raise CommandError(
            f"{ref!r} is neither a file nor a rule in SSM ({store.parameter_name(ref)} not found)"
        )
    if loaded.rule is None:
        raise CommandError(f"rule {loaded.name} has no valid version to explain: " + "; ".join(loaded.errors))
    warnings: tuple[str, ...] = ()
    origin = f"SSM {loaded.parameter} version {loaded.version}"
    if loaded.errors:
        running = store.running_version(loaded.name)
        origin = f"SSM {loaded.parameter} version {running} (the last valid one; the scaler runs it)"
        warnings = (f"current version {loaded.version} is invalid: " + "; ".join(loaded.errors),)
    return LoadedTarget(loaded.name, loaded.rule, origin, warnings)


def read_state(states: DynamoDbStateStore | None, name: str) -> tuple[EngineState | None, str]:
    """The rule's engine state from the state table and a note on where it came from."""
    if states is None:
        return None, "none (no state table given)"
    try:
        record = states.get(name)
    except AmpscalerError as exc:
        return None, f"none: state table not readable ({exc})"
    if record is None or record.state.engine is None:
        return None, f"none: no item for {name} in {states.table_name} (evaluated as a first evaluation)"
    evaluated = record.state.last_evaluated
    when = f", last evaluated {timestamp(evaluated)}" if evaluated is not None else ""
    return record.state.engine, f"from {states.table_name}{when}"


def explain(
    target: LoadedTarget,
    metrics: MetricsSource,
    targets: ScaleTarget,
    states: DynamoDbStateStore | None,
    now: float,
    deadline: float,
    query_target: str = "",
) -> Explanation:
    """Observe, build the decide input, decide: the tick's evaluation without patch, Event or save.

    Raises
    ------
    AmpscalerError
        The scale or the pods cannot be read (ScaleTargetError with the cluster's answer).
    """
    rule = target.rule
    reading = targets.read_scale(rule.target)
    pods = targets.list_pods(rule.target, reading.selector) if needs_pods(rule) else None
    # The tick's own observation step (emptyAs filling included), so explain decides as it does.
    measured, observations = observe_metrics(metrics, rule, now, deadline, pods)
    state, note = read_state(states, target.name)
    evaluation = contract.evaluate(
        contract.build_decide_input(rule, now, reading.scale, pods, observations, state)
    )
    queries = tuple(_query_run(spec, rule.target.namespace, pods, metrics) for spec in rule.metrics)
    return Explanation(target, now, reading, pods, measured, state, note, query_target, evaluation, queries)


def _query_run(
    spec: MetricSpec, namespace: str, pods: Sequence[PodInfo] | None, metrics: MetricsSource
) -> str:
    """The PromQL a metric ran: its own query, or a Resource metric's default for the listed pods."""
    if spec.type not in ("Resource", "ContainerResource"):
        return spec.query
    series = getattr(metrics, "resource_series", STACK_DEFAULT_SERIES)
    names = None if pods is None else [p.name for p in pods]
    try:
        return resource_query(spec, namespace, names, series).query
    except AmpscalerError as exc:  # an invalid series name: the observation carries the error too
        return f"<{exc}>"


def _condition(decision: Decision, kind: str) -> Mapping[str, Any] | None:
    for cond in decision.conditions:
        if cond.type == kind:
            return {"type": cond.type, "status": cond.status, "reason": cond.reason, "message": cond.message}
    return None


def steps(result: Explanation) -> dict[str, Any]:
    """How the count was reached: metric proposal, stabilization, limits, final (from ``Decision.extra``)."""
    decision = result.decision
    extra = decision.extra
    metric_desired = extra.get("metricDesiredReplicas")
    return {
        "currentReplicas": decision.current_replicas,
        "metricDesiredReplicas": None if metric_desired == -1 else metric_desired,
        "stabilizedReplicas": extra.get("stabilizedReplicas"),
        "ableToScale": _condition(decision, "AbleToScale"),
        "scalingActive": _condition(decision, "ScalingActive"),
        "scalingLimited": _condition(decision, "ScalingLimited"),
        "desiredReplicas": decision.desired_replicas,
        "consecutiveFailures": extra.get("consecutiveFailures"),
        "fallbackActive": decision.fallback_active,
    }


def metric_rows(result: Explanation) -> list[dict[str, Any]]:
    """Per metric: query, observed value(s), the engine's current value, target, proposal, cost."""
    by_name = {m.name: m for m in result.decision.metrics}
    rows: list[dict[str, Any]] = []
    for index, (spec, measured) in enumerate(zip(result.target.rule.metrics, result.measured, strict=True)):
        obs = measured.observation
        engine = by_name.get(spec.name)
        rows.append(
            {
                "name": spec.name,
                "type": spec.type,
                "query": result.queries[index] if index < len(result.queries) else spec.query,
                "observed": dict(obs.pod_values) if obs.pod_values is not None else obs.value,
                "value": engine.current if engine else None,
                "target": {"type": spec.target.type, "value": spec.target.amount},
                "proposal": engine.proposal if engine else None,
                "valid": engine.valid if engine else False,
                "error": obs.error or (engine.error if engine else None),
                "samplesProcessed": measured.stats.samples_processed,
            }
        )
        if spec.type in ("Resource", "ContainerResource"):
            # Which resource, and for Utilization targets the raw per-pod usage (cores or bytes)
            # behind the percentage; other metrics' rows keep their keys.
            rows[-1]["resource"] = spec.resource
            rows[-1]["averageValue"] = engine.average_value if engine else None
    return rows


def explanation_json(result: Explanation, include_documents: bool) -> dict[str, Any]:
    """What ``explain --output json`` prints."""
    rule = result.target.rule
    pods = result.pods
    doc: dict[str, Any] = {
        "rule": result.target.name,
        "origin": result.target.origin,
        "now": result.now,
        "target": {
            "cluster": rule.target.cluster,
            "namespace": rule.target.namespace,
            "reference": rule.target.reference,
            "specReplicas": result.reading.scale.spec_replicas,
            "statusReplicas": result.reading.scale.status_replicas,
            "selector": result.reading.selector,
            "pods": None if pods is None else [p.name for p in pods],
            "readyPods": None if pods is None else sum(1 for p in pods if _ready(p)),
        },
        "metricsFrom": result.query_target,
        "state": result.state_note,
        "metrics": metric_rows(result),
        "steps": steps(result),
        "decision": result.output,
        "patched": False,
    }
    if include_documents:
        doc["input"] = result.decide_input
        doc["output"] = result.output
    return doc


def _ready(pod: PodInfo) -> bool:
    return pod.phase == "Running" and pod.ready and not pod.deleting


def _observed_text(row: Mapping[str, Any]) -> str:
    observed = row["observed"]
    if isinstance(observed, dict):
        values = ", ".join(f"{pod}={format_number(v)}" for pod, v in sorted(observed.items())[:6])
        more = f", ... ({len(observed)} pods)" if len(observed) > 6 else ""
        return f"{len(observed)} pod series: {values}{more}" if observed else "no pod series"
    return format_number(observed) if observed is not None else NONE


def _value_text(row: Mapping[str, Any]) -> str:
    """``12.5 per pod``; for Resource metrics ``45% of requests (225m per pod)`` or ``200Mi per pod``."""
    resource = row.get("resource")
    if resource and row["target"]["type"] == "Utilization":
        value = row["value"]
        percent = UNKNOWN if value is None else f"{format_number(round(value))}%"
        average = row.get("averageValue")
        raw = f" ({format_quantity(average, resource)} per pod)" if average is not None else ""
        return f"{percent} of requests{raw}"
    if resource:
        return f"{format_quantity(row['value'], resource)} per pod"
    per_pod = " per pod" if row["type"] == "Pods" or row["target"]["type"] == "AverageValue" else ""
    return f"{format_number(row['value'])}{per_pod}"


def _target_text(row: Mapping[str, Any]) -> str:
    target = row["target"]
    resource = row.get("resource")
    if resource and target["type"] == "Utilization":
        return f"{format_number(target['value'])}% (Utilization)"
    if resource:
        return f"{format_quantity(target['value'], resource)} (AverageValue)"
    return f"{format_number(target['value'])} ({target['type']})"


def render(result: Explanation, include_documents: bool) -> str:
    """The ``explain`` text."""
    rule = result.target.rule
    target = rule.target
    scale = result.reading.scale
    pods = result.pods
    pods_text = "not needed (no Pods or Resource metric, no Value target)"
    if pods is not None:
        ready = sum(1 for p in pods if _ready(p))
        pods_text = f"{len(pods)} ({ready} ready) matching {result.reading.selector or '<all>'}"
    mode = "paused" if rule.paused else ("dry-run" if rule.dry_run else "active")
    lines = [
        f"Rule:        {result.target.name} ({result.target.origin})",
        f"Target:      {target.reference} in namespace {target.namespace} of cluster {target.cluster}",
        f"Replicas:    spec {scale.spec_replicas}, status {scale.status_replicas}; min {rule.min_replicas}, "
        f"max {rule.max_replicas}",
        f"Pods:        {pods_text}",
        f"Evaluated:   {timestamp(result.now)} against {result.query_target or UNKNOWN}",
        f"State:       {result.state_note}",
        f"Mode:        {mode}",
        "",
        "Metrics:",
    ]
    for row in metric_rows(result):
        lines.append(f"  {row['name']} ({row['type']})")
        lines.append(f"    query:     {row['query']}")
        lines.append(f"    observed:  {_observed_text(row)}")
        if row["error"]:
            lines.append(f"    error:     {row['error']}")
        lines.append(f"    value:     {_value_text(row)}, target {_target_text(row)}")
        proposal = row["proposal"]
        lines.append(f"    proposal:  {proposal if proposal is not None else NONE} replicas")
        if row["samplesProcessed"] is not None:
            lines.append(f"    samples:   {row['samplesProcessed']} processed")
    lines += ["", "Steps:"]
    lines.append(render_table(("STEP", "REPLICAS", "WHY"), _step_rows(result), indent="  "))
    lines += ["", "Conditions:"]
    cond_rows = [
        [c.type, "True" if c.status else "False", c.reason, c.message] for c in result.decision.conditions
    ]
    lines.append(render_table(("TYPE", "STATUS", "REASON", "MESSAGE"), cond_rows, indent="  "))
    decision = result.decision
    change = (
        f"{decision.current_replicas} -> {decision.desired_replicas}"
        if decision.desired_replicas != decision.current_replicas
        else f"stay at {decision.current_replicas}"
    )
    lines += [
        "",
        f"Decision:    {change} (action {decision.action}, mode {result.output['mode']})",
        f"Reason:      {decision.reason}",
        "Nothing was patched and no state was written (explain is read-only).",
    ]
    if include_documents:
        lines += [
            "",
            "Decide input (save it and replay with: ampscaler decide --input FILE):",
            contract.dumps(result.decide_input),
            "Decide output:",
            contract.dumps(result.output),
        ]
    return "\n".join(lines)


def _step_rows(result: Explanation) -> list[list[str]]:
    info = steps(result)
    rule = result.target.rule
    rows = [["current", str(info["currentReplicas"]), "spec.replicas of the target"]]
    metric_desired = info["metricDesiredReplicas"]
    active = info["scalingActive"] or {}
    if metric_desired is None:
        rows.append(["metrics", NONE, f"{active.get('reason', '')}: {active.get('message', '')}"])
    else:
        rows.append(["metrics", str(metric_desired), "largest proposal of the valid metrics"])
    stabilized = info["stabilizedReplicas"]
    able = info["ableToScale"] or {}
    if stabilized is not None:
        rows.append(["stabilization", str(stabilized), _stabilization_why(rule, able)])
    limited = info["scalingLimited"] or {}
    rows.append(
        ["limits", str(info["desiredReplicas"]), f"{limited.get('reason', '')}: {limited.get('message', '')}"]
    )
    if info["fallbackActive"]:
        rows.append(["fallback", str(info["desiredReplicas"]), "every metric failing past failureThreshold"])
    rows.append(["desired", str(info["desiredReplicas"]), result.decision.reason])
    return rows


def _stabilization_why(rule: Rule, able: Mapping[str, Any]) -> str:
    reason = str(able.get("reason", ""))
    if reason in ("ScaleUpStabilized", "ScaleDownStabilized"):
        return f"{reason}: {able.get('message', '')}"
    if rule.behavior is None:
        return "within the controller's stabilization window"
    up = rule.behavior.scale_up.stabilization_window_seconds
    down = rule.behavior.scale_down.stabilization_window_seconds
    down_text = f"{down}s" if down is not None else "controller default 300s"
    return f"no change from the windows (scaleUp {up}s, scaleDown {down_text})"


def _compose(
    args: argparse.Namespace, session: Any, settings: Settings, rule: Rule
) -> tuple[Rule, AmpMetricsSource, EksScaleTarget, str]:
    """The metrics source and cluster client of a live tick, on the CLI's session."""
    region = session.region_name
    if not region:
        raise CommandError("no AWS region: pass --region or set AWS_REGION / a profile region")
    if getattr(args, "url", None):
        rule = replace(rule, prometheus=PrometheusSource(url=args.url))
    if getattr(args, "workspace_id", None):
        settings = replace(settings, amp_workspace_id=args.workspace_id)
    metrics = metrics_source(settings, region, session)
    try:
        where = metrics.target_for(rule).description
    except AmpscalerError as exc:
        raise CommandError(f"{exc} (or pass --workspace-id / --url)") from exc
    if session.get_credentials() is None:
        raise CommandError("no AWS credentials found (standard chain, --profile) to sign the EKS token")
    targets = scale_target(
        settings,
        region,
        session=session,
        principal="your AWS identity (the CLI's credentials)",
        pool_maxsize=1,
    )
    return rule, metrics, targets, where


def run(
    args: argparse.Namespace,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Explain one rule; return the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    targets: EksScaleTarget | None = None
    try:
        settings = Settings.from_env()
        cluster = getattr(args, "cluster", None) or settings.cluster_name
        args.cluster = cluster
        session = aws_session(args)
        loaded = load_target(args, session, cluster)
        for warning in loaded.warnings:
            warn("explain", warning, err)
        rule, metrics, targets, where = _compose(args, session, settings, loaded.rule)
        loaded = replace(loaded, rule=rule)
        now = round(clock(), 3)
        result = explain(
            loaded, metrics, targets, state_store(args, session), now, now + EVALUATION_SECONDS, where
        )
    except AmpscalerError as exc:
        return fail("explain", exc, err)
    finally:
        if targets is not None:
            targets.close()
    if getattr(args, "output", "table") == "json":
        print(json.dumps(explanation_json(result, args.input_json), indent=2), file=out)
    else:
        print(render(result, args.input_json), file=out)
    return 0
