"""Pure replay of a rule over metric history: the engine run tick by tick on a simulated workload.

No I/O and no clock: history, the time grid and options come in as values; rows and a summary go
out. ``Pods`` metrics are replayed with load conservation (observed per-pod average x observed pod
count is the demand, spread over the simulated ready pods); ``Object``/``External`` metrics are
replayed as observed. ``Resource``/``ContainerResource`` metrics are replayed like ``Pods`` ones:
the observed usage (cores or bytes) is spread over the simulated ready pods, which request what
``BacktestOptions.pod_requests`` says, and whose start and Ready times the HPA's CPU rules see
(the pods of the initial count have been running long before the replay starts). The rule's
``paused``/``dryRun`` flags are ignored on purpose: a backtest shows what the rule would do if it
were active.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ampscaler.contract import DecideFunction, build_decide_input, evaluate
from ampscaler.engine.proposals import resolve_tolerances
from ampscaler.engine.types import (
    ContainerInfo,
    ControllerConfig,
    EngineState,
    MetricObservation,
    PodInfo,
    ScaleObservation,
)
from ampscaler.model import MetricSpec, Rule
from ampscaler.resource_queries import STACK_DEFAULT_SERIES, ResolvedSeries, resolve_series

DEFAULT_STARTUP_DELAY_SECONDS = 30.0
# How long the initial pods have been running when the replay starts: past the HPA's CPU
# initialization period, so their usage counts from the first step.
INITIAL_POD_AGE_SECONDS = 3600.0
# The simulated pods' one container when no ContainerResource metric names one.
DEFAULT_CONTAINER = "app"
_RESOURCE_TYPES = ("Resource", "ContainerResource")

DecideFn = DecideFunction
ProgressFn = Callable[[int, int], None]

# How often (in ticks) the progress callback is told about the replay.
_PROGRESS_EVERY = 256


@dataclass(frozen=True)
class TimeGrid:
    """Evaluation times ``start, start + step, ...`` up to and including ``end``, as query_range."""

    start: float
    end: float
    step: float

    def __post_init__(self) -> None:
        if self.step <= 0:
            raise ValueError(f"step must be positive, got {self.step}")
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")

    @classmethod
    def half_open(cls, start: float, end: float, step: float) -> TimeGrid:
        """The grid over [start, end): 24 h at 15 s is 5,760 steps, each standing for 15 s."""
        if step <= 0:
            raise ValueError(f"step must be positive, got {step}")
        if end <= start:
            raise ValueError(f"end ({end}) must be after start ({start})")
        steps = math.ceil((end - start) / step - 1e-9)
        return cls(start, start + (steps - 1) * step, step)

    def __len__(self) -> int:
        # A tiny epsilon keeps float division from dropping the last point (86400/15 exactly).
        return math.floor((self.end - self.start) / self.step + 1e-9) + 1

    def times(self) -> list[float]:
        """Every evaluation time of the grid."""
        return [self.start + k * self.step for k in range(len(self))]

    def index(self, at: float) -> int | None:
        """Grid index of time ``at``, or None when ``at`` is not (close to) a grid point."""
        k = round((at - self.start) / self.step)
        if k < 0 or k >= len(self) or abs(self.start + k * self.step - at) > self.step * 1e-3:
            return None
        return k


@dataclass(frozen=True)
class PodsHistory:
    """History of one ``Pods`` metric: per grid step the observed per-pod average and pod count.

    ``average[k]`` is None when the query returned nothing at step k; ``pod_count[k]`` is the
    number of series (pods) it returned then.
    """

    average: Sequence[float | None]
    pod_count: Sequence[int]

    @classmethod
    def from_pod_values(cls, samples: Sequence[Mapping[str, float] | None]) -> PodsHistory:
        """Build from per-step ``{pod: value}`` maps (None or empty: no sample at that step)."""
        average: list[float | None] = []
        count: list[int] = []
        for sample in samples:
            if not sample:
                average.append(None)
                count.append(0)
            else:
                average.append(sum(sample.values()) / len(sample))
                count.append(len(sample))
        return cls(average, count)


@dataclass(frozen=True)
class ValueHistory:
    """History of one ``Object``/``External`` metric: one value per grid step (None: missing)."""

    values: Sequence[float | None]


MetricHistory = PodsHistory | ValueHistory


@dataclass(frozen=True)
class BacktestOptions:
    """Knobs of the replay."""

    # None: the first observed pod count, else the rule's minReplicas.
    initial_replicas: int | None = None
    # Seconds from a scale-up until the new pods are ready and take load.
    startup_delay_seconds: float = DEFAULT_STARTUP_DELAY_SECONDS
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    # Each simulated pod's requests ("cpu" in cores, "memory" in bytes) for Resource metrics; a
    # ContainerResource metric's container requests them. Empty: no requests (a Utilization
    # target then fails with the HPA's "missing request" message at every step).
    pod_requests: Mapping[str, float] = field(default_factory=dict)
    # The stack's series settings: the CPU window the HPA's readiness rules see.
    resource_series: ResolvedSeries = STACK_DEFAULT_SERIES


@dataclass(frozen=True)
class MetricPoint:
    """One metric at one step, in the target's terms (per-pod average for AverageValue)."""

    name: str
    # What production saw: the observed per-pod average for Pods, the observed value for Value
    # targets, the observed value / observed replicas for Object/External AverageValue.
    observed: float | None
    # What the engine saw in the simulation (MetricResult.current); None when the metric failed.
    value: float | None
    target: float
    proposal: int | None
    error: str | None = None

    @property
    def usage_ratio(self) -> float | None:
        """Simulated value / target."""
        return None if self.value is None else self.value / self.target

    @property
    def observed_ratio(self) -> float | None:
        """Observed value / target."""
        return None if self.observed is None else self.observed / self.target


