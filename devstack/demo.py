"""``make demo``: the real scaler handler scaling a simulated Deployment through a traffic burst, locally.

``python -m devstack.demo [--scenario rps|cpu] [--duration SECONDS] [--interval SECONDS] [--out DIR] [--quiet]``

``--scenario cpu`` runs a CPU ``Resource`` rule (60 % of requests) instead: the Deployment's pods
request 500m of CPU, and the traffic is cAdvisor's ``container_cpu_usage_seconds_total`` per pod
(the app container, the pause container and the pod cgroup, as the kubelet reports them), read by
the rule's default query.

Everything runs on loopback from ``devstack.stack.LocalStack`` (real Prometheus behind the SigV4
proxy, moto server, the Kubernetes API simulator with pods Ready a few seconds after creation). The
demo puts one embedded rule into SSM, writes an ``http_requests_total`` counter per ready pod into
Prometheus by remote write (total demand split across the ready pods; demand ramps up, holds, drops)
and runs ``functions/scaler/app.py`` as Lambda runs it: a local schedule fires every four slots and
that invocation queues the later slots on the slot queue (SQS message timers in moto), which the
local event source delivers at each slot's start, one invocation per slot. The function's stdout
(Powertools JSON and EMF) is captured; the terminal gets one line per slot like
``kubectl get hpa --watch`` (a full decision record, or a steady rule's compact entry). At the end: a summary, ``demo.png``, ``decisions.jsonl`` (the decision
records as the function logged them) and a byte-for-byte replay of every decision through the
``ampscaler decide`` contract. Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, TextIO

from ampscaler import contract
from devstack.cadvisor import PAUSE_CPU_CORES, PAUSE_MEMORY_BYTES, pod_snapshot
from devstack.kube_sim import DEFAULT_CONTAINERS, SimContainer
from devstack.lambda_runtime import LineCapture, LocalFunction, LocalSchedule, SqsEventSource, load_handler
from devstack.stack import CLUSTER, LocalStack

NAMESPACE = "demo"
DEPLOYMENT = "web"
RULE_NAME = "demo/web"
METRIC = "http_requests_total"
TARGET_PER_POD = 10.0
MIN_REPLICAS = 1
MAX_REPLICAS = 10
READY_DELAY_SECONDS = 3.0
DEFAULT_DURATION_SECONDS = 120.0
DEFAULT_INTERVAL_SECONDS = 5
# The schedule fires every four slots, as template.yaml's 60 s schedule does for 15 s slots.
SLOTS_PER_FIRING = 4
# Counter samples per second written for every ready pod.
WRITE_PERIOD_SECONDS = 1.0
# History written before the run so the first tick already sees a rate.
BACKFILL_SECONDS = 60
# The CPU scenario: each pod requests 500m and the rule keeps usage at 60 % of requests, so one
# pod is right for 0.3 cores of demand.
CPU_REQUEST_CORES = 0.5
CPU_TARGET_UTILIZATION = 60
APP_MEMORY_BYTES = 96 * 1024 * 1024
# Exit statuses: the shell convention 128 + signal number for an interrupted run.
EXIT_OK = 0
EXIT_FAILED = 1


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; unwinding stops every component the demo started."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class Scenario:
    """The traffic shape and the rule timings, scaled to the run's duration.

    Demand (total requests per second across the Deployment) is ``base_rps`` for the first 10 %
    of the run, ramps linearly to ``peak_rps`` by 25 %, holds until 55 %, falls to ``after_rps``
    by 60 % and stays there, so the second half shows the scale-down stabilization window at work.
    """

    duration_seconds: float = DEFAULT_DURATION_SECONDS
    base_rps: float = 5.0
    peak_rps: float = 60.0
    after_rps: float = 8.0
    # Rule timings at the default duration; shorter runs shrink them proportionally.
    stabilization_seconds: int = 20
    rate_window_seconds: int = 15

    # How demand and the metric read in the live lines, the summary and the figure.
    demand_unit: ClassVar[str] = "rps"
    percent: ClassVar[bool] = False
    # The Deployment was already running this long when the demo starts (0: created now).
    workload_age_seconds: ClassVar[float] = 0.0

    @classmethod
    def for_duration(cls, duration_seconds: float) -> Scenario:
        """The default scenario stretched or squeezed to ``duration_seconds``.

        The scale-down window and the PromQL rate window shrink with short runs (never below 5 s
        and 6 s) so a 40 s run still scales up and has a chance to scale back down.
        """
        scale = min(1.0, duration_seconds / DEFAULT_DURATION_SECONDS)
        return cls(
            duration_seconds=duration_seconds,
            stabilization_seconds=max(5, round(cls.stabilization_seconds * scale)),
            rate_window_seconds=max(6, round(cls.rate_window_seconds * scale)),
        )

    def demand(self, elapsed: float) -> float:
        """Total demand (rps) ``elapsed`` seconds into the run."""
        x = elapsed / self.duration_seconds
        if x < 0.10:
            return self.base_rps
        if x < 0.25:
            return self.base_rps + (self.peak_rps - self.base_rps) * (x - 0.10) / 0.15
        if x < 0.55:
            return self.peak_rps
        if x < 0.60:
            return self.peak_rps + (self.after_rps - self.peak_rps) * (x - 0.55) / 0.05
        return self.after_rps

    @property
    def query(self) -> str:
        """The rule's PromQL: requests per second of each pod."""
        return f'sum by (pod) (rate({METRIC}{{namespace="{NAMESPACE}"}}[{self.rate_window_seconds}s]))'

    @property
    def per_pod_target(self) -> float:
        """The demand one pod should carry at the target, in ``demand_unit``."""
        return TARGET_PER_POD

    @property
    def target(self) -> float:
        """The rule's target as the decision reports it (per-pod rps here)."""
        return TARGET_PER_POD

    def describe(self) -> str:
        """The rule in one line, for the terminal."""
        return f"{self.query}  target {TARGET_PER_POD:g}/pod"

    def containers(self) -> tuple[SimContainer, ...]:
        """What the Deployment's pods run (their resource requests)."""
        return DEFAULT_CONTAINERS

    def samples(
        self, pod: str, counter: float, at: float, elapsed: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """The series one pod reports at ``at`` whose counter of demand served is ``counter``."""
        labels = {"__name__": METRIC, "namespace": NAMESPACE, "pod": pod, "job": DEPLOYMENT}
        return [(labels, [(at, counter)])]

    def rule(self) -> dict[str, Any]:
        """The embedded example rule (what a user would put into Parameter Store)."""
        return {
            "apiVersion": "ampscaler/v1",
            "target": {"cluster": CLUSTER, "namespace": NAMESPACE, "kind": "Deployment", "name": DEPLOYMENT},
            "minReplicas": MIN_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "name": "rps",
                    "type": "Pods",
                    "query": self.query,
                    "podLabel": "pod",
                    "target": {"type": "AverageValue", "averageValue": TARGET_PER_POD},
                }
            ],
            # Upstream's default scale-down window is 300 s; shortened so the demo fits in minutes.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": self.stabilization_seconds}},
        }


