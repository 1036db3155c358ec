"""Stabilization, rate-limit policies and the min/max clamp: from a raw proposal to the desired count.

Mirrors ``horizontal.go``: the legacy path (normalizeDesiredReplicas, stabilizeRecommendation,
convertDesiredReplicasWithRules, calculateScaleUpLimit) and the behavior path
(normalizeDesiredReplicasWithBehaviors, stabilizeRecommendationWithBehaviors,
convertDesiredReplicasWithBehaviorRate, calculateScaleUpLimitWithScalingRules,
calculateScaleDownLimitWithBehaviors, getReplicasChangePerPeriod, storeScaleEvent).
Upstream keeps history in controller memory and reads ``time.Now()``; here history comes in as
tuples, ``now`` is a parameter and the new history goes out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ampscaler.engine import reasons
from ampscaler.engine.types import Recommendation, ScaleEvent
from ampscaler.model import Behavior, ScalingRules

MAX_INT32 = 2**31 - 1
MIN_INT32 = -(2**31)


@dataclass(frozen=True)
class NormalizationArg:
    """Arguments of the behavior normalization, bundled as upstream does.

    Upstream: ``NormalizationArg``. ``scale_down_window_seconds`` is the scale-down window after
    ``maybeInitScaleDownStabilizationWindow`` has filled in the controller default.
    """

    scale_up: ScalingRules
    scale_down: ScalingRules
    scale_down_window_seconds: int
    min_replicas: int
    max_replicas: int
    current_replicas: int
    desired_replicas: int


@dataclass(frozen=True)
class Normalized:
    """The outcome of normalization: desired replicas, the two conditions it sets, new history."""

    desired_replicas: int
    # The count after stabilization, before the rate limits and the clamp.
    stabilized_replicas: int
    able_to_scale_reason: str
    able_to_scale_message: str
    scaling_limited: bool
    scaling_limited_reason: str
    scaling_limited_message: str
    recommendations: tuple[Recommendation, ...]


def clamp(replicas: int, min_replicas: int, max_replicas: int) -> int:
    """``replicas`` bounded to [min_replicas, max_replicas]."""
    return max(min_replicas, min(max_replicas, replicas))


def maybe_init_scale_down_stabilization_window(
    rules: ScalingRules, downscale_stabilization_seconds: int
) -> int:
    """The scale-down window, with the controller flag standing in when the rule left it unset.

    Upstream: ``HorizontalController.maybeInitScaleDownStabilizationWindow``.
    """
    if rules.stabilization_window_seconds is None:
        return downscale_stabilization_seconds
    return rules.stabilization_window_seconds


# ---------------------------------------------------------------------------------------------
# Legacy path (no behavior)
# ---------------------------------------------------------------------------------------------


def calculate_scale_up_limit(current_replicas: int, factor: float, minimum: float) -> int:
    """Upstream: ``calculateScaleUpLimit``: int32(max(factor*current, minimum))."""
    return int(max(factor * float(current_replicas), minimum))


def stabilize_recommendation(
    recommendations: Sequence[Recommendation],
    prenormalized_desired_replicas: int,
    now: float,
    window_seconds: int,
) -> tuple[int, tuple[Recommendation, ...]]:
    """Max over the downscale window of stored recommendations and the new one; record the new one.

    Upstream: ``HorizontalController.stabilizeRecommendation``. A sample strictly older than
    ``now - window`` is out of the window (upstream reuses its slot; here it is pruned).

    Returns
    -------
    tuple[int, tuple[Recommendation, ...]]
        The stabilized recommendation and the new history.
    """
    cutoff = now - window_seconds
    max_recommendation = prenormalized_desired_replicas
    kept: list[Recommendation] = []
    for rec in recommendations:
        if rec.time < cutoff:
            continue
        kept.append(rec)
        max_recommendation = max(max_recommendation, rec.replicas)
    kept.append(Recommendation(time=now, replicas=prenormalized_desired_replicas))
    return max_recommendation, tuple(kept)


def convert_desired_replicas_with_rules(
    current_replicas: int,
    desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    scale_up_limit_factor: float,
    scale_up_limit_minimum: float,
) -> tuple[int, str, str]:
    """Clamp to [min, min(max, scaleUpLimit)] and say which bound applied.

    Upstream: ``convertDesiredReplicasWithRules``.

    Returns
    -------
    tuple[int, str, str]
        ``(replicas, condition reason, condition message)``.
    """
    scale_up_limit = calculate_scale_up_limit(current_replicas, scale_up_limit_factor, scale_up_limit_minimum)
    if max_replicas > scale_up_limit:
        maximum_allowed = scale_up_limit
        limiting_reason, limiting_message = reasons.SCALE_UP_LIMIT, reasons.MSG_SCALE_UP_LIMIT
    else:
        maximum_allowed = max_replicas
        limiting_reason, limiting_message = reasons.TOO_MANY_REPLICAS, reasons.MSG_TOO_MANY_REPLICAS

    if desired_replicas < min_replicas:
        return min_replicas, reasons.TOO_FEW_REPLICAS, reasons.MSG_TOO_FEW_REPLICAS
    if desired_replicas > maximum_allowed:
        return maximum_allowed, limiting_reason, limiting_message
    return desired_replicas, reasons.DESIRED_WITHIN_RANGE, reasons.MSG_DESIRED_WITHIN_RANGE


def normalize_desired_replicas(
    recommendations: Sequence[Recommendation],
    current_replicas: int,
    prenormalized_desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    now: float,
    downscale_stabilization_seconds: int,
    scale_up_limit_factor: float,
    scale_up_limit_minimum: float,
) -> Normalized:
    """The legacy (no behavior) normalization.

    Upstream: ``HorizontalController.normalizeDesiredReplicas``.

    Parameters
    ----------
    recommendations:
        Stored raw recommendations.
    current_replicas:
        spec.replicas.
    prenormalized_desired_replicas:
        The metric proposal.
    min_replicas, max_replicas:
        Bounds.
    now:
        Evaluation time (unix seconds).
    downscale_stabilization_seconds:
        --horizontal-pod-autoscaler-downscale-stabilization.
    scale_up_limit_factor, scale_up_limit_minimum:
        The legacy scale-up limit constants.

    Returns
    -------
    Normalized
        Desired count, conditions and the new history.
    """
    stabilized, new_recs = stabilize_recommendation(
        recommendations, prenormalized_desired_replicas, now, downscale_stabilization_seconds
    )
    if stabilized != prenormalized_desired_replicas:
        able_reason, able_message = reasons.SCALE_DOWN_STABILIZED, reasons.MSG_SCALE_DOWN_STABILIZED
    else:
        able_reason, able_message = reasons.READY_FOR_NEW_SCALE, reasons.MSG_READY_FOR_NEW_SCALE
    desired, limit_reason, limit_message = convert_desired_replicas_with_rules(
        current_replicas,
        stabilized,
        min_replicas,
        max_replicas,
        scale_up_limit_factor,
        scale_up_limit_minimum,
    )
    return Normalized(
        desired_replicas=desired,
        stabilized_replicas=stabilized,
        able_to_scale_reason=able_reason,
        able_to_scale_message=able_message,
        scaling_limited=desired != stabilized,
        scaling_limited_reason=limit_reason,
        scaling_limited_message=limit_message,
        recommendations=new_recs,
    )


# ---------------------------------------------------------------------------------------------
# Behavior path
# ---------------------------------------------------------------------------------------------


def stabilize_recommendation_with_behaviors(
    arg: NormalizationArg, recommendations: Sequence[Recommendation], now: float
) -> tuple[int, str, str, tuple[Recommendation, ...]]:
    """Min over the scale-up window, max over the scale-down window; record the raw proposal.

    Upstream: ``HorizontalController.stabilizeRecommendationWithBehaviors``. A sample counts in a
    window when it is strictly after ``now - window``; samples older than both windows are
    dropped (upstream reuses one such slot).

    Returns
    -------
    tuple[int, str, str, tuple[Recommendation, ...]]
        ``(stabilized, AbleToScale reason, message, new history)``; the reason is what upstream
        reports when stabilization changed the proposal.
    """
    up_window = arg.scale_up.stabilization_window_seconds or 0
    up_cutoff = now - up_window
    down_cutoff = now - arg.scale_down_window_seconds
    up_recommendation = arg.desired_replicas
    down_recommendation = arg.desired_replicas
    kept: list[Recommendation] = []
    for rec in recommendations:
        if rec.time > up_cutoff:
            up_recommendation = min(rec.replicas, up_recommendation)
        if rec.time > down_cutoff:
            down_recommendation = max(rec.replicas, down_recommendation)
        if not (rec.time < up_cutoff and rec.time < down_cutoff):
            kept.append(rec)

    recommendation = arg.current_replicas
    if recommendation < up_recommendation:
        recommendation = up_recommendation
    if recommendation > down_recommendation:
        recommendation = down_recommendation

    kept.append(Recommendation(time=now, replicas=arg.desired_replicas))
    if arg.desired_replicas >= arg.current_replicas:
        reason, message = reasons.SCALE_UP_STABILIZED, reasons.MSG_SCALE_UP_STABILIZED
    else:
        reason, message = reasons.SCALE_DOWN_STABILIZED, reasons.MSG_SCALE_DOWN_STABILIZED
    return recommendation, reason, message, tuple(kept)


def get_replicas_change_per_period(
    period_seconds: int, scale_events: Sequence[ScaleEvent], now: float
) -> int:
    """Sum of replica changes strictly after ``now - period``.

    Upstream: ``getReplicasChangePerPeriod``.
    """
    cutoff = now - period_seconds
    return sum(event.change for event in scale_events if event.time > cutoff)


def calculate_scale_up_limit_with_scaling_rules(
    current_replicas: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    now: float,
) -> int:
    """The highest count the scale-up policies allow now.

    Upstream: ``calculateScaleUpLimitWithScalingRules``. Percent rounds up (ceil) so that a
    small percentage can still add a pod.
    """
    if rules.select_policy == "Disabled":
        return current_replicas
    if rules.select_policy == "Min":
        result = MAX_INT32
        select = min
    else:
        result = MIN_INT32
        select = max
    for policy in rules.policies:
        added = get_replicas_change_per_period(policy.period_seconds, scale_up_events, now)
        deleted = get_replicas_change_per_period(policy.period_seconds, scale_down_events, now)
        period_start = current_replicas - added + deleted
        if policy.type == "Pods":
            proposed = period_start + policy.value
        else:
            proposed = math.ceil(float(period_start) * (1 + float(policy.value) / 100))
        result = select(result, proposed)
    return result


def calculate_scale_down_limit_with_behaviors(
    current_replicas: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    now: float,
) -> int:
    """The lowest count the scale-down policies allow now.

    Upstream: ``calculateScaleDownLimitWithBehaviors``. Percent truncates (int32 conversion,
    i.e. rounds down for the non-negative counts involved).
    """
    if rules.select_policy == "Disabled":
        return current_replicas
    if rules.select_policy == "Min":
        result = MIN_INT32
        select = max
    else:
        result = MAX_INT32
        select = min
    for policy in rules.policies:
        added = get_replicas_change_per_period(policy.period_seconds, scale_up_events, now)
        deleted = get_replicas_change_per_period(policy.period_seconds, scale_down_events, now)
        period_start = current_replicas - added + deleted
        if policy.type == "Pods":
            proposed = period_start - policy.value
        else:
            proposed = int(float(period_start) * (1 - float(policy.value) / 100))
        result = select(result, proposed)
    return result


def convert_desired_replicas_with_behavior_rate(
    arg: NormalizationArg,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    now: float,
) -> tuple[int, str, str]:
    """Apply the rate-limit policies and the min/max bounds.

    Upstream: ``HorizontalController.convertDesiredReplicasWithBehaviorRate``.

    Returns
    -------
    tuple[int, str, str]
        ``(replicas, ScalingLimited reason, message)``.
    """
    if arg.desired_replicas > arg.current_replicas:
        scale_up_limit = calculate_scale_up_limit_with_scaling_rules(
            arg.current_replicas, scale_up_events, scale_down_events, arg.scale_up, now
        )
        # Do not scale up further until the scale-up events age out.
        scale_up_limit = max(scale_up_limit, arg.current_replicas)
        maximum_allowed = arg.max_replicas
        if maximum_allowed > scale_up_limit:
            maximum_allowed = scale_up_limit
            reason, message = reasons.SCALE_UP_LIMIT, reasons.MSG_SCALE_UP_LIMIT
        else:
            reason, message = reasons.TOO_MANY_REPLICAS, reasons.MSG_TOO_MANY_REPLICAS
        if arg.desired_replicas > maximum_allowed:
            return maximum_allowed, reason, message
    elif arg.desired_replicas < arg.current_replicas:
        scale_down_limit = calculate_scale_down_limit_with_behaviors(
            arg.current_replicas, scale_up_events, scale_down_events, arg.scale_down, now
        )
        # Do not scale down further until the scale-down events age out.
        scale_down_limit = min(scale_down_limit, arg.current_replicas)
        minimum_allowed = arg.min_replicas
        if minimum_allowed < scale_down_limit:
            minimum_allowed = scale_down_limit
            reason, message = reasons.SCALE_DOWN_LIMIT, reasons.MSG_SCALE_DOWN_LIMIT
        else:
            reason, message = reasons.TOO_FEW_REPLICAS, reasons.MSG_TOO_FEW_REPLICAS
        if arg.desired_replicas < minimum_allowed:
            return minimum_allowed, reason, message
    return arg.desired_replicas, reasons.DESIRED_WITHIN_RANGE, reasons.MSG_DESIRED_WITHIN_RANGE


def normalize_desired_replicas_with_behaviors(
    arg: NormalizationArg,
    recommendations: Sequence[Recommendation],
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    now: float,
) -> Normalized:
    """Stabilize, then rate-limit and clamp, as the HPA does when ``behavior`` is set.

    Upstream: ``HorizontalController.normalizeDesiredReplicasWithBehaviors``.

    Parameters
    ----------
    arg:
        Current/desired counts, bounds and the two scaling rules.
    recommendations:
        Stored raw recommendations.
    scale_up_events, scale_down_events:
        Stored scale events.
    now:
        Evaluation time.

    Returns
    -------
    Normalized
        Desired count, conditions and the new recommendation history.
    """
    stabilized, stab_reason, stab_message, new_recs = stabilize_recommendation_with_behaviors(
        arg, recommendations, now
    )
    if stabilized != arg.desired_replicas:
        able_reason, able_message = stab_reason, stab_message
    else:
        able_reason, able_message = reasons.READY_FOR_NEW_SCALE, reasons.MSG_READY_FOR_NEW_SCALE
    rate_arg = NormalizationArg(
        scale_up=arg.scale_up,
        scale_down=arg.scale_down,
        scale_down_window_seconds=arg.scale_down_window_seconds,
        min_replicas=arg.min_replicas,
        max_replicas=arg.max_replicas,
        current_replicas=arg.current_replicas,
        desired_replicas=stabilized,
    )
    desired, limit_reason, limit_message = convert_desired_replicas_with_behavior_rate(
        rate_arg, scale_up_events, scale_down_events, now
    )
    return Normalized(
        desired_replicas=desired,
        stabilized_replicas=stabilized,
        able_to_scale_reason=able_reason,
        able_to_scale_message=able_message,
        scaling_limited=desired != stabilized,
        scaling_limited_reason=limit_reason,
        scaling_limited_message=limit_message,
        recommendations=new_recs,
    )


def get_longest_policy_period(rules: ScalingRules) -> int:
    """Upstream: ``getLongestPolicyPeriod``."""
    return max((policy.period_seconds for policy in rules.policies), default=0)


def prune_scale_events(
    events: Sequence[ScaleEvent], longest_period_seconds: int, now: float
) -> tuple[ScaleEvent, ...]:
    """Drop events strictly older than the longest policy period.

    Upstream: ``markScaleEventsOutdated`` marks them for reuse; none of them can count in
    ``getReplicasChangePerPeriod`` again, so dropping them is equivalent.
    """
    cutoff = now - longest_period_seconds
    return tuple(event for event in events if not event.time < cutoff)


def store_scale_event(
    behavior: Behavior | None,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    prev_replicas: int,
    new_replicas: int,
    now: float,
) -> tuple[tuple[ScaleEvent, ...], tuple[ScaleEvent, ...]]:
    """Record an applied scale change in the history of its direction.

    Upstream: ``HorizontalController.storeScaleEvent``: nothing is stored without ``behavior``
    (the legacy path never reads the events); events older than the direction's longest policy
    period are dropped.

    Returns
    -------
    tuple[tuple[ScaleEvent, ...], tuple[ScaleEvent, ...]]
        The new ``(scale_up_events, scale_down_events)``.
    """
    up = tuple(scale_up_events)
    down = tuple(scale_down_events)
    if behavior is None or new_replicas == prev_replicas:
        return up, down
    if new_replicas > prev_replicas:
        kept = prune_scale_events(up, get_longest_policy_period(behavior.scale_up), now)
        return (*kept, ScaleEvent(time=now, change=new_replicas - prev_replicas)), down
    kept = prune_scale_events(down, get_longest_policy_period(behavior.scale_down), now)
    return up, (*kept, ScaleEvent(time=now, change=prev_replicas - new_replicas))
