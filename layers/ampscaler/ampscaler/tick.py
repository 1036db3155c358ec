"""One evaluation slot over the rules of one shard: the analogue of the HPA's reconcileAutoscaler loop.

The tick is the imperative shell around the pure engine. A slot first takes its shard's fence
(the slot id is the fencing token), then evaluates every due rule on a bounded worker pool: it
observes the target (scale, pods) and the rule's metrics through the ports, builds the typed
decide input and runs ``contract.evaluate`` (the path ``explain``, the backtest and ``ampscaler
decide`` share; the logged documents replay byte for byte), patches the scale when the decision says so and the fence
is still held, and writes the new state only when it changed in more than a repeated
recommendation (``engine.history``). Every call an evaluation makes is bounded by the slot's
deadline, and no worker outlives the slot. One rule's failure is logged and counted, and never
stops another rule.
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
from ampscaler.adapters.boto_deadline import deadline_scope
from ampscaler.engine.history import advance_open_recommendation, compact_history, is_steady
from ampscaler.engine.types import (
    Decision,
    EngineState,
    MetricObservation,
    PodInfo,
)
from ampscaler.errors import (
    AmpscalerError,
    ConflictError,
    FenceLostError,
    LeaseHeldError,
    ScaleTargetError,
    SlotTakenError,
    StateStoreError,
)
from ampscaler.model import MetricSpec, Rule
from ampscaler.ports import (
    AuditSink,
    Fence,
    LoadedRule,
    MeasuredObservation,
    MetricsSource,
    RuleStore,
    ScaleReading,
    ScaleTarget,
    StateStore,
    StoredState,
)
from ampscaler.schedule import Slot, due_in_slot, last_due_slot
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

_SUMMARY_MESSAGE_CHARS = 160

# Why a slot was not run (the tick record's "dropped").
DROPPED_TAKEN = "taken"  # this slot or a later one already ran: a duplicate or late delivery
DROPPED_LATE = "late"  # arrived after its successor's start
DROPPED_EARLY = "early"  # arrived while the previous slot still held the fence
DROPPED_STATE_STORE = "stateStore"  # the fence could not be taken: DynamoDB failed


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
    """What happened to one rule in one slot."""

    rule: str
    status: str  # evaluated | skipped | error
    outcome: str = OUTCOME_NONE
    patched: bool = False
    message: str = ""
    decision: Decision | None = None
    # The state was written (not a steady evaluation), and the full record was logged.
    written: bool = False
    full_record: bool = False


@dataclass(frozen=True)
class TickResult:
    """Summary of one slot over this shard's rules."""

    slot: str
    started: float
    duration_seconds: float
    outcomes: tuple[RuleOutcome, ...] = ()
    invalid_rules: tuple[str, ...] = ()
    # Why the slot was not run at all (DROPPED_*), None when it ran.
    dropped: str | None = None
    message: str = ""

    @property
    def evaluated(self) -> int:
        """Number of rules whose evaluation completed."""
        return sum(1 for o in self.outcomes if o.status == "evaluated")

    @property
    def errors(self) -> int:
        """Number of rules whose evaluation failed."""
        return sum(1 for o in self.outcomes if o.status == "error")

    @property
    def state_writes(self) -> int:
        """Number of rules whose state was written."""
        return sum(1 for o in self.outcomes if o.written)

    def summary(self) -> dict[str, Any]:
        """The slot as the handler returns it and the tick log line records it."""
        return {
            "slot": self.slot,
            "dropped": self.dropped,
            "evaluated": self.evaluated,
            "errors": self.errors,
            "invalid": list(self.invalid_rules),
            "stateWrites": self.state_writes,
            "fullRecords": sum(1 for o in self.outcomes if o.full_record),
            "durationMs": round(self.duration_seconds * 1000.0, 1),
        }


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


