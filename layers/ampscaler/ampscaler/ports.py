"""The small interfaces (ports) the tick talks to; adapters implement them, tests may fake faults.

Upstream analogue: the HPA controller's injected scale namespacer, metrics client and listers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

    def load_rules(self) -> Sequence[LoadedRule]:
        """Every rule under the configured prefix, valid or not."""
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

    def observe(self, rule: Rule, spec: MetricSpec, at: float, deadline: float) -> MetricObservation:
        """Evaluate ``spec.query`` at unix time ``at``; failures come back as ``error``, not raised."""
        ...

    def observe_with_stats(
        self, rule: Rule, spec: MetricSpec, at: float, deadline: float
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
    """The Kubernetes API of the target's cluster (EKS in production)."""

    def read_scale(self, target: ScaleTargetRef) -> ScaleReading:
        """GET the /scale subresource. Raises ScaleTargetError."""
        ...

    def list_pods(self, target: ScaleTargetRef, selector: str) -> Sequence[PodInfo]:
        """Pods matching the scale's status.selector. Raises ScaleTargetError."""
        ...

    def patch_replicas(self, target: ScaleTargetRef, replicas: int, resource_version: str) -> ScaleReading:
        """PATCH spec.replicas with resourceVersion as precondition. Raises ConflictError on 409."""
        ...

    def record_event(self, target: ScaleTargetRef, event_type: str, reason: str, message: str) -> None:
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


class StateStore(Protocol):
    """Durable per-rule state with leases (DynamoDB in production)."""

    def acquire(self, rule_name: str, owner: str, now: float, lease_seconds: float, slot: str) -> StoredState:
        """Take the rule's lease for schedule ``slot``. Raises LeaseHeldError if held or slot done."""
        ...

    def save(self, rule_name: str, owner: str, state: StoredState) -> None:
        """Persist new state and release the lease held by ``owner``."""
        ...

    def release(self, rule_name: str, owner: str) -> None:
        """Release the lease without changing state (evaluation skipped or failed)."""
        ...


class AuditSink(Protocol):
    """Decision log and metrics (Powertools Logger + EMF in production)."""

    def decision(self, record: Mapping[str, object], decision: Decision, rule: Rule) -> None:
        """Write one decision record and its metrics."""
        ...

    def rule_invalid(self, loaded: LoadedRule) -> None:
        """Report a rule whose current version failed validation."""
        ...

    def evaluation_error(self, rule_name: str, message: str) -> None:
        """Report an evaluation that could not complete."""
        ...
