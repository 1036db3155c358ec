"""The decide contract: the JSON document ``ampscaler decide`` reads and writes and the Lambda logs.

One input document (rule, observation, state, now, controller flags) maps to one ``DecideInput``;
one ``Decision`` maps to one output document. ``dumps`` is the only serialiser, so a logged
decision and its replay through ``ampscaler decide`` are the same bytes. Schema: ``docs/decide.schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Final, Literal, cast

from ampscaler.engine.decide import decide
from ampscaler.engine.types import (
    Condition,
    ContainerInfo,
    ControllerConfig,
    Decision,
    EngineState,
    MetricObservation,
    MetricResult,
    Observation,
    PodInfo,
    PodPhase,
    Recommendation,
    ScaleEvent,
    ScaleObservation,
)
from ampscaler.errors import AmpscalerError
from ampscaler.model import Rule
from ampscaler.policy import MAX_INT32, REPLAY_POLICY
from ampscaler.rule import (
    MAX_NUMBER,
    RESOURCE_METRIC_TYPES,
    RESOURCE_NAMES,
    ErrorList,
    build_rule,
    child_path,
    index_path,
    json_type,
    rule_to_document,
    show,
)

Mode = Literal["active", "dryRun", "paused"]
MODES: Final[tuple[Mode, ...]] = ("active", "dryRun", "paused")

INPUT_FIELDS: Final = ("rule", "now", "scale", "pods", "metrics", "state", "controller")
SCALE_FIELDS: Final = ("specReplicas", "statusReplicas")
POD_FIELDS: Final = (
    "name",
    "phase",
    "ready",
    "deleting",
    "startTime",
    "readyTransitionTime",
    "requests",
    "containers",
)
CONTAINER_FIELDS: Final = ("name", "requests")
POD_PHASES: Final[tuple[PodPhase, ...]] = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
OBSERVATION_FIELDS: Final = ("name", "value", "podValues", "error", "timestamp", "windowSeconds")
STATE_FIELDS: Final = (
    "recommendations",
    "scaleUpEvents",
    "scaleDownEvents",
    "consecutiveFailures",
    "belowActivationSince",
)
CONTROLLER_FIELDS: Final = (
    "tolerance",
    "downscaleStabilizationSeconds",
    "scaleUpLimitFactor",
    "scaleUpLimitMinimum",
    "cpuInitializationPeriodSeconds",
    "initialReadinessDelaySeconds",
)
# Unix seconds up to the year 5138: far beyond any real clock, far below float trouble.
MAX_TIME: Final = 1e11
# --horizontal-pod-autoscaler-downscale-stabilization: a week is far beyond any real setting.
MAX_DOWNSCALE_STABILIZATION_SECONDS: Final = 7 * 24 * 3600
# --horizontal-pod-autoscaler-cpu-initialization-period / -initial-readiness-delay: same bound.
MAX_CPU_READINESS_SECONDS: Final = 7 * 24 * 3600
# Key order of the output document (the example order, then the audit flags).
OUTPUT_FIELDS: Final = (
    "desiredReplicas",
    "currentReplicas",
    "action",
    "reason",
    "metrics",
    "conditions",
    "state",
    "mode",
    "fallbackActive",
)


class DecideInputError(AmpscalerError):
    """A decide input document failed validation; ``errors`` holds every problem with its JSON path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("invalid decide input: " + "; ".join(self.errors))


@dataclass(frozen=True)
class DecideInput:
    """A parsed decide input: exactly the arguments of ``ampscaler.engine.decide.decide``."""

    rule: Rule
    observation: Observation
    state: EngineState | None
    now: float
    controller: ControllerConfig = field(default_factory=ControllerConfig)


# --------------------------------------------------------------------------- input


