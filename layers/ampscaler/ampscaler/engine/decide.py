"""``decide``: one evaluation of one rule, the pure analogue of the HPA's reconcileAutoscaler."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ampscaler.engine import reasons
from ampscaler.engine.behavior import (
    NormalizationArg,
    Normalized,
    clamp,
    maybe_init_scale_down_stabilization_window,
    normalize_desired_replicas,
    normalize_desired_replicas_with_behaviors,
    store_scale_event,
)
from ampscaler.engine.proposals import (
    MetricsOutcome,
    compute_replicas_for_metrics,
    in_range,
    metric_description,
    resolve_tolerances,
)
from ampscaler.engine.types import (
    Action,
    Condition,
    ControllerConfig,
    Decision,
    EngineState,
    MetricObservation,
    Observation,
    Recommendation,
)
from ampscaler.model import Fallback, Rule

_DEFAULT_CONTROLLER = ControllerConfig()


@dataclass(frozen=True)
class _Activity:
    """KEDA-style activity of the rule's metrics (only consulted when minReplicas is 0)."""

    any_active: bool
    # Every metric was read successfully and is at or below its activation threshold.
    all_below: bool
    # Description of the first active metric ("external metric backlog").
    active_metric: str


@dataclass(frozen=True)
class _Outcome:
    """What one branch of ``decide`` settled on."""

    desired: int
    reason: str
    able: Condition
    limited: Condition
    recommendations: tuple[Recommendation, ...]
    stabilized: int | None = None


def _sample_activation_value(sample: MetricObservation | None) -> float | None:
    """The number compared with activationThreshold, or None when the metric failed.

    KEDA compares the scaler's metric value; for a Pods metric that is the per-pod average of
    the samples (0 when no pod reported one).
    """
    if sample is None or sample.error is not None:
        return None
    if sample.pod_values is not None:
        if any(math.isfinite(v) and not in_range(v) for v in sample.pod_values.values()):
            return None  # the metric is invalid (compute_replicas_for_metric says why)
        values = [v for v in sample.pod_values.values() if math.isfinite(v)]
        return sum(values) / len(values) if values else 0.0
    if sample.value is None or not in_range(sample.value):
        return None
    return sample.value


def _activity(rule: Rule, observation: Observation) -> _Activity:
    """Whether any metric is active (strictly above its threshold, as KEDA) and whether all are idle."""
    samples = {sample.name: sample for sample in observation.metrics}
    any_active = False
    all_below = bool(rule.metrics)
    active_metric = ""
    for spec in rule.metrics:
        if spec.resource is not None:
            # KEDA: cpu/memory triggers take no part in activation (they cannot scale from
            # zero: no pod reports usage at zero replicas), so they neither wake nor hold a rule.
            continue
        value = _sample_activation_value(samples.get(spec.name))
        if value is None:
            # A failed metric is neither active nor idle: it can never cause a scale to zero.
            all_below = False
            continue
        if value > spec.activation_threshold:
            all_below = False
            if not any_active:
                any_active = True
                active_metric = metric_description(spec)
    return _Activity(any_active, all_below, active_metric)


def _fallback_replicas(fallback: Fallback, current: int) -> int:
    """KEDA ``doFallback``: static, currentReplicas, currentReplicasIfHigher/IfLower."""
    if fallback.behavior == "currentReplicas":
        return current
    if fallback.behavior == "currentReplicasIfHigher":
        return max(current, fallback.replicas)
    if fallback.behavior == "currentReplicasIfLower":
        return min(current, fallback.replicas)
    return fallback.replicas


def _history_window_seconds(rule: Rule, controller: ControllerConfig) -> int:
    """The longest stabilization window that will read the recommendation history."""
    if rule.behavior is None:
        return controller.downscale_stabilization_seconds
    down = maybe_init_scale_down_stabilization_window(
        rule.behavior.scale_down, controller.downscale_stabilization_seconds
    )
    return max(rule.behavior.scale_up.stabilization_window_seconds or 0, down)


def _record(
    recommendations: Sequence[Recommendation], now: float, replicas: int, window_seconds: int
) -> tuple[Recommendation, ...]:
    """Append a raw recommendation, dropping samples older than every window that reads them."""
    cutoff = now - window_seconds
    kept = tuple(rec for rec in recommendations if not rec.time < cutoff)
    return (*kept, Recommendation(time=now, replicas=replicas))