@dataclass(frozen=True)
class StepRow:
    """One evaluation of the replay."""

    time: float
    # Replicas of the real workload at this time (None when unknown).
    observed_replicas: int | None
    # Simulated spec.replicas before the decision, and how many of those pods were ready.
    current_replicas: int
    ready_pods: int
    # The engine's decision; the simulated count from now until the next step.
    desired_replicas: int
    action: str
    reason: str
    metrics: tuple[MetricPoint, ...]


@dataclass(frozen=True)
class Summary:
    """Figures over a whole replay (or over the observed history)."""

    ticks: int
    step_seconds: float
    replica_hours: float
    mean_replicas: float
    peak_replicas: int
    min_replicas: int
    scale_events: int
    scale_ups: int
    scale_downs: int
    direction_changes: int
    # Time during which some metric's usage ratio exceeded 1 + tolerance.
    above_target_seconds: float
    above_target_percent: float
    # Steps at which some metric had no usable sample.
    metric_error_ticks: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-friendly form with camelCase keys, as the CLI prints it."""
        return {
            "ticks": self.ticks,
            "stepSeconds": self.step_seconds,
            "replicaHours": round(self.replica_hours, 3),
            "meanReplicas": round(self.mean_replicas, 3),
            "peakReplicas": self.peak_replicas,
            "minReplicas": self.min_replicas,
            "scaleEvents": self.scale_events,
            "scaleUps": self.scale_ups,
            "scaleDowns": self.scale_downs,
            "directionChanges": self.direction_changes,
            "aboveTargetSeconds": self.above_target_seconds,
            "aboveTargetPercent": round(self.above_target_percent, 3),
            "metricErrorTicks": self.metric_error_ticks,
        }


@dataclass(frozen=True)
class BacktestResult:
    """Rows and summaries of one rule's replay."""

    rule: Rule
    grid: TimeGrid
    options: BacktestOptions
    tolerance: float
    rows: tuple[StepRow, ...]
    summary: Summary
    # The same figures for what really happened; None when the observed replicas are unknown.
    observed: Summary | None


@dataclass
class _Pod:
    name: str
    ready_at: float
    running: PodInfo
    pending: PodInfo