def parse_decide_input(doc: object) -> DecideInput:
    """Validate a decide input document into a ``DecideInput``.

    Parameters
    ----------
    doc
        The decoded JSON input (see ``docs/decide.md``).

    Returns
    -------
    DecideInput
        The rule, observation, previous state (None: never evaluated), ``now`` and controller flags.

    Raises
    ------
    DecideInputError
        With every problem, each ``json.path: message (hint)``; rule problems start with ``rule.``.
    """
    errors = ErrorList()
    raw = errors.mapping(
        doc,
        "",
        INPUT_FIELDS,
        required=("rule", "now", "scale", "metrics"),
        required_hints={"now": "unix seconds of the evaluation, e.g. 1700000000.0"},
    )
    if raw is None:
        raise DecideInputError(errors.items)
    # The decision never depends on the cluster, so a logged rule that relied on the stack's
    # CLUSTER_NAME still replays.
    # The operator's namespace/cluster policy was applied when the rule was loaded; a replay checks
    # only the format's hard limits, so every logged decision replays.
    rule = (
        build_rule(raw["rule"], errors, path="rule", default_cluster="", policy=REPLAY_POLICY)
        if "rule" in raw
        else None
    )
    now = errors.number(raw["now"], "now", minimum=0.0, maximum=MAX_TIME) if "now" in raw else None
    scale = _scale(raw["scale"], "scale", errors) if "scale" in raw else None
    pods = _pods(raw["pods"], "pods", errors) if "pods" in raw else None
    metrics = _observations(raw["metrics"], "metrics", errors, rule) if "metrics" in raw else None
    per_pod = [m.type for m in rule.metrics if m.type in ("Pods", *RESOURCE_METRIC_TYPES)] if rule else []
    if per_pod and "pods" not in raw:
        errors.add(
            "pods", f"required when the rule has a {per_pod[0]} metric", "list the pods the target selects"
        )
    state = None
    if "state" in raw and raw["state"] is not None:
        state = _state(raw["state"], "state", errors)
    controller = (
        _controller(raw["controller"], "controller", errors) if "controller" in raw else ControllerConfig()
    )
    if errors or rule is None or now is None or scale is None or metrics is None or controller is None:
        raise DecideInputError(errors.items)
    return DecideInput(
        rule=rule,
        observation=Observation(scale=scale, metrics=metrics, pods=pods),
        state=state,
        now=now,
        controller=controller,
    )


def _scale(value: object, path: str, errors: ErrorList) -> ScaleObservation | None:
    raw = errors.mapping(value, path, SCALE_FIELDS, required=SCALE_FIELDS)
    if raw is None:
        return None
    spec = (
        errors.integer(raw["specReplicas"], child_path(path, "specReplicas"), minimum=0, maximum=MAX_INT32)
        if "specReplicas" in raw
        else None
    )
    status = (
        errors.integer(
            raw["statusReplicas"], child_path(path, "statusReplicas"), minimum=0, maximum=MAX_INT32
        )
        if "statusReplicas" in raw
        else None
    )
    if spec is None or status is None:
        return None
    return ScaleObservation(spec_replicas=spec, status_replicas=status)


def _pods(value: object, path: str, errors: ErrorList) -> tuple[PodInfo, ...] | None:
    if not isinstance(value, list):
        errors.add(path, f"must be an array of pods, got {json_type(value)}")
        return None
    n = len(errors.items)
    pods: list[PodInfo] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        at = index_path(path, i)
        raw = errors.mapping(item, at, POD_FIELDS, required=("name",))
        if raw is None:
            continue
        m = len(errors.items)
        name = errors.string(raw["name"], child_path(at, "name")) if "name" in raw else None
        phase = (
            errors.choice(raw["phase"], child_path(at, "phase"), POD_PHASES) if "phase" in raw else "Running"
        )
        ready = errors.boolean(raw["ready"], child_path(at, "ready")) if "ready" in raw else True
        deleting = errors.boolean(raw["deleting"], child_path(at, "deleting")) if "deleting" in raw else False
        start = _optional_time(raw, "startTime", at, errors)
        ready_since = _optional_time(raw, "readyTransitionTime", at, errors)
        requests = _requests(raw["requests"], child_path(at, "requests"), errors) if "requests" in raw else {}
        containers = (
            _containers(raw["containers"], child_path(at, "containers"), errors)
            if "containers" in raw
            else ()
        )
        if name is not None and name in seen:
            errors.add(
                child_path(at, "name"),
                f"duplicate pod {show(name)}",
                f"already listed at {index_path(path, seen[name])}",
            )
        elif name is not None:
            seen[name] = i
        if len(errors.items) > m or name is None or phase is None or ready is None or deleting is None:
            continue
        assert requests is not None and containers is not None
        pods.append(
            PodInfo(
                name=name,
                phase=cast(PodPhase, phase),
                ready=ready,
                deleting=deleting,
                start_time=start,
                ready_transition_time=ready_since,
                requests=requests,
                containers=containers,
            )
        )
    return tuple(pods) if len(errors.items) == n else None


