"""One scaler tick over every rule of this shard: the analogue of the HPA's reconcileAutoscaler loop.

The tick is the imperative shell around the pure engine. For each rule it takes the rule's lease,
observes the target (scale, pods) and its metrics through the ports, builds the exact ``decide``
input document, runs the same contract code path as ``ampscaler decide`` (so every logged decision
replays byte-for-byte), patches the scale when the decision says so, and persists the new state.
One rule's failure is logged and counted, and never stops another rule.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from ampscaler import contract
from ampscaler.engine.types import Decision, EngineState, MetricObservation, PodInfo
from ampscaler.errors import AmpscalerError, ConflictError, LeaseHeldError, ScaleTargetError
from ampscaler.model import MetricSpec, Rule
from ampscaler.ports import (
    AuditSink,
    LoadedRule,
    MetricsSource,
    RuleStore,
    ScaleReading,
    ScaleTarget,
    StateStore,
    StoredState,
)
from ampscaler.settings import Settings

logger = logging.getLogger(__name__)

# Outcome words shared by logs, metrics and the CLI (upstream monitor.ActionLabel).
OUTCOME_SCALE_UP = "scale_up"
OUTCOME_SCALE_DOWN = "scale_down"
OUTCOME_NONE = "none"

# Event reasons verbatim from the HPA controller, so `kubectl describe` reads the same.
EVENT_SUCCESSFUL_RESCALE = "SuccessfulRescale"
EVENT_FAILED_RESCALE = "FailedRescale"
EVENT_FAILED_GET_SCALE = "FailedGetScale"

# A rule whose own interval is not yet due is skipped; half a tick of slack absorbs jitter in
# when the evaluation actually started.
_INTERVAL_SLACK_FRACTION = 0.5


@dataclass(frozen=True)
class Ports:
    """The adapters one tick talks to; only handlers, the CLI and tests compose them."""

    rules: RuleStore
    metrics: MetricsSource
    targets: ScaleTarget
    state: StateStore
    audit: AuditSink


@dataclass(frozen=True)
class RuleOutcome:
    """What happened to one rule in one tick."""

    rule: str
    status: str  # evaluated | skipped | error
    outcome: str = OUTCOME_NONE
    patched: bool = False
    message: str = ""
    decision: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TickResult:
    """Summary of one tick over this shard's rules."""

    slot: str
    started: float
    duration_seconds: float
    outcomes: tuple[RuleOutcome, ...] = ()
    invalid_rules: tuple[str, ...] = ()

    @property
    def evaluated(self) -> int:
        """Number of rules whose evaluation completed."""
        return sum(1 for o in self.outcomes if o.status == "evaluated")

    @property
    def errors(self) -> int:
        """Number of rules whose evaluation failed."""
        return sum(1 for o in self.outcomes if o.status == "error")


@dataclass
class _Timings:
    started: float
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str, clock: Callable[[], float]) -> None:
        self.marks[name] = round((clock() - self.started) * 1000.0, 1)