class _Workload:
    """The simulated pods of the target: scale-ups start pods, scale-downs remove them at once."""

    def __init__(
        self, replicas: int, start: float, delay: float, containers: tuple[ContainerInfo, ...] = ()
    ) -> None:
        self.delay = delay
        self.created = 0
        self.pods: list[_Pod] = []
        self.containers = containers
        self.requests: dict[str, float] = {}
        for info in containers:
            for resource, amount in info.requests.items():
                self.requests[resource] = self.requests.get(resource, 0.0) + amount
        self.add(replicas, start - delay - INITIAL_POD_AGE_SECONDS)

    def add(self, count: int, now: float) -> None:
        for _ in range(count):
            name = f"sim-{self.created}"
            self.created += 1
            ready_at = now + self.delay
            running = PodInfo(
                name,
                start_time=now,
                ready_transition_time=ready_at,
                requests=self.requests,
                containers=self.containers,
            )
            pending = PodInfo(
                name,
                phase="Pending",
                ready=False,
                start_time=now,
                ready_transition_time=now,
                requests=self.requests,
                containers=self.containers,
            )
            self.pods.append(_Pod(name, ready_at, running, pending))

    def remove(self, count: int) -> None:
        # The ReplicaSet controller deletes not-ready pods first, then the newest; with one
        # start-up delay for every pod, creation order is readiness order, so the tail goes first.
        # Upstream: getPodsToDelete / ActivePodsWithRanks.
        del self.pods[len(self.pods) - count :]

    def resize(self, replicas: int, now: float) -> None:
        current = len(self.pods)
        if replicas > current:
            self.add(replicas - current, now)
        elif replicas < current:
            self.remove(current - replicas)


def above_target_tolerance(rule: Rule, controller: ControllerConfig) -> float:
    """The tolerance above which a metric counts as "above target": the engine's scale-up one."""
    return resolve_tolerances(rule, controller).scale_up


def _check_history(rule: Rule, grid: TimeGrid, history: Mapping[str, MetricHistory]) -> None:
    n = len(grid)
    for spec in rule.metrics:
        hist = history.get(spec.name)
        if hist is None:
            raise ValueError(f"no history for metric {spec.name!r}")
        if spec.type in ("Pods", *_RESOURCE_TYPES):
            if not isinstance(hist, PodsHistory):
                raise ValueError(f"metric {spec.name!r} is a {spec.type} metric and needs PodsHistory")
            if len(hist.average) != n or len(hist.pod_count) != n:
                raise ValueError(f"history of {spec.name!r} has {len(hist.average)} steps, grid has {n}")
        else:
            if not isinstance(hist, ValueHistory):
                raise ValueError(f"metric {spec.name!r} is an {spec.type} metric and needs ValueHistory")
            if len(hist.values) != n:
                raise ValueError(f"history of {spec.name!r} has {len(hist.values)} steps, grid has {n}")


def observed_replicas_of(rule: Rule, history: Mapping[str, MetricHistory], steps: int) -> list[int | None]:
    """The real workload's pod count per step: the series count of the rule's first Pods metric.

    Steps where that query returned nothing are None (unknown), as are all steps of a rule with
    no Pods metric.
    """
    for spec in rule.metrics:
        hist = history.get(spec.name)
        if spec.type in ("Pods", *_RESOURCE_TYPES) and isinstance(hist, PodsHistory):
            return [c if a is not None else None for a, c in zip(hist.average, hist.pod_count, strict=True)]
    return [None] * steps


def _initial_replicas(rule: Rule, options: BacktestOptions, observed: Sequence[int | None]) -> int:
    if options.initial_replicas is not None:
        return options.initial_replicas
    for count in observed:
        if count is not None:
            return count
    return rule.min_replicas


def simulated_containers(rule: Rule, pod_requests: Mapping[str, float]) -> tuple[ContainerInfo, ...]:
    """The containers of every simulated pod: each one a ContainerResource metric names, else ``app``.

    Each requests ``pod_requests``; with no requests the pods list no containers (the engine
    then reads the pod's empty requests and reports the missing request).
    """
    if not pod_requests:
        return ()
    names = [spec.container for spec in rule.metrics if spec.type == "ContainerResource" and spec.container]
    unique = list(dict.fromkeys(names)) or [DEFAULT_CONTAINER]
    return tuple(ContainerInfo(name, dict(pod_requests)) for name in unique)


def _observed_point(
    spec: MetricSpec,
    average: float | None,
    pod_requests: Mapping[str, float],
    container_requests: Mapping[str, float],
) -> float | None:
    """What production saw in the target's terms: the per-pod average, or for a Utilization target
    that average as a percent of a simulated pod's (or its named container's) request."""
    if average is None or spec.target.type != "Utilization":
        return average
    requests = container_requests if spec.type == "ContainerResource" else pod_requests
    request = requests.get(spec.resource or "")
    return average / request * 100 if request else None


def _missing(spec: MetricSpec, at: float) -> str:
    return f"query {spec.name!r} returned no data at {at:.0f}"