def needs_pods(rule: Rule) -> bool:
    """Whether evaluating ``rule`` needs the pod list.

    Pods metrics and Value targets do, and Resource/ContainerResource metrics (their queries name
    the pods, and the pods carry the requests and readiness times the HPA's CPU rules use).
    """
    return (
        any(
            m.type in ("Pods", "Resource", "ContainerResource") or m.target.type == "Value"
            for m in rule.metrics
        )
        or rule.min_replicas == 0
    )


def outcome_of(current: int, desired: int) -> str:
    """scale_up, scale_down or none."""
    if desired > current:
        return OUTCOME_SCALE_UP
    if desired < current:
        return OUTCOME_SCALE_DOWN
    return OUTCOME_NONE


def restore_steady(stored: StoredState, fence: Fence, rule: Rule, interval_seconds: int) -> StoredState:
    """``stored`` brought up to the evaluations that ran since it was written without writing.

    Steady evaluations are not written: each only repeated the latest recommendation at its slot's
    start. The fence names the last slot that ran before this one, so the latest slot since the
    stored one in which the rule was due (and therefore repeated its recommendation) is known,
    and the history is advanced to it. Should an evaluation have died without a trace in such a
    slot, the recommendation is taken as repeated there: the only approximation in the scheme.
    """
    if stored.engine is None or stored.slot is None or fence.previous_slot is None:
        return stored
    # Slot identifiers are slot starts in unix seconds.
    previous_index = int(fence.previous_slot) // interval_seconds
    due_start = (
        last_due_slot(rule.evaluation_interval_seconds, interval_seconds, previous_index) * interval_seconds
    )
    if due_start <= int(stored.slot):
        return stored
    return replace(stored, engine=advance_open_recommendation(stored.engine, float(due_start)))


def decision_summary(decision: Decision, mode: str, patched: bool, now: float) -> dict[str, Any]:
    """The last decision as the state item keeps it for `get` and `describe` (kept small: < 1 KB).

    Built from the typed decision, so a steady evaluation (which logs no full record) never
    serialises its documents; the numbers are the ones ``decision_to_dict`` writes.
    """
    return {
        "time": now,
        "from": decision.current_replicas,
        "to": decision.desired_replicas,
        "action": decision.action,
        "mode": mode,
        "patched": patched,
        "fallbackActive": decision.fallback_active,
        "reason": decision.reason,
        "metrics": [
            {
                "name": m.name,
                "current": None if m.current is None else float(m.current),
                "target": float(m.target),
                "proposal": m.proposal,
                # Utilization metrics: the raw per-pod usage behind the percentage.
                **({"averageValue": float(m.average_value)} if m.average_value is not None else {}),
                **({"error": m.error[:_SUMMARY_MESSAGE_CHARS]} if m.error else {}),
            }
            for m in decision.metrics
        ],
        "conditions": [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                # Cut so the item stays one write unit; the full text is in the decision log.
                "message": c.message[:_SUMMARY_MESSAGE_CHARS],
            }
            for c in decision.conditions
        ],
    }