@dataclass(frozen=True)
class CpuScenario(Scenario):
    """The same burst as CPU load, in cores, against a CPU ``Resource`` rule at 60 % of requests.

    Each ready pod's app container burns ``demand / ready pods`` cores; cAdvisor-shaped series
    (``container_cpu_usage_seconds_total`` of the app container, the pause container and the pod
    cgroup) carry it, and the rule's default query reads it over a ``rate_window_seconds`` window.
    The Deployment has been running for a minute already, so its pod is past the window since it
    turned Ready, as the HPA's CPU rules require before they count a pod's usage.
    """

    base_rps: float = 0.2
    peak_rps: float = 2.7
    after_rps: float = 0.4

    demand_unit: ClassVar[str] = "cores"
    percent: ClassVar[bool] = True
    workload_age_seconds: ClassVar[float] = float(BACKFILL_SECONDS)

    @property
    def per_pod_target(self) -> float:
        """Cores per pod at the target: 60 % of the 500m request."""
        return CPU_REQUEST_CORES * CPU_TARGET_UTILIZATION / 100

    @property
    def target(self) -> float:
        """The utilization target in percent."""
        return float(CPU_TARGET_UTILIZATION)

    def describe(self) -> str:
        """The rule in one line, for the terminal."""
        return (
            f"Resource cpu, Utilization {CPU_TARGET_UTILIZATION}% of requests ({CPU_REQUEST_CORES * 1000:g}m "
            f"per pod), default cAdvisor query over a {self.rate_window_seconds}s window"
        )

    def rule(self) -> dict[str, Any]:
        """A CPU rule as an HPA spec would paste in, with the demo's short windows."""
        return {
            "apiVersion": "ampscaler/v1",
            "target": {"cluster": CLUSTER, "namespace": NAMESPACE, "kind": "Deployment", "name": DEPLOYMENT},
            "minReplicas": MIN_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": CPU_TARGET_UTILIZATION},
                    },
                    # The stack's 180 s window would outlast the demo; 15 s follows the burst.
                    "series": {"windowSeconds": self.rate_window_seconds},
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": self.stabilization_seconds}},
        }

    def containers(self) -> tuple[SimContainer, ...]:
        """One app container requesting 500m of CPU and 128Mi of memory."""
        return (SimContainer("app", {"cpu": f"{CPU_REQUEST_CORES * 1000:g}m", "memory": "128Mi"}),)

    def samples(
        self, pod: str, counter: float, at: float, elapsed: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """One cAdvisor scrape of the pod: ``counter`` CPU seconds in the app container."""
        labels_series = pod_snapshot(
            NAMESPACE,
            pod,
            {"app": counter, "POD": PAUSE_CPU_CORES * max(0.0, elapsed)},
            {"app": APP_MEMORY_BYTES, "POD": PAUSE_MEMORY_BYTES},
            at,
        )
        return [(dict(labels), list(points)) for labels, points in labels_series]


SCENARIOS: Mapping[str, type[Scenario]] = {"rps": Scenario, "cpu": CpuScenario}


@dataclass(frozen=True)
class TrafficSample:
    """One write of the traffic generator."""

    elapsed: float
    demand: float
    ready: int
    replicas: int


@dataclass(frozen=True)
class TickRow:
    """One scaler decision, as the live line and the plot show it."""

    elapsed: float
    demand: float
    value: float | None
    target: float
    ready: int
    current: int
    desired: int
    reason: str
    patched: bool
    # How the row reads: demand unit, and whether value/target are percentages (CPU utilization).
    demand_unit: str = "rps"
    percent: bool = False


class TrafficGenerator:
    """Writes a ``http_requests_total`` counter per ready pod every second, from a background thread.

    Each ready pod serves ``demand / ready pods``; its counter grows by that rate times the time
    since the last write, so ``rate()`` over it reads back the per-pod load. A new pod's counter
    starts at zero when it turns Ready; a removed pod's series simply stops.
    """

    def __init__(self, stack: LocalStack, scenario: Scenario, started: float) -> None:
        self.stack = stack
        self.scenario = scenario
        self.started = started
        self.counters: dict[str, float] = {}
        self.samples: list[TrafficSample] = []
        self.error: Exception | None = None
        self._last = started
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def backfill(self, seconds: int) -> None:
        """Write ``seconds`` of history at the base demand, so the first tick already has a rate."""
        pods = self.stack.kube.ready_pods(NAMESPACE)
        per_pod = self.scenario.base_rps / max(1, len(pods))
        merged: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[tuple[float, float]]]] = {}
        for pod in pods:
            for i in range(seconds + 1):
                at = self.started - seconds + i
                for labels, points in self.scenario.samples(
                    pod, per_pod * i, at, at - self.started + seconds
                ):
                    merged.setdefault(tuple(sorted(labels.items())), (labels, []))[1].extend(points)
            self.counters[pod] = per_pod * seconds
        self.stack.write_samples(list(merged.values()))

    def start(self) -> None:
        """Start writing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop writing and wait for the thread (bounded by the remote-write timeout)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=15)

    def demand_at(self, at: float) -> float:
        """Total demand at unix time ``at``."""
        return self.scenario.demand(at - self.started)

    def history(self) -> list[TrafficSample]:
        """A copy of every sample written so far."""
        with self._lock:
            return list(self.samples)

    def _run(self) -> None:
        next_at = self.started + WRITE_PERIOD_SECONDS
        while not self._stop.wait(max(0.0, next_at - time.time())):
            try:
                self.step(time.time())
            except Exception as exc:  # reported by the main thread; a dead writer must not hang the run
                if not self._stop.is_set():
                    self.error = exc
                return
            next_at += WRITE_PERIOD_SECONDS

    def step(self, now: float) -> None:
        """Advance every ready pod's counter to ``now`` and write one sample per pod."""
        pods = self.stack.kube.ready_pods(NAMESPACE)
        replicas = int(self.stack.kube.scale("deployments", NAMESPACE, DEPLOYMENT)["spec"]["replicas"])
        demand = self.demand_at(now)
        dt = max(0.0, now - self._last)
        self._last = now
        per_pod = demand / len(pods) if pods else 0.0
        for pod in pods:
            self.counters[pod] = self.counters.get(pod, 0.0) + per_pod * dt
        if pods:
            elapsed = now - self.started + BACKFILL_SECONDS
            self.stack.write_samples(
                [series for p in pods for series in self.scenario.samples(p, self.counters[p], now, elapsed)]
            )
        with self._lock:
            self.samples.append(TrafficSample(now - self.started, demand, len(pods), replicas))