def simulate(
    rule: Rule,
    grid: TimeGrid,
    history: Mapping[str, MetricHistory],
    options: BacktestOptions | None = None,
    *,
    observed_replicas: Sequence[int | None] | None = None,
    decide: DecideFn | None = None,
    progress: ProgressFn | None = None,
) -> BacktestResult:
    """Replay ``rule`` through the engine at every time of ``grid``.

    Parameters
    ----------
    rule:
        The rule to replay.
    grid:
        Evaluation times; ``history`` is indexed like ``grid.times()``.
    history:
        Per metric name: ``PodsHistory`` for Pods metrics, ``ValueHistory`` otherwise.
    options:
        Initial replicas, pod start-up delay, controller flags.
    observed_replicas:
        The real workload's replicas per step; default: derived from the first Pods metric.
    decide:
        The engine entry point (default ``ampscaler.engine.decide.decide``); injectable for tests.
    progress:
        Called as ``progress(done, total)`` every few hundred steps and at the end.

    Returns
    -------
    BacktestResult
        One row per grid step and the summaries.

    Raises
    ------
    ValueError
        When ``history`` does not match the rule's metrics or the grid.
    """
    options = options or BacktestOptions()
    _check_history(rule, grid, history)
    times = grid.times()
    n = len(times)
    observed = (
        list(observed_replicas) if observed_replicas is not None else observed_replicas_of(rule, history, n)
    )
    if len(observed) != n:
        raise ValueError(f"observed_replicas has {len(observed)} steps, grid has {n}")
    controller = options.controller
    workload = _Workload(
        _initial_replicas(rule, options, observed),
        grid.start,
        options.startup_delay_seconds,
        simulated_containers(rule, options.pod_requests),
    )
    windows = {
        spec.name: resolve_series(spec.series, options.resource_series).window_seconds
        for spec in rule.metrics
        if spec.type in _RESOURCE_TYPES and spec.resource == "cpu"
    }
    specs = rule.metrics
    targets = [spec.target.amount for spec in specs]
    state: EngineState | None = None
    rows: list[StepRow] = []

    for k, now in enumerate(times):
        pods = workload.pods
        current = len(pods)
        ready = [p for p in pods if p.ready_at <= now]
        infos = tuple(p.running if p.ready_at <= now else p.pending for p in pods)
        observations: list[MetricObservation] = []
        observed_points: list[float | None] = []
        for spec in specs:
            hist = history[spec.name]
            if isinstance(hist, PodsHistory):
                avg = hist.average[k]
                per_pod: float | None
                if avg is not None:
                    # Load conservation: what the real pods served, spread over the simulated ones.
                    demand = avg * hist.pod_count[k]
                    per_pod = demand / len(ready) if ready else None
                else:
                    per_pod = spec.empty_as
                observed_points.append(_observed_point(spec, avg, workload.requests, options.pod_requests))
                if avg is None and spec.empty_as is None:
                    observations.append(MetricObservation(spec.name, error=_missing(spec, now)))
                elif spec.type in _RESOURCE_TYPES:
                    # The samples describe the step's time over the rate window (cpu), as a live
                    # query's do; the CPU readiness rules compare them with the pods' times.
                    values = {p.name: per_pod for p in ready} if per_pod is not None else {}
                    window = windows.get(spec.name)
                    observations.append(
                        MetricObservation(
                            spec.name,
                            pod_values=values,
                            timestamp=now,
                            window_seconds=None if window is None else float(window),
                        )
                    )
                else:
                    values = {p.name: per_pod for p in ready} if per_pod is not None else {}
                    observations.append(MetricObservation(spec.name, pod_values=values))
            else:
                assert isinstance(hist, ValueHistory)
                raw = hist.values[k]
                if raw is None:
                    raw = spec.empty_as
                if raw is None:
                    observations.append(MetricObservation(spec.name, error=_missing(spec, now)))
                    observed_points.append(None)
                    continue
                observations.append(MetricObservation(spec.name, value=raw))
                if spec.target.type == "AverageValue":
                    count = observed[k]
                    observed_points.append(raw / count if count else None)
                else:
                    observed_points.append(raw)

        # The tick's own path from observations to a decision (contract.build_decide_input, evaluate).
        step_input = build_decide_input(
            rule, now, ScaleObservation(current, current), infos, observations, state, controller
        )
        decision = evaluate(step_input, decide).decision
        state = decision.state
        results = {m.name: m for m in decision.metrics}
        points = []
        for spec, target, obs_point, obs in zip(specs, targets, observed_points, observations, strict=True):
            res = results.get(spec.name)
            points.append(
                MetricPoint(
                    spec.name,
                    observed=obs_point,
                    value=res.current if res is not None else None,
                    target=res.target if res is not None else target,
                    proposal=res.proposal if res is not None else None,
                    error=obs.error if obs.error is not None else (res.error if res is not None else None),
                )
            )
        rows.append(
            StepRow(
                time=now,
                observed_replicas=observed[k],
                current_replicas=current,
                ready_pods=len(ready),
                desired_replicas=decision.desired_replicas if decision.action == "scale" else current,
                action=decision.action,
                reason=decision.reason,
                metrics=tuple(points),
            )
        )
        if decision.action == "scale":
            workload.resize(decision.desired_replicas, now)
        if progress is not None and (k + 1) % _PROGRESS_EVERY == 0:
            progress(k + 1, n)
    if progress is not None:
        progress(n, n)

    tolerance = above_target_tolerance(rule, controller)
    return BacktestResult(
        rule=rule,
        grid=grid,
        options=options,
        tolerance=tolerance,
        rows=tuple(rows),
        summary=summarize_simulated(rows, grid.step, tolerance),
        observed=summarize_observed(rows, grid.step, tolerance),
    )