def _same_apart_from_values(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """Whether two decision summaries differ at most in the metrics' current values."""
    if before is None:
        return False

    def key(summary: Mapping[str, Any]) -> dict[str, Any]:
        metrics = [
            {k: v for k, v in m.items() if k not in ("current", "averageValue")}
            for m in summary.get("metrics", [])
        ]
        return {**summary, "time": None, "metrics": metrics}

    return key(before) == key(after)


class Ticker:
    """Runs evaluation slots over the rules of one shard with a bounded worker pool.

    Parameters
    ----------
    ports:
        The adapters.
    settings:
        Function settings (interval, shard, concurrency, margins).
    owner:
        Who takes the fence: the Lambda request id (or a CLI/demo run id), for the logs.
    clock:
        Wall clock for timings and deadline checks; decisions use the slot's start as ``now``.
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
        """Wait for every worker: each call they make is bounded by the slot's deadline."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one slot -------------------------------------------------------------------------

    def run_slot(self, slot: Slot, deadline: float) -> TickResult:
        """Take the shard's fence for ``slot`` and evaluate every rule due in it before ``deadline``.

        Parameters
        ----------
        slot:
            The slot: its start is every evaluation's ``now`` (metric queries are evaluated at
            it), its id the fencing token, its end when the fence lapses.
        deadline:
            Unix time by which every call of every evaluation is over; no patch or state write
            starts after it.

        Returns
        -------
        TickResult
        """
        started = self.clock()
        with deadline_scope(deadline):
            try:
                fence = self.ports.state.take_fence(slot.shard, slot.id, slot.end, self.owner, started)
            except AmpscalerError as exc:
                return self._slot_not_run(slot, started, exc)
            try:
                # Only this shard's rules are parsed: another shard's broken rule is not ours.
                loaded = list(
                    self.ports.rules.load_rules(
                        owns=lambda name: shard_of(name, self.settings.shard_count) == slot.shard
                    )
                )
            except AmpscalerError as exc:
                # Without the rule list nothing can be evaluated; no workload is touched.
                logger.error("slot %s: could not load rules: %s", slot.id, exc)
                self.ports.audit.evaluation_error("*", f"could not load rules: {exc}")
                return TickResult(slot.id, slot.start, self.clock() - started, message=str(exc))
        mine = [lr for lr in loaded if shard_of(lr.name, self.settings.shard_count) == slot.shard]
        invalid: list[str] = []
        runnable: list[LoadedRule] = []
        for lr in mine:
            if lr.errors:
                invalid.append(lr.name)
                self.ports.audit.rule_invalid(lr)
            if lr.rule is not None and due_in_slot(lr.rule.evaluation_interval_seconds, slot):
                runnable.append(lr)
        try:
            with deadline_scope(deadline):
                states = self.ports.state.load([lr.name for lr in runnable], fence)
        except AmpscalerError as exc:
            message = f"state store: {exc}"
            for lr in runnable:
                self.ports.audit.evaluation_error(lr.name, message)
            failed = tuple(RuleOutcome(lr.name, "error", message=message) for lr in runnable)
            return TickResult(slot.id, slot.start, self.clock() - started, failed, tuple(sorted(invalid)))

        futures: dict[Future[RuleOutcome], str] = {
            self._pool.submit(self.evaluate, lr, states.get(lr.name), slot, fence, deadline): lr.name
            for lr in runnable
        }
        outcomes: list[RuleOutcome] = []
        pending = set(futures)
        while pending:
            # Every call is bounded by the deadline; the grace covers the last one returning.
            remaining = deadline + self.settings.deadline_margin_seconds - self.clock()
            if remaining <= 0:
                break
            done, pending = wait(pending, timeout=remaining, return_when=FIRST_COMPLETED)
            for fut in done:
                outcomes.append(self._result(fut, futures[fut]))
        for fut in pending:
            # Not expected (every call is bounded): the worker may neither patch nor save any more,
            # since both check the deadline and the save is fenced.
            fut.cancel()
            name = futures[fut]
            message = "evaluation did not finish before the slot deadline"
            logger.error("rule %s: %s", name, message)
            self.ports.audit.evaluation_error(name, message)
            outcomes.append(RuleOutcome(name, "error", message=message))
        outcomes.sort(key=lambda o: o.rule)
        return TickResult(
            slot.id, slot.start, self.clock() - started, tuple(outcomes), tuple(sorted(invalid))
        )

    def _slot_not_run(self, slot: Slot, started: float, exc: AmpscalerError) -> TickResult:
        if isinstance(exc, SlotTakenError):
            logger.info("slot %s of shard %d dropped: %s", slot.id, slot.shard, exc)
            return TickResult(
                slot.id, slot.start, self.clock() - started, dropped=DROPPED_TAKEN, message=str(exc)
            )
        if isinstance(exc, LeaseHeldError):
            logger.warning("slot %s of shard %d dropped: %s", slot.id, slot.shard, exc)
            return TickResult(
                slot.id, slot.start, self.clock() - started, dropped=DROPPED_EARLY, message=str(exc)
            )
        logger.error(
            "slot %s of shard %d not run, the fence could not be taken: %s", slot.id, slot.shard, exc
        )
        self.ports.audit.evaluation_error("*", f"slot {slot.id} not run: {exc}")
        return TickResult(
            slot.id, slot.start, self.clock() - started, dropped=DROPPED_STATE_STORE, message=str(exc)
        )

    def _result(self, fut: Future[RuleOutcome], name: str) -> RuleOutcome:
        try:
            return fut.result()
        except Exception as exc:  # evaluate() catches everything; this is the last line of defence
            logger.exception("rule %s: unexpected error", name)
            self.ports.audit.evaluation_error(name, f"internal error: {exc!r}")
            return RuleOutcome(name, "error", message=f"internal error: {exc!r}")

    # -- one rule -------------------------------------------------------------------------

    def evaluate(
        self, loaded: LoadedRule, stored: StoredState | None, slot: Slot, fence: Fence, deadline: float
    ) -> RuleOutcome:
        """Evaluate one rule in ``slot``: observe, decide, act while the fence holds, persist, audit."""
        rule = loaded.rule
        assert rule is not None
        name = loaded.name
        previous = StoredState(engine=None) if stored is None else stored
        previous = restore_steady(previous, fence, rule, slot.interval_seconds)
        with deadline_scope(deadline):
            try:
                return self._evaluate(loaded, rule, previous, stored is None, slot, fence, deadline)
            except FenceLostError as exc:
                logger.warning("rule %s: %s", name, exc)
                self.ports.audit.evaluation_error(name, str(exc))
                return RuleOutcome(name, "error", message=str(exc))
            except StateStoreError as exc:
                # The state write itself failed (it may even have landed, its answer lost): writing
                # the failure too would only fail the same way. The next slot reads the table again.
                logger.error("rule %s: %s", name, exc)
                self.ports.audit.evaluation_error(name, str(exc))
                return RuleOutcome(name, "error", message=str(exc))
            except AmpscalerError as exc:
                return self._fail(name, str(exc), previous, slot, fence, deadline, count_failure=False)
            except Exception as exc:  # a bug in one rule's path must not stop the others
                logger.exception("rule %s: unexpected error", name)
                return self._fail(
                    name, f"internal error: {exc!r}", previous, slot, fence, deadline, count_failure=True
                )

    def _may_act(self, deadline: float) -> bool:
        # The fence lapses at the slot's end and the deadline is before it: past the deadline a
        # later slot may be acting, so nothing is patched or written any more.
        return self.clock() < deadline

    def _fail(
        self,
        name: str,
        message: str,
        previous: StoredState,
        slot: Slot,
        fence: Fence,
        deadline: float,
        *,
        count_failure: bool,
    ) -> RuleOutcome:
        logger.error("rule %s: evaluation failed: %s", name, message)
        self.ports.audit.evaluation_error(name, message)
        if not self._may_act(deadline):
            return RuleOutcome(name, "error", message=message)
        engine = previous.engine
        if count_failure:
            # An unexpected error counts like a failed metric, so `fallback` still engages.
            base = engine if engine is not None else EngineState()
            engine = replace(base, consecutive_failures=base.consecutive_failures + 1)
        now = slot.start
        failed = replace(
            previous,
            engine=engine,
            last_error={"time": now, "message": message},
            slot=slot.id,
            written_at=now,
        )
        try:
            self.ports.state.save(name, failed, fence)
        except AmpscalerError as exc:
            logger.warning("rule %s: could not record the failed evaluation: %s", name, exc)
            return RuleOutcome(name, "error", message=message)
        return RuleOutcome(name, "error", message=message, written=True)

    def _evaluate(
        self,
        loaded: LoadedRule,
        rule: Rule,
        previous: StoredState,
        first: bool,
        slot: Slot,
        fence: Fence,
        deadline: float,
    ) -> RuleOutcome:
        timings = _Timings(self.clock())
        target = rule.target
        now = slot.start
        try:
            reading = self.ports.targets.read_scale(target, deadline=deadline)
        except ScaleTargetError as exc:
            self.ports.targets.record_event(
                target, "Warning", EVENT_FAILED_GET_SCALE, str(exc), deadline=deadline
            )
            raise
        pods: Sequence[PodInfo] | None = None
        if needs_pods(rule):
            pods = self.ports.targets.list_pods(target, reading.selector, deadline=deadline)
        timings.mark("kubeReadMs", self.clock)
        # Queries see the freshest samples (evaluated when this evaluation runs, a little after the
        # slot's start); the engine's clock is the slot's start, which the steady-state restore
        # and the fence rely on. Replays need only the observed values, which the record carries.
        query_at = round(self.clock(), 3)
        measured, observations = observe_metrics(self.ports.metrics, rule, query_at, deadline, pods)
        samples_processed = sum(m.stats.samples_processed or 0 for m in measured)
        timings.mark("queryMs", self.clock)

        evaluation = contract.evaluate(
            contract.build_decide_input(rule, now, reading.scale, pods, observations, previous.engine)
        )
        decision = evaluation.decision

        patched = False
        patch_error: ScaleTargetError | None = None
        mode = str(decision.extra.get("mode", "active"))
        if decision.action == "scale":
            try:
                self._patch(target, decision.desired_replicas, reading, deadline)
                patched = True
            except ConflictError:
                # Upstream retries the update on conflict; re-read and re-decide once, on the
                # fresh scale, with the metrics already observed this slot.
                logger.info("rule %s: scale changed while deciding (409); re-reading once", loaded.name)
                try:
                    reading = self.ports.targets.read_scale(target, deadline=deadline)
                    evaluation = contract.evaluate(
                        contract.build_decide_input(
                            rule, now, reading.scale, pods, observations, previous.engine
                        )
                    )
                    decision = evaluation.decision
                    if decision.action == "scale":
                        self._patch(target, decision.desired_replicas, reading, deadline)
                        patched = True
                except ConflictError as exc:
                    patch_error = ScaleTargetError(
                        f"scale of {target.reference} kept changing (409 twice); giving up this slot",
                        status=409,
                    )
                    patch_error.__cause__ = exc
                except ScaleTargetError as exc:
                    patch_error = exc
            except ScaleTargetError as exc:
                patch_error = exc
        timings.mark("totalMs", self.clock)

        new_engine = decision.state
        if patch_error is not None:
            # The recommendation still counts (upstream stores it before updating), but a scale
            # that did not happen must not consume the rate-limit budget.
            new_engine = without_scale_events(decision.state, previous.engine)
            self._rescale_failed(rule, decision, patch_error, deadline)
        if patched:
            self.ports.targets.record_event(
                target,
                "Normal",
                EVENT_SUCCESSFUL_RESCALE,
                f"New size: {decision.desired_replicas}; reason: {decision.reason}",
                deadline=deadline,
            )
        self._metric_failure_events(rule, decision, deadline)

        summary = decision_summary(decision, mode, patched, now)
        steady = (
            not first
            and not patched
            and patch_error is None
            and previous.parameter_version == loaded.version
            and is_steady(previous.engine, new_engine, now)
            and _same_apart_from_values(previous.last_decision, summary)
        )
        heartbeat_due = (
            previous.written_at is None
            or now - previous.written_at >= self.settings.decision_heartbeat_seconds
        )
        write = not steady or heartbeat_due
        would_have_scaled = mode != "active" and decision.desired_replicas != decision.current_replicas
        full_record = write or would_have_scaled

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
            "shard": slot.shard,
            "slot": slot.id,
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
            "queryTime": query_at,
        }
        if full_record:
            record["input"] = evaluation.input_document
            record["output"] = evaluation.output_document
        self.ports.audit.decision(record, decision, rule, full=full_record)
        new_state = StoredState(
            engine=compact_history(new_engine),
            parameter_version=loaded.version,
            last_evaluated=now,
            last_scale_time=now if patched else previous.last_scale_time,
            last_decision=summary,
            last_error=(
                {"time": now, "message": str(patch_error)} if patch_error is not None else previous.last_error
            ),
            slot=slot.id,
            written_at=now if write else previous.written_at,
        )
        if write:
            if not self._may_act(deadline):
                raise FenceLostError(f"rule {loaded.name}: state not saved, the slot's deadline passed")
            self.ports.state.save(loaded.name, new_state, fence)
        else:
            self.ports.state.remember(loaded.name, new_state, fence)
        if patch_error is not None:
            self.ports.audit.evaluation_error(loaded.name, str(patch_error))
            return RuleOutcome(
                loaded.name, "error", record["outcome"], False, str(patch_error), decision, write, full_record
            )
        return RuleOutcome(
            loaded.name,
            "evaluated",
            record["outcome"],
            patched,
            decision.reason,
            decision,
            write,
            full_record,
        )

    def _patch(self, target: Any, replicas: int, reading: ScaleReading, deadline: float) -> None:
        # Only while the fence holds, and on the resourceVersion the decision was made on.
        if not self._may_act(deadline):
            raise ScaleTargetError(
                f"not patching {target.reference}: the slot's deadline passed before the patch (a later "
                "slot may be acting on it)"
            )
        self.ports.targets.patch_replicas(target, replicas, reading.resource_version, deadline=deadline)

    def _rescale_failed(self, rule: Rule, decision: Decision, exc: Exception, deadline: float) -> None:
        self.ports.targets.record_event(
            rule.target,
            "Warning",
            EVENT_FAILED_RESCALE,
            f"New size: {decision.desired_replicas}; reason: {decision.reason}; error: {exc}",
            deadline=deadline,
        )

    def _metric_failure_events(self, rule: Rule, decision: Decision, deadline: float) -> None:
        for cond in decision.conditions:
            if cond.type == "ScalingActive" and not cond.status and cond.reason.startswith("Failed"):
                self.ports.targets.record_event(
                    rule.target, "Warning", cond.reason, cond.message, deadline=deadline
                )


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