def _optional_time(raw: Mapping[str, Any], key: str, path: str, errors: ErrorList) -> float | None:
    """A unix time in seconds, or None when absent or null (the API had none)."""
    if raw.get(key) is None:
        return None
    return errors.number(raw[key], child_path(path, key), minimum=0.0, maximum=MAX_TIME)


def _requests(value: object, path: str, errors: ErrorList) -> dict[str, float] | None:
    """``{"cpu": cores, "memory": bytes}``; a resource left out has no request."""
    raw = errors.mapping(value, path, RESOURCE_NAMES)
    if raw is None:
        return None
    n = len(errors.items)
    result: dict[str, float] = {}
    for key in RESOURCE_NAMES:
        if key in raw:
            amount = errors.number(raw[key], child_path(path, key), minimum=0.0, maximum=MAX_NUMBER)
            if amount is not None:
                result[key] = amount
    return result if len(errors.items) == n else None


def _containers(value: object, path: str, errors: ErrorList) -> tuple[ContainerInfo, ...] | None:
    if not isinstance(value, list):
        errors.add(path, f"must be an array of containers, got {json_type(value)}")
        return None
    n = len(errors.items)
    result: list[ContainerInfo] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        at = index_path(path, i)
        raw = errors.mapping(item, at, CONTAINER_FIELDS, required=("name",))
        if raw is None:
            continue
        name = errors.string(raw["name"], child_path(at, "name")) if "name" in raw else None
        requests = _requests(raw["requests"], child_path(at, "requests"), errors) if "requests" in raw else {}
        if name is not None and name in seen:
            errors.add(
                child_path(at, "name"),
                f"duplicate container {show(name)}",
                f"already listed at {index_path(path, seen[name])}",
            )
        elif name is not None:
            seen[name] = i
        if name is not None and requests is not None:
            result.append(ContainerInfo(name=name, requests=requests))
    return tuple(result) if len(errors.items) == n else None