def _limited(desired: int, wanted: int) -> Condition:
    """ScalingLimited for a direct jump to ``desired`` when ``wanted`` was asked for."""
    if desired > wanted:
        return Condition("ScalingLimited", True, reasons.TOO_FEW_REPLICAS, reasons.MSG_TOO_FEW_REPLICAS)
    if desired < wanted:
        return Condition("ScalingLimited", True, reasons.TOO_MANY_REPLICAS, reasons.MSG_TOO_MANY_REPLICAS)
    return Condition("ScalingLimited", False, reasons.DESIRED_WITHIN_RANGE, reasons.MSG_DESIRED_WITHIN_RANGE)


_READY = Condition("AbleToScale", True, reasons.READY_FOR_NEW_SCALE, reasons.MSG_READY_FOR_NEW_SCALE)


def _scaling_active(rule: Rule, outcome: MetricsOutcome) -> Condition:
    """ScalingActive as computeReplicasForMetrics leaves it."""
    if outcome.replicas == -1:
        if not rule.metrics:
            return Condition("ScalingActive", False, "InvalidMetricSourceType", "the rule has no metrics")
        return Condition("ScalingActive", False, outcome.invalid_reason, outcome.invalid_message)
    return Condition(
        "ScalingActive", True, reasons.VALID_METRIC_FOUND, reasons.valid_metric_found_message(outcome.metric)
    )


def _normalize(
    rule: Rule,
    state: EngineState,
    recommendations: tuple[Recommendation, ...],
    current: int,
    proposal: int,
    min_replicas: int,
    now: float,
    controller: ControllerConfig,
) -> Normalized:
    """Dispatch to the legacy or the behavior normalization, as reconcileAutoscaler does."""
    if rule.behavior is None:
        return normalize_desired_replicas(
            recommendations,
            current,
            proposal,
            min_replicas,
            rule.max_replicas,
            now,
            controller.downscale_stabilization_seconds,
            controller.scale_up_limit_factor,
            controller.scale_up_limit_minimum,
        )
    arg = NormalizationArg(
        scale_up=rule.behavior.scale_up,
        scale_down=rule.behavior.scale_down,
        scale_down_window_seconds=maybe_init_scale_down_stabilization_window(
            rule.behavior.scale_down, controller.downscale_stabilization_seconds
        ),
        min_replicas=min_replicas,
        max_replicas=rule.max_replicas,
        current_replicas=current,
        desired_replicas=proposal,
    )
    return normalize_desired_replicas_with_behaviors(
        arg, recommendations, state.scale_up_events, state.scale_down_events, now
    )


def _outcome_from(normalized: Normalized, reason: str) -> _Outcome:
    """The outcome of a normalized recommendation: its count, conditions and new history."""
    return _Outcome(
        desired=normalized.desired_replicas,
        reason=reason,
        able=Condition(
            "AbleToScale", True, normalized.able_to_scale_reason, normalized.able_to_scale_message
        ),
        limited=Condition(
            "ScalingLimited",
            normalized.scaling_limited,
            normalized.scaling_limited_reason,
            normalized.scaling_limited_message,
        ),
        recommendations=normalized.recommendations,
        stabilized=normalized.stabilized_replicas,
    )


def _why_held(normalized: Normalized) -> str:
    """Why the normalized count differs from the recommendation: a limit, else a window."""
    if normalized.scaling_limited:
        return normalized.scaling_limited_message
    return normalized.able_to_scale_message