@dataclass
class DemoResult:
    """What the run produced, for the summary and the plot."""

    scenario: Scenario
    interval: int
    ticks: list[TickRow] = field(default_factory=list)
    traffic: list[TrafficSample] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    # Steady evaluations, logged as compact entries of their slot's tick line.
    compact: int = 0
    invocations: int = 0


# ------------------------------------------------------------------------------------ terminal


HEADER = f"{'TIME':>5}  {'DEMAND':>8}  {'TARGETS':>11}  {'READY':>5}  {'REPLICAS':>8}  REASON"


def format_tick(row: TickRow) -> str:
    """One live line: time, demand, per-pod value/target, ready pods, current -> desired, reason."""
    # A slot may start a moment before the traffic does: shown as -00:01, not -1:59.
    sign = "-" if round(row.elapsed) < 0 else ""
    minutes, seconds = divmod(abs(round(row.elapsed)), 60)
    if row.percent:
        value = "<unknown>" if row.value is None else f"{row.value:.0f}%"
        targets = f"{value}/{row.target:g}%"
        demand = f"{row.demand:>4.2f}{row.demand_unit}"
    else:
        value = "<unknown>" if row.value is None else f"{row.value:.1f}"
        targets = f"{value}/{row.target:g}"
        demand = f"{row.demand:>5.1f}{row.demand_unit}"
    replicas = f"{row.current} -> {row.desired}"
    mark = "  (scaled)" if row.patched else ""
    return f"{sign}{minutes:02d}:{seconds:02d}  {demand:>8}  {targets:>11}  {row.ready:>5}  {replicas:>8}  {row.reason}{mark}"