def _observations(
    value: object, path: str, errors: ErrorList, rule: Rule | None
) -> tuple[MetricObservation, ...] | None:
    if not isinstance(value, list):
        errors.add(path, f"must be an array of metric observations, got {json_type(value)}")
        return None
    n = len(errors.items)
    result: list[MetricObservation] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        at = index_path(path, i)
        raw = errors.mapping(item, at, OBSERVATION_FIELDS, required=("name",))
        if raw is None:
            continue
        name = errors.string(raw["name"], child_path(at, "name")) if "name" in raw else None
        if name is not None and name in seen:
            errors.add(
                child_path(at, "name"),
                f"duplicate observation {show(name)}",
                f"already at {index_path(path, seen[name])}",
            )
        elif name is not None:
            seen[name] = i
        present = [key for key in ("value", "podValues", "error") if key in raw]
        if len(present) != 1:
            errors.add(
                at, "must set exactly one of value, podValues or error", f"got {', '.join(present) or 'none'}"
            )
            continue
        spec = None
        if name is not None and rule is not None:
            try:
                spec = rule.metric(name)
            except KeyError:
                known = ", ".join(m.name for m in rule.metrics)
                errors.add(
                    child_path(at, "name"), f"the rule has no metric {show(name)}", f"rule metrics: {known}"
                )
        kind = present[0]
        if spec is not None and kind != "error":
            wanted = "podValues" if spec.type in ("Pods", *RESOURCE_METRIC_TYPES) else "value"
            if kind != wanted:
                errors.add(
                    child_path(at, kind), f"a {spec.type} metric is observed as {wanted}", f"use {wanted}"
                )
                continue
        timestamp, window = _sample_time(raw, at, errors, kind)
        if (
            spec is not None
            and spec.resource == "cpu"
            and kind == "podValues"
            and (timestamp is None or window is None)
        ):
            # The HPA's CPU readiness rules compare pod start/readiness times with the sample's.
            for key in ("timestamp", "windowSeconds"):
                if key not in raw:
                    errors.add(
                        child_path(at, key),
                        "required for a cpu metric's podValues",
                        "unix seconds of the samples" if key == "timestamp" else "the rate window in seconds",
                    )
            continue
        if name is None:
            continue
        if kind == "error":
            message = errors.string(raw["error"], child_path(at, "error"))
            if message is not None:
                result.append(MetricObservation(name=name, error=message))
        elif kind == "value":
            number = errors.number(raw["value"], child_path(at, "value"))
            if number is not None:
                result.append(MetricObservation(name=name, value=number))
        else:
            pod_values = _pod_values(raw["podValues"], child_path(at, "podValues"), errors)
            if pod_values is not None:
                result.append(
                    MetricObservation(
                        name=name, pod_values=pod_values, timestamp=timestamp, window_seconds=window
                    )
                )
    if rule is not None:
        for spec in rule.metrics:
            if spec.name not in seen:
                errors.add(
                    path,
                    f"no observation for rule metric {show(spec.name)}",
                    f'add {{"name": "{spec.name}", "error": "..."}} if its query failed',
                )
    return tuple(result) if len(errors.items) == n else None


def _sample_time(
    raw: Mapping[str, Any], path: str, errors: ErrorList, kind: str
) -> tuple[float | None, float | None]:
    """``timestamp`` and ``windowSeconds`` of a podValues observation (None when absent)."""
    timestamp = window = None
    for key in ("timestamp", "windowSeconds"):
        if key not in raw:
            continue
        if kind != "podValues":
            errors.add(child_path(path, key), "only applies with podValues", "remove it")
            continue
        number = errors.number(raw[key], child_path(path, key), minimum=0.0, maximum=MAX_TIME)
        if key == "timestamp":
            timestamp = number
        else:
            window = number
    return timestamp, window


def _pod_values(value: object, path: str, errors: ErrorList) -> dict[str, float] | None:
    if not isinstance(value, Mapping):
        errors.add(path, f"must be an object of pod name to number, got {json_type(value)}")
        return None
    n = len(errors.items)
    result: dict[str, float] = {}
    for pod, amount in value.items():
        number = errors.number(amount, child_path(path, str(pod)))
        if number is not None:
            result[str(pod)] = number
    return result if len(errors.items) == n else None