def _fallback_driven(
    rule: Rule,
    fallback: Fallback,
    state: EngineState,
    recommendations: tuple[Recommendation, ...],
    outcome: MetricsOutcome,
    failures: int,
    current: int,
    now: float,
    controller: ControllerConfig,
) -> _Outcome:
    """Fallback as KEDA gets it through the HPA: the fallback count is the recommendation.

    KEDA answers the HPA's metric request with a value that makes the HPA compute the fallback
    count, so stabilization windows, ``behavior`` policies (or the legacy limits) and the clamp
    to ``[max(minReplicas, 1), maxReplicas]`` all still apply. The caller has already left a
    target scaled to zero by hand, or outside its bounds, to the HPA's own branches.
    """
    wanted = _fallback_replicas(fallback, current)
    head = (
        f"fallback: every metric failed in {failures} consecutive evaluations "
        f"(failureThreshold {fallback.failure_threshold}), {fallback.behavior} fallback to {wanted} replicas"
    )
    if current == 0 and wanted == 0:
        # A scale-to-zero rule asleep at 0 whose fallback count is 0: nothing to wake.
        return _Outcome(0, f"{head}; {outcome.error}", _READY, _limited(0, 0), recommendations)
    # As for a metric proposal, the HPA path never goes below 1; only the activation rule reaches 0.
    normalized = _normalize(
        rule, state, recommendations, current, wanted, max(rule.min_replicas, 1), now, controller
    )
    reason = head if normalized.desired_replicas == wanted else f"{head}, but {_why_held(normalized)}"
    return _outcome_from(normalized, f"{reason}; {outcome.error}")


def _metric_driven(
    rule: Rule,
    state: EngineState,
    recommendations: tuple[Recommendation, ...],
    outcome: MetricsOutcome,
    current: int,
    now: float,
    controller: ControllerConfig,
) -> _Outcome:
    """The ordinary HPA path: metric proposal -> stabilization -> rate limits -> clamp."""
    # With scale-to-zero the HPA itself never goes below 1; only the activation rule reaches 0.
    min_replicas = max(rule.min_replicas, 1)
    proposal = outcome.replicas
    normalized = _normalize(rule, state, recommendations, current, proposal, min_replicas, now, controller)
    desired = normalized.desired_replicas
    base = reasons.rescale_reason(outcome.metric, proposal, current)
    if desired != current:
        reason = base
    elif base:
        reason = f"{base}, but {_why_held(normalized)}"
    else:
        reason = reasons.MSG_READY_FOR_NEW_SCALE
    return _outcome_from(normalized, reason)