def shard_of(rule_name: str, shard_count: int) -> int:
    """Stable shard index of a rule: sha256 of its name modulo the shard count.

    Python's ``hash`` is salted per process, so it cannot be used across invocations.
    """
    if shard_count <= 1:
        return 0
    digest = hashlib.sha256(rule_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard_count


def slot_of(at: float, interval_seconds: int) -> str:
    """Schedule slot identifier for an evaluation at ``at``; one slot is acted on at most once.

    Fixed-width digits, so that comparing slots as strings (as the state store does) orders them
    in time.
    """
    return slot_id(int(at // interval_seconds))


def slot_id(index: int) -> str:
    """The identifier of slot number ``index`` (zero-padded to 12 digits)."""
    return f"{index:012d}"


def needs_pods(rule: Rule) -> bool:
    """Whether evaluating ``rule`` needs the pod list (Pods metrics and Value targets do)."""
    return any(m.type == "Pods" or m.target.type == "Value" for m in rule.metrics) or rule.min_replicas == 0


def outcome_of(current: int, desired: int) -> str:
    """scale_up, scale_down or none."""
    if desired > current:
        return OUTCOME_SCALE_UP
    if desired < current:
        return OUTCOME_SCALE_DOWN
    return OUTCOME_NONE


class Ticker:
    """Runs ticks over the rules of one shard with a bounded worker pool.

    Parameters
    ----------
    ports:
        The adapters.
    settings:
        Function settings (interval, shard, concurrency, margins).
    owner:
        Lease owner id: the Lambda request id (or a CLI/demo run id).
    clock:
        Wall clock used only for timings and deadline checks; decisions use the tick's ``now``.
    """

    def __init__(
        self,
        ports: Ports,
        settings: Settings,
        owner: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ports = ports
        self.settings = settings
        self.owner = owner
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="rule")

    def close(self) -> None:
        """Stop the worker pool without waiting for stragglers (they are bounded by their timeouts)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one tick -------------------------------------------------------------------------

    def run_tick(self, now: float, deadline: float, slot: str | None = None) -> TickResult:
        """Evaluate every due rule of this shard at time ``now``, finishing before ``deadline``.

        Parameters
        ----------
        now:
            The tick time (unix seconds): metric queries are evaluated at it and the engine
            receives it as ``now``.
        deadline:
            Unix time by which every evaluation must have finished; rules still running then
            are reported as errors and their leases expire on their own.
        slot:
            Schedule slot being served (default: derived from ``now``); a rule is acted on at
            most once per slot, however often the slot is delivered.

        Returns
        -------
        TickResult
        """
        started = self.clock()
        slot = slot if slot is not None else slot_of(now, self.settings.evaluation_interval_seconds)
        try:
            loaded = list(self.ports.rules.load_rules())
        except AmpscalerError as exc:
            # Without the rule list nothing can be evaluated; no workload is touched.
            logger.error("tick: could not load rules: %s", exc)
            self.ports.audit.evaluation_error("*", f"could not load rules: {exc}")
            return TickResult(slot, now, self.clock() - started)
        mine = [
            lr for lr in loaded if shard_of(lr.name, self.settings.shard_count) == self.settings.shard_index
        ]
        invalid: list[str] = []
        runnable: list[LoadedRule] = []
        for lr in mine:
            if lr.errors:
                invalid.append(lr.name)
                self.ports.audit.rule_invalid(lr)
            if lr.rule is not None:
                runnable.append(lr)

        futures: dict[Future[RuleOutcome], str] = {
            self._pool.submit(self.evaluate, lr, now, deadline, slot): lr.name for lr in runnable
        }
        outcomes: list[RuleOutcome] = []
        pending = set(futures)
        while pending:
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            done, pending = wait(pending, timeout=remaining, return_when=FIRST_COMPLETED)
            for fut in done:
                outcomes.append(self._result(fut, futures[fut]))
        for fut in pending:
            fut.cancel()
            name = futures[fut]
            message = "evaluation did not finish before the tick deadline"
            logger.error("rule %s: %s", name, message)
            self.ports.audit.evaluation_error(name, message)
            outcomes.append(RuleOutcome(name, "error", message=message))
        outcomes.sort(key=lambda o: o.rule)
        return TickResult(slot, now, self.clock() - started, tuple(outcomes), tuple(sorted(invalid)))

    def _result(self, fut: Future[RuleOutcome], name: str) -> RuleOutcome:
        try:
            return fut.result()
        except Exception as exc:  # a bug in one rule's path must not stop the tick
            logger.exception("rule %s: unexpected error", name)
            self.ports.audit.evaluation_error(name, f"internal error: {exc!r}")
            return RuleOutcome(name, "error", message=f"internal error: {exc!r}")

    # -- one rule -------------------------------------------------------------------------

    def evaluate(self, loaded: LoadedRule, now: float, deadline: float, slot: str) -> RuleOutcome:
        """Evaluate one rule: lease, observe, decide, act, persist, audit."""
        rule = loaded.rule
        assert rule is not None
        name = loaded.name
        lease_seconds = max(1.0, deadline - now + self.settings.deadline_margin_seconds)
        try:
            stored = self.ports.state.acquire(name, self.owner, now, lease_seconds, slot)
        except LeaseHeldError as exc:
            logger.info("rule %s: skipped, %s", name, exc)
            return RuleOutcome(name, "skipped", message=str(exc))
        except AmpscalerError as exc:
            return self._fail(name, f"state store: {exc}", release=False)

        try:
            if not self._due(rule, stored, now):
                self.ports.state.release(name, self.owner)
                return RuleOutcome(name, "skipped", message="rule interval not due")
            return self._evaluate_leased(loaded, rule, stored, now, deadline, slot)
        except AmpscalerError as exc:
            return self._fail(name, str(exc), release=True, stored=stored, now=now)

    def _due(self, rule: Rule, stored: StoredState, now: float) -> bool:
        interval = rule.evaluation_interval_seconds
        if not interval or stored.last_evaluated is None:
            return True
        slack = self.settings.evaluation_interval_seconds * _INTERVAL_SLACK_FRACTION
        return now - stored.last_evaluated >= interval - slack

    def _fail(
        self,
        name: str,
        message: str,
        release: bool,
        stored: StoredState | None = None,
        now: float | None = None,
    ) -> RuleOutcome:
        logger.error("rule %s: evaluation failed: %s", name, message)
        self.ports.audit.evaluation_error(name, message)
        if release:
            try:
                if stored is not None and now is not None:
                    # Saving releases the lease too; the engine state is kept as it was.
                    self.ports.state.save(
                        name, self.owner, replace(stored, last_error={"time": now, "message": message})
                    )
                else:
                    self.ports.state.release(name, self.owner)
            except AmpscalerError as exc:
                logger.warning("rule %s: could not record the error and release the lease: %s", name, exc)
        return RuleOutcome(name, "error", message=message)

    def _evaluate_leased(
        self, loaded: LoadedRule, rule: Rule, stored: StoredState, now: float, deadline: float, slot: str
    ) -> RuleOutcome:
        timings = _Timings(self.clock())
        target = rule.target
        try:
            reading = self.ports.targets.read_scale(target)
        except ScaleTargetError as exc:
            self.ports.targets.record_event(target, "Warning", EVENT_FAILED_GET_SCALE, str(exc))
            raise
        pods: Sequence[PodInfo] | None = None
        if needs_pods(rule):
            pods = self.ports.targets.list_pods(target, reading.selector)
        timings.mark("kubeReadMs", self.clock)
        observations: list[MetricObservation] = []
        samples_processed = 0
        for spec in rule.metrics:
            measured = self.ports.metrics.observe_with_stats(rule, spec, now, deadline)
            observations.append(fill_empty_pods(spec, measured.observation, pods))
            samples_processed += measured.stats.samples_processed or 0
        timings.mark("queryMs", self.clock)

        decide_input = build_decide_input(rule, now, reading, pods, observations, stored.engine)
        decision, output = contract.decide_with_document(decide_input)

        patched = False
        patch_error: ScaleTargetError | None = None
        mode = str(decision.extra.get("mode", "active"))
        if decision.action == "scale":
            try:
                self.ports.targets.patch_replicas(target, decision.desired_replicas, reading.resource_version)
                patched = True
            except ConflictError:
                # Upstream retries the update on conflict; re-read and re-decide once, on the
                # fresh scale, with the metrics already observed this tick.
                logger.info("rule %s: scale changed while deciding (409); re-reading once", loaded.name)
                try:
                    reading = self.ports.targets.read_scale(target)
                    decide_input = build_decide_input(rule, now, reading, pods, observations, stored.engine)
                    decision, output = contract.decide_with_document(decide_input)
                    if decision.action == "scale":
                        self.ports.targets.patch_replicas(
                            target, decision.desired_replicas, reading.resource_version
                        )
                        patched = True
                except ConflictError as exc:
                    patch_error = ScaleTargetError(
                        f"scale of {target.reference} kept changing (409 twice); giving up this tick",
                        status=409,
                    )
                    patch_error.__cause__ = exc
                except ScaleTargetError as exc:
                    patch_error = exc
            except ScaleTargetError as exc:
                patch_error = exc
        timings.mark("totalMs", self.clock)

        new_state = decision.state
        if patch_error is not None:
            # The recommendation still counts (upstream stores it before updating), but a scale
            # that did not happen must not consume the rate-limit budget.
            new_state = without_scale_events(decision.state, stored.engine)
            self._rescale_failed(rule, decision, patch_error)
        if patched:
            self.ports.targets.record_event(
                target,
                "Normal",
                EVENT_SUCCESSFUL_RESCALE,
                f"New size: {decision.desired_replicas}; reason: {decision.reason}",
            )
        self._metric_failure_events(rule, decision)

        outcome = outcome_of(decision.current_replicas, decision.desired_replicas)
        record: dict[str, Any] = {
            "event": "decision",
            "rule": loaded.name,
            "parameter": loaded.parameter,
            "parameterVersion": loaded.version,
            "ruleInvalid": bool(loaded.errors),
            "target": {
                "cluster": target.cluster,
                "namespace": target.namespace,
                "kind": target.kind,
                "name": target.name,
            },
            "shard": self.settings.shard_index,
            "slot": slot,
            "mode": mode,
            "applied": applied_word(decision.action, mode, patched, patch_error is not None),
            "outcome": outcome if decision.action == "scale" else OUTCOME_NONE,
            "from": decision.current_replicas,
            "to": decision.desired_replicas,
            "reason": decision.reason,
            "patched": patched,
            "error": None if patch_error is None else str(patch_error),
            "timings": dict(timings.marks),
            "querySamplesProcessed": samples_processed,
            "input": decide_input,
            "output": output,
        }
        self.ports.audit.decision(record, decision, rule)
        self.ports.state.save(
            loaded.name,
            self.owner,
            StoredState(
                engine=new_state,
                parameter_version=loaded.version,
                last_evaluated=now,
                last_scale_time=now if patched else stored.last_scale_time,
                last_decision={
                    "time": now,
                    "from": decision.current_replicas,
                    "to": decision.desired_replicas,
                    "action": decision.action,
                    "mode": mode,
                    "patched": patched,
                    "fallbackActive": decision.fallback_active,
                    "reason": decision.reason,
                    "metrics": output.get("metrics", []),
                    "conditions": output.get("conditions", []),
                },
                last_error=(
                    {"time": now, "message": str(patch_error)}
                    if patch_error is not None
                    else stored.last_error
                ),
            ),
        )
        if patch_error is not None:
            self.ports.audit.evaluation_error(loaded.name, str(patch_error))
            return RuleOutcome(loaded.name, "error", record["outcome"], False, str(patch_error), output)
        return RuleOutcome(loaded.name, "evaluated", record["outcome"], patched, decision.reason, output)

    def _rescale_failed(self, rule: Rule, decision: Decision, exc: Exception) -> None:
        self.ports.targets.record_event(
            rule.target,
            "Warning",
            EVENT_FAILED_RESCALE,
            f"New size: {decision.desired_replicas}; reason: {decision.reason}; error: {exc}",
        )

    def _metric_failure_events(self, rule: Rule, decision: Decision) -> None:
        for cond in decision.conditions:
            if cond.type == "ScalingActive" and not cond.status and cond.reason.startswith("Failed"):
                self.ports.targets.record_event(rule.target, "Warning", cond.reason, cond.message)


def applied_word(action: str, mode: str, patched: bool, failed: bool) -> str:
    """What happened to the target, in one word for the audit record and the dashboard.

    ``patched``, ``failed`` (a patch was attempted and refused), ``dryRun`` / ``paused`` (a
    scale was computed and deliberately not applied) or ``unchanged``.
    """
    if patched:
        return "patched"
    if failed:
        return "failed"
    if mode in ("dryRun", "paused") and action == "none":
        return mode
    return "unchanged"


def fill_empty_pods(
    spec: MetricSpec, observation: MetricObservation, pods: Sequence[PodInfo] | None
) -> MetricObservation:
    """Give every listed pod the metric's ``emptyAs`` value when a Pods query returned nothing.

    The adapter cannot know the pod list, so an empty result with ``emptyAs`` arrives as an
    empty mapping; pods that are being deleted or have failed are left out, as the HPA would.
    """
    if spec.type != "Pods" or spec.empty_as is None or observation.pod_values != {} or not pods:
        return observation
    values = {p.name: spec.empty_as for p in pods if not p.deleting and p.phase != "Failed"}
    return replace(observation, pod_values=values)


def build_decide_input(
    rule: Rule,
    now: float,
    reading: ScaleReading,
    pods: Sequence[PodInfo] | None,
    observations: Sequence[MetricObservation],
    state: EngineState | None,
) -> dict[str, Any]:
    """The ``decide`` contract input document for one evaluation (what the audit log records)."""
    doc: dict[str, Any] = {
        "rule": rule.source,
        "now": now,
        "scale": {
            "specReplicas": reading.scale.spec_replicas,
            "statusReplicas": reading.scale.status_replicas,
        },
    }
    if pods is not None:
        doc["pods"] = [
            {"name": p.name, "phase": p.phase, "ready": p.ready, "deleting": p.deleting} for p in pods
        ]
    metrics: list[dict[str, Any]] = []
    for obs in observations:
        item: dict[str, Any] = {"name": obs.name}
        if obs.error is not None:
            item["error"] = obs.error
        elif obs.pod_values is not None:
            item["podValues"] = dict(obs.pod_values)
        else:
            item["value"] = obs.value
        metrics.append(item)
    doc["metrics"] = metrics
    doc["state"] = None if state is None else contract.state_to_dict(state)
    return doc


def without_scale_events(new: EngineState, previous: EngineState | None) -> EngineState:
    """``new`` with the scale-event history of ``previous``: used when a planned patch did not happen."""
    if previous is None:
        return replace(new, scale_up_events=(), scale_down_events=())
    return replace(
        new, scale_up_events=previous.scale_up_events, scale_down_events=previous.scale_down_events
    )


def run_invocation(
    ticker: Ticker,
    scheduled_time: float,
    remaining_seconds: Callable[[], float],
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_tick: Callable[[TickResult], None] | None = None,
) -> list[TickResult]:
    """Serve every evaluation slot of one scheduled invocation, like the HPA's 15 s sync loop.

    A schedule fires once per ``schedule_interval_seconds`` (60); inside it the rules are
    evaluated every ``evaluation_interval_seconds`` (15) until the next invocation is due. Slots
    that already passed (a late start) are skipped rather than crammed in, and no tick starts
    unless it can finish ``deadline_margin_seconds`` before the Lambda deadline.

    Parameters
    ----------
    ticker:
        The ticker holding the ports.
    scheduled_time:
        When this invocation was scheduled to run (unix seconds, from the event).
    remaining_seconds:
        Seconds left before the Lambda deadline (``context.get_remaining_time_in_millis``).
    clock, sleep:
        Injected for tests.
    on_tick:
        Called with each finished tick (the audit counts TickCompleted/TickDuration).

    Returns
    -------
    list[TickResult]
        One result per tick run.
    """
    settings = ticker.settings
    interval = settings.evaluation_interval_seconds
    slots = max(1, settings.schedule_interval_seconds // interval)
    base_slot = int(scheduled_time // interval)
    results: list[TickResult] = []
    for k in range(slots):
        slot_start = (base_slot + k) * interval
        now = clock()
        if now >= slot_start + interval:
            logger.info("slot %d already over (started late); skipping it", base_slot + k)
            continue
        if now < slot_start:
            sleep(slot_start - now)
            now = clock()
        lambda_deadline = now + remaining_seconds() - settings.deadline_margin_seconds
        # A tick gets one interval from when it actually starts; the next slot then waits for
        # it or, if it overran, is skipped, so one rule is never evaluated twice at once.
        tick_deadline = min(now + interval, lambda_deadline)
        if tick_deadline - now < min(1.0, interval / 2):
            logger.warning("not enough time left before the Lambda deadline for slot %d", base_slot + k)
            break
        result = ticker.run_tick(round(now, 3), tick_deadline, slot_id(base_slot + k))
        results.append(result)
        if on_tick is not None:
            on_tick(result)
    return results