def _controller(value: object, path: str, errors: ErrorList) -> ControllerConfig | None:
    raw = errors.mapping(value, path, CONTROLLER_FIELDS)
    if raw is None:
        return None
    n = len(errors.items)
    defaults = ControllerConfig()
    tolerance = (
        errors.number(raw["tolerance"], child_path(path, "tolerance"), minimum=0.0, below=1.0)
        if "tolerance" in raw
        else defaults.tolerance
    )
    window = (
        errors.integer(
            raw["downscaleStabilizationSeconds"],
            child_path(path, "downscaleStabilizationSeconds"),
            minimum=0,
            maximum=MAX_DOWNSCALE_STABILIZATION_SECONDS,
        )
        if "downscaleStabilizationSeconds" in raw
        else defaults.downscale_stabilization_seconds
    )
    factor = (
        errors.number(
            raw["scaleUpLimitFactor"],
            child_path(path, "scaleUpLimitFactor"),
            positive=True,
            maximum=MAX_NUMBER,
        )
        if "scaleUpLimitFactor" in raw
        else defaults.scale_up_limit_factor
    )
    minimum = (
        errors.number(
            raw["scaleUpLimitMinimum"],
            child_path(path, "scaleUpLimitMinimum"),
            positive=True,
            maximum=MAX_NUMBER,
        )
        if "scaleUpLimitMinimum" in raw
        else defaults.scale_up_limit_minimum
    )
    initialization = (
        errors.integer(
            raw["cpuInitializationPeriodSeconds"],
            child_path(path, "cpuInitializationPeriodSeconds"),
            minimum=0,
            maximum=MAX_CPU_READINESS_SECONDS,
        )
        if "cpuInitializationPeriodSeconds" in raw
        else defaults.cpu_initialization_period_seconds
    )
    delay = (
        errors.integer(
            raw["initialReadinessDelaySeconds"],
            child_path(path, "initialReadinessDelaySeconds"),
            minimum=0,
            maximum=MAX_CPU_READINESS_SECONDS,
        )
        if "initialReadinessDelaySeconds" in raw
        else defaults.initial_readiness_delay_seconds
    )
    if (
        len(errors.items) > n
        or tolerance is None
        or window is None
        or factor is None
        or minimum is None
        or initialization is None
        or delay is None
    ):
        return None
    return ControllerConfig(
        tolerance=tolerance,
        downscale_stabilization_seconds=window,
        scale_up_limit_factor=factor,
        scale_up_limit_minimum=minimum,
        cpu_initialization_period_seconds=initialization,
        initial_readiness_delay_seconds=delay,
    )


# --------------------------------------------------------------------------- state


def _state(value: object, path: str, errors: ErrorList) -> EngineState | None:
    # Every key is optional: the object replaces the stored state whole, and a missing list is empty.
    raw = errors.mapping(value, path, STATE_FIELDS)
    if raw is None:
        return None
    n = len(errors.items)

    def events(key: str) -> tuple[ScaleEvent, ...]:
        items = _records(raw.get(key, []), child_path(path, key), errors, "change")
        return tuple(ScaleEvent(time=t, change=v) for t, v in items)

    recommendations = tuple(
        Recommendation(time=t, replicas=v)
        for t, v in _records(
            raw.get("recommendations", []), child_path(path, "recommendations"), errors, "replicas"
        )
    )
    up = events("scaleUpEvents")
    down = events("scaleDownEvents")
    failures = (
        errors.integer(
            raw["consecutiveFailures"], child_path(path, "consecutiveFailures"), minimum=0, maximum=MAX_INT32
        )
        if "consecutiveFailures" in raw
        else 0
    )
    since = None
    if raw.get("belowActivationSince") is not None:
        since = errors.number(
            raw["belowActivationSince"],
            child_path(path, "belowActivationSince"),
            minimum=0.0,
            maximum=MAX_TIME,
        )
    if len(errors.items) > n or failures is None:
        return None
    return EngineState(
        recommendations=recommendations,
        scale_up_events=up,
        scale_down_events=down,
        consecutive_failures=failures,
        below_activation_since=since,
    )


def _records(value: object, path: str, errors: ErrorList, amount_key: str) -> list[tuple[float, int]]:
    if not isinstance(value, list):
        errors.add(path, f"must be an array, got {json_type(value)}")
        return []
    result: list[tuple[float, int]] = []
    for i, item in enumerate(value):
        at = index_path(path, i)
        raw = errors.mapping(item, at, ("time", amount_key), required=("time", amount_key))
        if raw is None:
            continue
        time = (
            errors.number(raw["time"], child_path(at, "time"), minimum=0.0, maximum=MAX_TIME)
            if "time" in raw
            else None
        )
        amount = (
            errors.integer(raw[amount_key], child_path(at, amount_key), minimum=0, maximum=MAX_INT32)
            if amount_key in raw
            else None
        )
        if time is not None and amount is not None:
            result.append((time, amount))
    return result