def tick_row(
    record: dict[str, Any], started: float, demand: float, scenario: Scenario | None = None
) -> TickRow:
    """The live-line view of one logged decision record."""
    scenario = scenario or Scenario()
    output = record["output"]
    metric = output["metrics"][0] if output.get("metrics") else {}
    pods = record["input"].get("pods") or []
    return TickRow(
        elapsed=float(record["input"]["now"]) - started,
        demand=demand,
        value=metric.get("current"),
        target=float(metric.get("target", scenario.target)),
        ready=sum(1 for p in pods if p.get("ready") and not p.get("deleting")),
        current=int(record["from"]),
        desired=int(record["to"]),
        reason=str(record["reason"]),
        patched=bool(record["patched"]),
        demand_unit=scenario.demand_unit,
        percent=scenario.percent,
    )


class Terminal:
    """Friendly output on the real stdout, flushed per line (the demo's stdout may be a pipe)."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet

    def say(self, text: str = "", *, live: bool = False) -> None:
        """Print ``text``; live lines are left out with --quiet."""
        if live and self.quiet:
            return
        with contextlib.suppress(BrokenPipeError):
            print(text, file=self.stream, flush=True)


# ------------------------------------------------------------------------------------ the run


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into ``Interrupted`` in the main thread for the block."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM for the block: a second Ctrl-C must not interrupt the cleanup."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def sleep_until(at: float) -> None:
    """Sleep until unix time ``at`` (signals interrupt the sleep and raise)."""
    while (left := at - time.time()) > 0:
        time.sleep(min(left, 0.5))


def run_demo(stack: LocalStack, args: argparse.Namespace, term: Terminal) -> DemoResult:
    """Set up the workload and the rule, generate traffic and tick until the duration is over."""
    scenario = SCENARIOS[getattr(args, "scenario", "rps")].for_duration(args.duration)
    interval = int(args.interval)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(scenario, interval)

    # Created first: its pod becomes Ready while the handler is imported.
    stack.kube.add_deployment(
        NAMESPACE,
        DEPLOYMENT,
        replicas=MIN_REPLICAS,
        labels={"app": DEPLOYMENT},
        containers=scenario.containers(),
        age_seconds=scenario.workload_age_seconds,
    )
    stack.put_rule(RULE_NAME, scenario.rule())
    capture = LineCapture()
    with (
        stack.environment(**slot_environment(interval)),
        (out / "decisions.jsonl").open("w", encoding="utf-8") as decisions_file,
        (out / "function-stdout.jsonl").open("w", encoding="utf-8") as stdout_file,
    ):
        function = LocalFunction(load_handler("scaler", stream=capture))
        deadline = time.time() + READY_DELAY_SECONDS + 10
        while not stack.kube.ready_pods(NAMESPACE) and time.time() < deadline:
            time.sleep(0.1)

        started = time.time()
        traffic = TrafficGenerator(stack, scenario, started)
        traffic.backfill(BACKFILL_SECONDS)
        traffic.start()
        term.say(
            f"rule {RULE_NAME}: {scenario.describe()}, "
            f"replicas {MIN_REPLICAS}..{MAX_REPLICAS}, scale-down window {scenario.stabilization_seconds}s"
        )
        term.say(
            f"traffic {scenario.base_rps:g} -> {scenario.peak_rps:g} -> {scenario.after_rps:g} "
            f"{scenario.demand_unit} over "
            f"{scenario.duration_seconds:g}s; a slot every {interval}s (schedule + slot queue); Ctrl-C stops\n"
        )
        term.say(HEADER, live=True)
        # The redirect covers the worker threads too: EMF blobs look sys.stdout up per write.
        with contextlib.redirect_stdout(capture), scaler_running(stack, function, interval):
            try:
                end = started + scenario.duration_seconds
                while time.time() < end:
                    sleep_until(min(end, time.time() + 0.25))
                    if traffic.error is not None:
                        raise RuntimeError(f"traffic generator failed: {traffic.error}") from traffic.error
                    for row in _rows(
                        capture.drain(), stdout_file, decisions_file, result, started, traffic, stack
                    ):
                        term.say(format_tick(row), live=True)
                    decisions_file.flush()
            finally:
                traffic.stop()
                result.traffic = traffic.history()
                for row in _rows(
                    capture.drain(), stdout_file, decisions_file, result, started, traffic, stack
                ):
                    term.say(format_tick(row), live=True)
                result.invocations = function.invocations
    return result


def slot_environment(interval: int) -> dict[str, str]:
    """The function's settings for ``interval``-second slots, as in AWS but faster.

    The schedule fires every four slots and queues the three later ones on the slot queue (SQS
    message timers); the event source delivers each at its slot's start.
    """
    return {
        "EVALUATION_INTERVAL_SECONDS": str(interval),
        "SCHEDULE_INTERVAL_SECONDS": str(SLOTS_PER_FIRING * interval),
        "DEADLINE_MARGIN_SECONDS": "0.5",
        "RULE_CACHE_SECONDS": "0",
    }


@contextlib.contextmanager
def scaler_running(stack: LocalStack, function: LocalFunction, interval: int) -> Iterator[None]:
    """The function on its local schedule and slot queue for the block: one invocation per slot."""
    schedule = LocalSchedule(function.invoke, SLOTS_PER_FIRING * interval, start_now=True)
    poller = SqsEventSource(stack.client("sqs"), stack.slot_queue_url, function.invoke)
    schedule.start()
    poller.start()
    try:
        yield
    finally:
        schedule.stop()
        poller.stop()


def _rows(
    lines: Sequence[str],
    stdout_file: TextIO,
    decisions_file: TextIO,
    result: DemoResult,
    started: float,
    traffic: TrafficGenerator,
    stack: LocalStack,
) -> list[TickRow]:
    """Live rows from the function's output: a full decision record, or a steady rule's compact entry."""
    rows: list[TickRow] = []
    for line in lines:
        stdout_file.write(line + "\n")
        record = _json_line(line)
        if record is None:
            continue
        if record.get("event") == "decision":
            decisions_file.write(line + "\n")
            result.decisions.append(record)
            row = tick_row(
                record, started, traffic.demand_at(float(record["input"]["now"])), traffic.scenario
            )
        elif record.get("event") == "tick" and record.get("rules"):
            slot_start = float(int(record["slot"]))  # slot ids are their start, unix seconds
            # [rule, current, desired, [metric values]]: a steady evaluation, logged compactly.
            _, current, desired, values = record["rules"][0]
            row = TickRow(
                elapsed=slot_start - started,
                demand=traffic.demand_at(slot_start),
                value=values[0] if values else None,
                target=traffic.scenario.target,
                ready=len(stack.kube.ready_pods(NAMESPACE)),
                current=int(current),
                desired=int(desired),
                reason="steady (compact entry in the slot's tick line)",
                patched=False,
                demand_unit=traffic.scenario.demand_unit,
                percent=traffic.scenario.percent,
            )
            result.compact += 1
        else:
            continue
        result.ticks.append(row)
        rows.append(row)
    return rows


def _json_line(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


# ------------------------------------------------------------------------------------ afterwards


def replay(decisions: Sequence[dict[str, Any]], out: Path) -> tuple[int, list[str]]:
    """Replay every decision's ``input`` through the decide contract; one also through the CLI.

    Returns
    -------
    tuple[int, list[str]]
        How many replayed byte-for-byte, and a message for each that did not.
    """
    failures: list[str] = []
    same = 0
    for record in decisions:
        replayed = contract.dumps(contract.decide_document(record["input"]))
        if replayed == contract.dumps(record["output"]):
            same += 1
        else:
            failures.append(f"slot {record.get('slot')}: replay differs from the logged output")
    # The same check through the command a user would run, for the most interesting decision.
    if decisions:
        sample = next((d for d in decisions if d.get("patched")), decisions[0])
        path = out / "replay-input.json"
        path.write_text(json.dumps(sample["input"], indent=2) + "\n", encoding="utf-8")
        completed = subprocess.run(
            [sys.executable, "-m", "ampscaler.cli.main", "decide", "--input", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if completed.returncode != 0 or completed.stdout.strip() != contract.dumps(sample["output"]):
            failures.append(
                f"`ampscaler decide --input {path}` exited {completed.returncode} with output that differs "
                f"from the logged decision: {completed.stdout.strip()[:200]} {completed.stderr.strip()[:200]}"
            )
    return same, failures


def summarize(result: DemoResult) -> list[str]:
    """The closing summary lines: peak replicas, scale events, time above target, replica-seconds."""
    traffic = result.traffic
    ticks = result.ticks
    per_pod_target = result.scenario.per_pod_target
    unit = result.scenario.demand_unit
    peak = max([t.replicas for t in traffic] + [t.desired for t in ticks] or [MIN_REPLICAS])
    ups = sum(1 for t in ticks if t.patched and t.desired > t.current)
    downs = sum(1 for t in ticks if t.patched and t.desired < t.current)
    above = 0.0
    replica_seconds = 0.0
    for before, after in itertools.pairwise(traffic):
        dt = after.elapsed - before.elapsed
        replica_seconds += before.replicas * dt
        if before.ready == 0 or before.demand / before.ready > per_pod_target:
            above += dt
    span = traffic[-1].elapsed - traffic[0].elapsed if len(traffic) > 1 else 0.0
    return [
        f"peak replicas       {peak} (min {MIN_REPLICAS}, max {MAX_REPLICAS})",
        f"scale events        {ups + downs} ({ups} up, {downs} down) in {len(ticks)} ticks",
        f"time above target   {above:.0f} s of {span:.0f} s (per-pod load above {per_pod_target:g} {unit})",
        f"replica-seconds     {replica_seconds:.0f} (provisioned for the peak: {peak * span:.0f})",
    ]


def plot(result: DemoResult, path: Path) -> None:
    """Write the three-panel figure: demand, per-pod value vs target, replicas."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traffic, ticks = result.traffic, result.ticks
    fig, (ax_demand, ax_value, ax_replicas) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    ax_demand.plot([t.elapsed for t in traffic], [t.demand for t in traffic], color="tab:blue")
    scenario = result.scenario
    unit = scenario.demand_unit
    ax_demand.set_ylabel(f"demand ({unit})")
    if scenario.percent:
        ax_demand.set_title(f"ampscaler demo: CPU utilization of requests, target {scenario.target:g}%")
    else:
        ax_demand.set_title("ampscaler demo: requests per second per pod, target 10")
    # The value the scaler sees, in the plot's per-pod unit (utilization back to cores per pod).
    to_unit = CPU_REQUEST_CORES / 100 if scenario.percent else 1.0

    ax_value.plot(
        [t.elapsed for t in traffic],
        [t.demand / t.ready if t.ready else float("nan") for t in traffic],
        color="tab:gray",
        alpha=0.6,
        label="actual load per ready pod",
    )
    measured = [t for t in ticks if t.value is not None]
    ax_value.step(
        [t.elapsed for t in measured],
        [t.value * to_unit for t in measured if t.value is not None],
        where="post",
        color="tab:orange",
        marker="o",
        markersize=3,
        label="per-pod value seen by the scaler",
    )
    ax_value.axhline(scenario.per_pod_target, color="tab:red", linestyle="--", label="target")
    ax_value.set_ylabel(f"{unit} per pod")
    ax_value.legend(loc="upper right", fontsize="small")

    ax_replicas.step(
        [t.elapsed for t in traffic], [t.replicas for t in traffic], where="post", label="replicas (spec)"
    )
    ax_replicas.step(
        [t.elapsed for t in traffic],
        [t.ready for t in traffic],
        where="post",
        linestyle=":",
        label="ready pods",
    )
    scaled = [t for t in ticks if t.patched]
    ax_replicas.scatter(
        [t.elapsed for t in scaled],
        [t.desired for t in scaled],
        color="tab:red",
        zorder=3,
        label="scale event",
    )
    ax_replicas.set_ylabel("pods")
    ax_replicas.set_xlabel("seconds since traffic started")
    ax_replicas.set_ylim(0, MAX_REPLICAS + 0.5)
    ax_replicas.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------------ CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.demo",
        description="Run the ampscaler scaler function locally against a traffic burst.",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_SECONDS,
        help=f"seconds of traffic; the scenario scales with it (default {DEFAULT_DURATION_SECONDS:g})",
    )
    parser.add_argument(
        "--interval",
        type=int,
        default=DEFAULT_INTERVAL_SECONDS,
        help=f"evaluation interval in seconds (default {DEFAULT_INTERVAL_SECONDS}; Lambda's default is 15)",
    )
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default="rps",
        help="rps: a Pods metric of requests per second (default); cpu: a CPU Resource rule on cAdvisor series",
    )
    parser.add_argument("--out", default="demo-output", help="output directory (default demo-output)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary, not a line per tick")
    args = parser.parse_args(argv)
    if args.duration < 20:
        parser.error("--duration must be at least 20 seconds")
    if args.interval < 1:
        parser.error("--interval must be at least 1 second")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns 0, 1 on a failure, or 128 + signal number when interrupted."""
    args = parse_args(argv)
    term = Terminal(sys.stdout, args.quiet)
    out = Path(args.out)
    begun = time.time()
    stack = LocalStack(ready_delay_seconds=READY_DELAY_SECONDS)
    result: DemoResult | None = None
    try:
        with stop_on_signals():
            try:
                term.say("starting Prometheus (+ AMP SigV4 proxy), moto server and the cluster simulator ...")
                stack.start()
                term.say(
                    f"  prometheus {stack.prometheus.url}  moto {stack.moto.endpoint_url}  "
                    f"kubernetes {stack.kube.url}"
                )
                result = run_demo(stack, args, term)
            finally:
                # Stopping must finish even if the user presses Ctrl-C again.
                with signals_ignored():
                    stack.close()
            term.say("\nstopped Prometheus, moto and the cluster simulator")
            return finish(result, out, term, begun)
    except Interrupted as exc:
        term.say(f"\ninterrupted ({exc}); everything the demo started is stopped")
        return 128 + exc.signum


def finish(result: DemoResult, out: Path, term: Terminal, begun: float) -> int:
    """Summary, figure and replay; returns the exit status."""
    term.say("\nsummary")
    for line in summarize(result):
        term.say(f"  {line}")
    plot(result, out / "demo.png")
    term.say(f"  figure              {out / 'demo.png'}")
    term.say(f"  decision log        {out / 'decisions.jsonl'} ({len(result.decisions)} records)")
    term.say(
        f"  invocations         {result.invocations} (one per slot); {result.compact} steady evaluations "
        "logged as compact entries, nothing written for them"
    )
    same, failures = replay(result.decisions, out)
    for failure in failures:
        term.say(f"  REPLAY MISMATCH: {failure}")
    term.say(
        f"{same} decisions replayed byte-for-byte "
        f"(all through the decide contract, one through `ampscaler decide --input {out / 'replay-input.json'}`)"
    )
    term.say(f"done in {time.time() - begun:.0f} s")
    if failures or not result.decisions:
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
