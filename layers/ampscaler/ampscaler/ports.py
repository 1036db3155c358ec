"""The small interfaces (ports) the tick talks to; adapters implement them, tests may fake faults.

Upstream analogue: the HPA controller's injected scale namespacer, metrics client and listers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ampscaler.engine.types import Decision, EngineState, MetricObservation, PodInfo, ScaleObservation
from ampscaler.model import MetricSpec, Rule, ScaleTargetRef


@dataclass(frozen=True)
class LoadedRule:
    """A rule as read from the rule store, with the provenance the audit trail needs."""

    name: str
    parameter: str
    version: int
    rule: Rule | None
    # Validation errors when the current parameter version is invalid (rule then holds the
    # last valid version, if any, which keeps running).
    errors: tuple[str, ...] = ()


class RuleStore(Protocol):
    """Where rules live (SSM Parameter Store in production)."""

    def load_rules(self, *, owns: Callable[[str], bool] | None = None) -> Sequence[LoadedRule]:
        """Every rule under the configured prefix, valid or not; with ``owns``, only the rules it owns."""
        ...


class QueryCost(Protocol):
    """What one query cost; AMP bills by samples processed."""

    @property
    def samples_processed(self) -> int | None:
        """Samples the query engine read (``stats=all``), None when not reported."""
        ...


class MeasuredObservation(Protocol):
    """An observation together with the cost of getting it."""

    @property
    def observation(self) -> MetricObservation:
        """The metric's value(s) or error."""
        ...

    @property
    def stats(self) -> QueryCost:
        """The query's cost."""
        ...


class MetricsSource(Protocol):
    """Runs a rule's PromQL queries (AMP in production)."""

    def observe(
        self,
        rule: Rule,
        spec: MetricSpec,
        at: float,
        deadline: float,
        *,
        pods: Sequence[PodInfo] | None = None,
    ) -> MetricObservation:
        """Evaluate the metric at unix time ``at``; failures come back as ``error``, not raised.

        ``pods`` are the target's pods as listed this evaluation: Resource/ContainerResource
        metrics read those pods' usage (None: the whole namespace).
        """
        ...

    def observe_with_stats(
        self,
        rule: Rule,
        spec: MetricSpec,
        at: float,
        deadline: float,
        *,
        pods: Sequence[PodInfo] | None = None,
    ) -> MeasuredObservation:
        """Like ``observe``, plus the query's cost."""
        ...


@dataclass(frozen=True)
class ScaleReading:
    """The target's scale subresource plus what a patch needs."""

    scale: ScaleObservation
    selector: str
    resource_version: str


class ScaleTarget(Protocol):
    """The Kubernetes API of the target's cluster (EKS in production).

    Every call takes the unix time by which it must be over (``deadline``); None bounds it only by
    the adapter's own timeouts.
    """

    def read_scale(self, target: ScaleTargetRef, *, deadline: float | None = None) -> ScaleReading:
        """GET the /scale subresource. Raises ScaleTargetError."""
        ...

    def list_pods(
        self, target: ScaleTargetRef, selector: str, *, deadline: float | None = None
    ) -> Sequence[PodInfo]:
        """Pods matching the scale's status.selector. Raises ScaleTargetError."""
        ...

    def patch_replicas(
        self, target: ScaleTargetRef, replicas: int, resource_version: str, *, deadline: float | None = None
    ) -> ScaleReading:
        """PATCH spec.replicas with resourceVersion as precondition. Raises ConflictError on 409."""
        ...

    def record_event(
        self,
        target: ScaleTargetRef,
        event_type: str,
        reason: str,
        message: str,
        *,
        deadline: float | None = None,
    ) -> None:
        """Create a core/v1 Event on the target; never raises."""
        ...


@dataclass(frozen=True)
class StoredState:
    """What the state store keeps for one rule."""

    engine: EngineState | None
    parameter_version: int | None = None
    last_evaluated: float | None = None
    last_scale_time: float | None = None
    last_decision: Mapping[str, object] | None = None
    # The last evaluation that could not complete: {"time": unix seconds, "message": text}. Kept
    # after later successes (its time says how recent it is) so `ampscaler describe` can show it.
    last_error: Mapping[str, object] | None = None
    # The slot of the last evaluation this state reflects. Steady evaluations are not written, so
    # a stored item may be older than the last evaluation; see engine.history.
    slot: str | None = None
    # When the state was last written (unix seconds): the decision-log heartbeat counts from it.
    written_at: float | None = None


@dataclass(frozen=True)
class Fence:
    """A shard's fence, held for one slot: the token every write and patch of the slot carries.

    ``previous_slot`` is the slot that held it before (it tells which evaluations ran unwritten)
    and ``write_seq`` counts the rule-state writes made under the shard's fences so far, so an
    execution environment can tell whether its cached states are still current.
    """

    shard: int
    slot: str
    until: float
    owner: str
    previous_slot: str | None = None
    write_seq: int = 0


class StateStore(Protocol):
    """Durable per-rule state behind a per-shard, per-slot fence (DynamoDB in production)."""

    def take_fence(self, shard: int, slot: str, until: float, owner: str, now: float) -> Fence:
        """Take the shard's fence for ``slot`` until ``until``.

        Raises SlotTakenError when this slot or a later one already holds it, and LeaseHeldError
        when the previous slot's fence has not expired yet.
        """
        ...

    def load(self, names: Sequence[str], fence: Fence) -> Mapping[str, StoredState]:
        """The stored state of each rule in ``names`` (missing rules are absent)."""
        ...

    def remember(self, name: str, state: StoredState, fence: Fence) -> None:
        """Keep the state of a steady evaluation in memory only (nothing is written)."""
        ...

    def save(self, name: str, state: StoredState, fence: Fence) -> None:
        """Write the rule's state, only while ``fence`` is the shard's fence (FenceLostError otherwise)."""
        ...


class AuditSink(Protocol):
    """Decision log and metrics (Powertools Logger + EMF in production)."""

    def decision(self, record: Mapping[str, object], decision: Decision, rule: Rule, *, full: bool) -> None:
        """Account for one decision: the whole record when ``full``, else a compact entry."""
        ...

    def rule_invalid(self, loaded: LoadedRule) -> None:
        """Report a rule whose current version failed validation."""
        ...

    def evaluation_error(self, rule_name: str, message: str) -> None:
        """Report an evaluation that could not complete."""
        ...