def state_from_dict(doc: object, path: str = "state") -> EngineState:
    """Parse a stored state document (the ``state`` object of the contract).

    Raises
    ------
    DecideInputError
        With every problem, paths under ``path``.
    """
    errors = ErrorList()
    state = _state(doc, path, errors)
    if errors or state is None:
        raise DecideInputError(errors.items)
    return state


def state_to_dict(state: EngineState) -> dict[str, Any]:
    """The state as the contract's ``state`` object (times as floats, counts as ints)."""
    return {
        "recommendations": [
            {"time": float(r.time), "replicas": int(r.replicas)} for r in state.recommendations
        ],
        "scaleUpEvents": [{"time": float(e.time), "change": int(e.change)} for e in state.scale_up_events],
        "scaleDownEvents": [
            {"time": float(e.time), "change": int(e.change)} for e in state.scale_down_events
        ],
        "consecutiveFailures": int(state.consecutive_failures),
        "belowActivationSince": None
        if state.below_activation_since is None
        else float(state.below_activation_since),
    }


# --------------------------------------------------------------------------- output


def rule_mode(rule: Rule) -> Mode:
    """How a decision for ``rule`` is applied: paused wins over dry-run, else active."""
    if rule.paused:
        return "paused"
    return "dryRun" if rule.dry_run else "active"


def _float(value: float) -> float:
    return float(value)


def _metric_result_to_dict(result: MetricResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": result.name,
        "current": None if result.current is None else _float(result.current),
        "target": _float(result.target),
        "proposal": None if result.proposal is None else int(result.proposal),
        "valid": bool(result.valid),
    }
    if result.average_value is not None:
        # Utilization targets only: the raw per-pod usage behind the percentage in ``current``.
        out["averageValue"] = _float(result.average_value)
    if result.error is not None:
        out["error"] = result.error
    return out


def _condition_to_dict(condition: Condition) -> dict[str, Any]:
    return {
        "type": condition.type,
        "status": bool(condition.status),
        "reason": condition.reason,
        "message": condition.message,
    }


def decision_to_dict(decision: Decision, mode: Mode | None = None) -> dict[str, Any]:
    """The contract's output document for ``decision``, keys in ``OUTPUT_FIELDS`` order.

    Parameters
    ----------
    decision
        The engine's decision.
    mode
        ``rule_mode(rule)`` of the evaluated rule. None takes ``decision.extra["mode"]`` when the
        engine set it, else ``"active"``.

    Returns
    -------
    dict
        Plain JSON values: floats stay floats (``20.0``), counts are ints; ``metrics[].error``
        only when the metric failed.
    """
    if mode is None:
        extra_mode = decision.extra.get("mode")
        mode = extra_mode if extra_mode in MODES else "active"
    return {
        "desiredReplicas": int(decision.desired_replicas),
        "currentReplicas": int(decision.current_replicas),
        "action": decision.action,
        "reason": decision.reason,
        "metrics": [_metric_result_to_dict(m) for m in decision.metrics],
        "conditions": [_condition_to_dict(c) for c in decision.conditions],
        "state": state_to_dict(decision.state),
        "mode": mode,
        "fallbackActive": bool(decision.fallback_active),
    }