def observe_metrics(
    metrics: MetricsSource, rule: Rule, now: float, deadline: float, pods: Sequence[PodInfo] | None
) -> tuple[list[MeasuredObservation], list[MetricObservation]]:
    """Query every metric of ``rule`` at ``now``: the raw answers and what the engine is given.

    The one place observations are made, for the tick and ``ampscaler explain`` alike: a Pods
    metric's empty answer gets its ``emptyAs`` value per listed pod here (``fill_empty_pods``), and
    Resource/ContainerResource metrics get the listed pods, whose usage they read.
    """
    measured = [
        metrics.observe_with_stats(rule, spec, now, deadline, pods=pods)
        if spec.type in ("Resource", "ContainerResource")
        else metrics.observe_with_stats(rule, spec, now, deadline)
        for spec in rule.metrics
    ]
    observations = [
        fill_empty_pods(spec, m.observation, pods) for spec, m in zip(rule.metrics, measured, strict=True)
    ]
    return measured, observations


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


def without_scale_events(new: EngineState, previous: EngineState | None) -> EngineState:
    """``new`` with the scale-event history of ``previous``: used when a planned patch did not happen."""
    if previous is None:
        return replace(new, scale_up_events=(), scale_down_events=())
    return replace(
        new, scale_up_events=previous.scale_up_events, scale_down_events=previous.scale_down_events
    )