def _count_changes(counts: Sequence[int]) -> tuple[int, int, int]:
    """(scale-ups, scale-downs, direction changes) of a replica-count sequence."""
    ups = downs = flips = 0
    last = 0
    for before, after in itertools.pairwise(counts):
        if after == before:
            continue
        direction = 1 if after > before else -1
        if direction > 0:
            ups += 1
        else:
            downs += 1
        if last and direction != last:
            flips += 1
        last = direction
    return ups, downs, flips


def _summary(
    in_force: Sequence[int],
    transitions: Sequence[int],
    above: Sequence[bool],
    errors: int,
    ticks: int,
    step: float,
) -> Summary:
    """``in_force[k]``: the count during step k; ``transitions``: the sequence whose changes count."""
    ups, downs, flips = _count_changes(transitions)
    above_ticks = sum(1 for a in above if a)
    return Summary(
        ticks=ticks,
        step_seconds=step,
        # Each step stands for the interval [t, t + step) at the count in force during it.
        replica_hours=sum(in_force) * step / 3600.0,
        mean_replicas=sum(in_force) / len(in_force) if in_force else 0.0,
        peak_replicas=max(in_force, default=0),
        min_replicas=min(in_force, default=0),
        scale_events=ups + downs,
        scale_ups=ups,
        scale_downs=downs,
        direction_changes=flips,
        above_target_seconds=above_ticks * step,
        above_target_percent=100.0 * above_ticks / ticks if ticks else 0.0,
        metric_error_ticks=errors,
    )


def _is_above(ratios: Sequence[float | None], tolerance: float) -> bool:
    return any(r is not None and r > 1.0 + tolerance for r in ratios)


def summarize_simulated(rows: Sequence[StepRow], step: float, tolerance: float) -> Summary:
    """Summary of the simulated workload.

    The count in force during step k is the decision taken at k; scale events are the
    decisions that changed the count (the first one included); "above target" means some
    metric's simulated usage ratio was above ``1 + tolerance``.
    """
    desired = [r.desired_replicas for r in rows]
    return _summary(
        desired,
        ([rows[0].current_replicas] if rows else []) + desired,
        [_is_above([m.usage_ratio for m in r.metrics], tolerance) for r in rows],
        sum(1 for r in rows if any(m.error is not None for m in r.metrics)),
        len(rows),
        step,
    )


def summarize_observed(rows: Sequence[StepRow], step: float, tolerance: float) -> Summary | None:
    """Summary of what really happened; replica figures over the steps whose count is known."""
    counts = [r.observed_replicas for r in rows if r.observed_replicas is not None]
    if not counts:
        return None
    return _summary(
        counts,
        counts,
        [_is_above([m.observed_ratio for m in r.metrics], tolerance) for r in rows],
        sum(1 for r in rows if any(m.observed is None for m in r.metrics)),
        len(rows),
        step,
    )