def decide_input_to_dict(value: DecideInput) -> dict[str, Any]:
    """The input document for ``value``: what the Lambda logs so ``ampscaler decide`` can replay it.

    ``parse_decide_input`` of the result gives ``value`` back (the rule is written with every
    default explicit, through ``rule_to_document``).
    """
    obs = value.observation
    # Fields added for Resource metrics are written only for rules that have one, or when they
    # hold something: documents of other rules keep the shape (and bytes) they always had.
    resource_rule = any(m.resource is not None for m in value.rule.metrics)
    metrics: list[dict[str, Any]] = []
    for m in obs.metrics:
        if m.error is not None:
            metrics.append({"name": m.name, "error": m.error})
        elif m.pod_values is not None:
            entry: dict[str, Any] = {
                "name": m.name,
                "podValues": {k: float(v) for k, v in m.pod_values.items()},
            }
            if m.timestamp is not None:
                entry["timestamp"] = float(m.timestamp)
            if m.window_seconds is not None:
                entry["windowSeconds"] = float(m.window_seconds)
            metrics.append(entry)
        else:
            metrics.append({"name": m.name, "value": None if m.value is None else float(m.value)})
    doc: dict[str, Any] = {
        "rule": rule_to_document(value.rule),
        "now": float(value.now),
        "scale": {"specReplicas": obs.scale.spec_replicas, "statusReplicas": obs.scale.status_replicas},
    }
    if obs.pods is not None:
        doc["pods"] = [_pod_to_dict(p, resource_rule) for p in obs.pods]
    doc["metrics"] = metrics
    doc["state"] = None if value.state is None else state_to_dict(value.state)
    c = value.controller
    doc["controller"] = {
        "tolerance": float(c.tolerance),
        "downscaleStabilizationSeconds": int(c.downscale_stabilization_seconds),
        "scaleUpLimitFactor": float(c.scale_up_limit_factor),
        "scaleUpLimitMinimum": float(c.scale_up_limit_minimum),
    }
    defaults = ControllerConfig()
    if (
        resource_rule
        or c.cpu_initialization_period_seconds != defaults.cpu_initialization_period_seconds
        or c.initial_readiness_delay_seconds != defaults.initial_readiness_delay_seconds
    ):
        doc["controller"]["cpuInitializationPeriodSeconds"] = int(c.cpu_initialization_period_seconds)
        doc["controller"]["initialReadinessDelaySeconds"] = int(c.initial_readiness_delay_seconds)
    return doc


def build_decide_input(
    rule: Rule,
    now: float,
    scale: ScaleObservation,
    pods: Sequence[PodInfo] | None,
    observations: Sequence[MetricObservation],
    state: EngineState | None,
    controller: ControllerConfig | None = None,
) -> DecideInput:
    """The typed decide input of one evaluation, from the parsed rule and what was observed.

    Shared by the tick, ``ampscaler explain`` and the backtest. Observed numbers are made floats
    here, as ``parse_decide_input`` makes them, so the logged input document replays to the same
    decision byte for byte.
    """
    metrics = tuple(_observation_with_floats(obs) for obs in observations)
    typed_pods = None if pods is None else tuple(_pod_with_floats(p) for p in pods)
    return DecideInput(
        rule=rule,
        observation=Observation(scale=scale, metrics=metrics, pods=typed_pods),
        state=state,
        now=float(now),
        controller=controller if controller is not None else ControllerConfig(),
    )


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def _observation_with_floats(obs: MetricObservation) -> MetricObservation:
    """``obs`` with its numbers as floats, as ``parse_decide_input`` gives them."""
    numbers = (obs.value, obs.timestamp, obs.window_seconds)
    if all(n is None or type(n) is float for n in numbers) and (
        obs.pod_values is None or all(type(v) is float for v in obs.pod_values.values())
    ):
        # What the AMP adapter answers: no copy per metric on the tick's path.
        return obs
    return replace(
        obs,
        value=_float_or_none(obs.value),
        pod_values=None if obs.pod_values is None else {k: float(v) for k, v in obs.pod_values.items()},
        timestamp=_float_or_none(obs.timestamp),
        window_seconds=_float_or_none(obs.window_seconds),
    )