def decide(
    rule: Rule,
    observation: Observation,
    state: EngineState | None,
    now: float,
    controller: ControllerConfig = _DEFAULT_CONTROLLER,
) -> Decision:
    """Evaluate one rule once: the desired replica count, the HPA-style conditions and new state.

    Upstream: ``HorizontalController.reconcileAutoscaler`` (minus the API calls), plus KEDA-style
    fallback, scale to/from zero, paused and dry-run. Pure: ``now`` is the only clock, inputs are
    never mutated, equal inputs give equal outputs.

    Parameters
    ----------
    rule:
        The parsed rule.
    observation:
        The target's scale, its pods and the metric samples of this evaluation.
    state:
        The state returned by the previous evaluation, or None for the first one (the
        recommendation history is then seeded with the current count, as upstream does when it
        first sees an HPA).
    now:
        Evaluation time, unix seconds.
    controller:
        kube-controller-manager flags.

    Returns
    -------
    Decision
        ``action`` is "scale" only when the count changes and the rule is neither paused nor in
        dry-run; ``extra["mode"]`` says which of "active", "paused", "dryRun" applied.
    """
    mode = "paused" if rule.paused else ("dryRun" if rule.dry_run else "active")
    current = observation.scale.spec_replicas
    previous = state if state is not None else EngineState()
    recommendations = previous.recommendations
    if state is None:
        # Upstream: recordInitialRecommendation, only for a key never seen before (a stored but
        # empty history is kept empty, as upstream keeps a non-nil empty slice).
        recommendations = (Recommendation(time=now, replicas=current),)

    tolerances = resolve_tolerances(rule, controller)
    outcome = compute_replicas_for_metrics(rule, observation, tolerances, now=now, controller=controller)
    all_failed = bool(rule.metrics) and outcome.invalid_count >= len(rule.metrics)
    failures = previous.consecutive_failures + 1 if all_failed else 0
    scaling_active = _scaling_active(rule, outcome)

    zero_enabled = rule.min_replicas == 0
    activity = _activity(rule, observation)
    below_since: float | None = None
    if zero_enabled and activity.all_below:
        below_since = previous.below_activation_since if previous.below_activation_since is not None else now
    window = _history_window_seconds(rule, controller)

    # KEDA: fallback once the failure count exceeds failureThreshold. It only replaces the
    # metrics' proposal, so the HPA's own early branches (scaled to zero by hand, outside the
    # bounds) come first, and fallbackActive is true only when the fallback count was used.
    fallback_due = rule.fallback is not None and all_failed and failures > rule.fallback.failure_threshold
    fallback_active = False

    result: _Outcome
    if current == 0 and rule.min_replicas > 0:
        # Upstream: autoscaling is disabled for a target scaled to zero by hand.
        scaling_active = Condition(
            "ScalingActive", False, reasons.SCALING_DISABLED, reasons.MSG_SCALING_DISABLED
        )
        result = _Outcome(0, reasons.MSG_SCALING_DISABLED, _READY, _limited(0, 0), recommendations)
    elif current > rule.max_replicas:
        result = _Outcome(
            rule.max_replicas,
            reasons.ABOVE_MAX,
            _READY,
            _limited(rule.max_replicas, current),
            recommendations,
        )
    elif current < rule.min_replicas:
        result = _Outcome(
            rule.min_replicas,
            reasons.BELOW_MIN,
            _READY,
            _limited(rule.min_replicas, current),
            recommendations,
        )
    elif fallback_due:
        assert rule.fallback is not None
        fallback_active = True
        result = _fallback_driven(
            rule, rule.fallback, previous, recommendations, outcome, failures, current, now, controller
        )
    elif zero_enabled and current == 0:
        if activity.any_active:
            # KEDA activates to max(1, minReplicas); ampscaler takes the HPA proposal when higher.
            wanted = max(1, outcome.replicas)
            desired = clamp(wanted, 1, rule.max_replicas)
            scaling_active = Condition(
                "ScalingActive",
                True,
                reasons.VALID_METRIC_FOUND,
                reasons.valid_metric_found_message(activity.active_metric),
            )
            result = _Outcome(
                desired,
                f"{activity.active_metric} above activation threshold",
                _READY,
                _limited(desired, wanted),
                _record(recommendations, now, desired, window),
            )
        else:
            if not all_failed:
                scaling_active = Condition(
                    "ScalingActive",
                    False,
                    reasons.BELOW_ACTIVATION,
                    "no metric is above its activation threshold",
                )
            why = outcome.error if all_failed else "no metric is above its activation threshold"
            result = _Outcome(0, why, _READY, _limited(0, 0), recommendations)
    elif (
        zero_enabled
        and activity.all_below
        and below_since is not None
        and now - below_since >= rule.cooldown_period_seconds
    ):
        result = _Outcome(
            0,
            f"all metrics at or below their activation threshold for {rule.cooldown_period_seconds}s",
            _READY,
            _limited(0, 0),
            _record(recommendations, now, 0, window),
        )
    elif outcome.replicas == -1:
        # Upstream returns before normalization: no recommendation is recorded, nothing scales.
        result = _Outcome(current, outcome.error, _READY, _limited(current, current), recommendations)
    else:
        result = _metric_driven(rule, previous, recommendations, outcome, current, now, controller)

    desired = result.desired
    action: Action = "scale" if desired != current and mode == "active" else "none"
    scale_up_events, scale_down_events = previous.scale_up_events, previous.scale_down_events
    if action == "scale":
        scale_up_events, scale_down_events = store_scale_event(
            rule.behavior, scale_up_events, scale_down_events, current, desired, now
        )

    new_state = EngineState(
        recommendations=result.recommendations,
        scale_up_events=scale_up_events,
        scale_down_events=scale_down_events,
        consecutive_failures=failures,
        below_activation_since=below_since,
    )
    extra: dict[str, object] = {
        "mode": mode,
        "metricDesiredReplicas": outcome.replicas,
        "consecutiveFailures": failures,
    }
    if result.stabilized is not None:
        extra["stabilizedReplicas"] = result.stabilized
    return Decision(
        desired_replicas=desired,
        current_replicas=current,
        action=action,
        reason=reasons.mode_prefixed(mode, result.reason, current, desired),
        metrics=outcome.results,
        conditions=(result.able, scaling_active, result.limited),
        state=new_state,
        fallback_active=fallback_active,
        extra=extra,
    )