def _pod_with_floats(pod: PodInfo) -> PodInfo:
    """``pod`` with its times and requests as floats, as ``parse_decide_input`` gives them."""
    if _floats_already(pod):
        # What the kube adapter lists: no copy per pod on the tick's path.
        return pod
    return replace(
        pod,
        start_time=_float_or_none(pod.start_time),
        ready_transition_time=_float_or_none(pod.ready_transition_time),
        requests={k: float(v) for k, v in pod.requests.items()},
        containers=tuple(
            replace(c, requests={k: float(v) for k, v in c.requests.items()}) for c in pod.containers
        ),
    )


def _floats_already(pod: PodInfo) -> bool:
    times = (pod.start_time, pod.ready_transition_time)
    return (
        all(t is None or type(t) is float for t in times)
        and all(type(v) is float for v in pod.requests.values())
        and all(type(v) is float for c in pod.containers for v in c.requests.values())
    )


def _requests_to_dict(requests: Mapping[str, float]) -> dict[str, float]:
    return {key: float(requests[key]) for key in RESOURCE_NAMES if key in requests}


def _pod_to_dict(pod: PodInfo, explicit: bool) -> dict[str, Any]:
    """One pod; the Resource-metric fields when ``explicit`` or when set (null/{}/[] otherwise left out)."""
    out: dict[str, Any] = {"name": pod.name, "phase": pod.phase, "ready": pod.ready, "deleting": pod.deleting}
    if explicit or pod.start_time is not None:
        out["startTime"] = None if pod.start_time is None else float(pod.start_time)
    if explicit or pod.ready_transition_time is not None:
        out["readyTransitionTime"] = (
            None if pod.ready_transition_time is None else float(pod.ready_transition_time)
        )
    if explicit or pod.requests:
        out["requests"] = _requests_to_dict(pod.requests)
    if explicit or pod.containers:
        out["containers"] = [
            {"name": c.name, "requests": _requests_to_dict(c.requests)} for c in pod.containers
        ]
    return out


def dumps(obj: object) -> str:
    """Canonical JSON: insertion key order, compact separators, ASCII, floats as Python ``repr``.

    The Lambda logs and ``ampscaler decide`` prints through this function only, which is what
    makes a replay byte-identical. NaN/Infinity are refused (ValueError): JSON has no spelling
    for them and the input side rejects them.
    """
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


# --------------------------------------------------------------------------- running


DecideFunction = Callable[[Rule, Observation, EngineState | None, float, ControllerConfig], Decision]


@dataclass(frozen=True)
class Evaluation:
    """One run of the engine and the documents that record it.

    The tick logs these documents, ``ampscaler explain`` prints them and ``ampscaler decide``
    answers with ``output_document``: one path from a typed input to a logged decision. The
    documents are serialised only when asked for (a steady tick logs a compact entry instead).
    """

    input: DecideInput
    decision: Decision

    @cached_property
    def input_document(self) -> dict[str, Any]:
        """The decide input document (``decide_input_to_dict``): what a replay reads."""
        return decide_input_to_dict(self.input)

    @cached_property
    def output_document(self) -> dict[str, Any]:
        """The decide output document (``decision_to_dict``): what a replay prints."""
        return decision_to_dict(self.decision, rule_mode(self.input.rule))


def evaluate(value: DecideInput, engine: DecideFunction | None = None) -> Evaluation:
    """Run the engine (``engine``: a stand-in for tests) on a typed decide input.

    Callers that observed the values themselves (the tick, ``explain``, the backtest) build the
    ``DecideInput`` directly; nothing on that path serialises and re-parses. Replay fidelity is a
    property of ``decide_input_to_dict``/``parse_decide_input``, proven by the round-trip tests.
    """
    run = engine or decide
    decision = run(value.rule, value.observation, value.state, value.now, value.controller)
    return Evaluation(value, decision)


def decide_document(doc: object, engine: DecideFunction | None = None) -> dict[str, Any]:
    """Parse a decide input, run the engine (``engine``: a stand-in for tests), return the output document.

    Raises
    ------
    DecideInputError
        When the input is invalid.
    """
    return evaluate(parse_decide_input(doc), engine).output_document
