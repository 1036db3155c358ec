"""Tick latency for 1, 10, 100 and 1,000 rules against the local components, vs a raw-request floor.

Each rule has its own Deployment in the Kubernetes API simulator and its own per-pod series in
Prometheus (a Pods metric, target 10 per pod). Every tenth rule sees 30 per pod, so its tick
scales 2 -> 6 (the Deployment is put back to 2 replicas between ticks); the others are on target.

The tick runs ``Ticker.run_slot`` exactly as the scaler function does (the production adapters
from ``ampscaler.runtime.build_runtime``, ``settings.max_concurrency`` workers, decision records
and EMF written to a log file) in its own process. The floor runs in another process: a minimal
client (requests + a ThreadPoolExecutor of the same size) issuing, per rule, the same requests the
tick made: the shard's fence UpdateItem once (same condition), per rule GET /scale, the pods list and the
SigV4-signed AMP query POST, and where the tick patched, the PATCH, its Event and the fenced state
transaction (steady rules write nothing, in the tick as in the floor). Ticks and
floor runs are interleaved and the medians compared. Both processes are clients of the same
servers (Prometheus, the SigV4 proxy, moto, the simulator), which run in the parent process and
their own processes.

Run alone: ``.venv/bin/python -m bench.tick [--quick] [--rules 1,10,100]`` (prints JSON lines).
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import resource
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import REPO, Figure, RunContext, log, median, standalone_main

if TYPE_CHECKING:
    from devstack.stack import LocalStack

NAMESPACE = "bench"
METRIC = "bench_rps"
TARGET_PER_POD = 10.0
HOT_PER_POD = 30.0
START_REPLICAS = 2
OUT = REPO / "bench" / "out"


def deployment_name(i: int) -> str:
    """Name of the i-th benchmark Deployment."""
    return f"app-{i:04d}"


def patches(i: int) -> bool:
    """Whether rule i's tick scales (one rule in ten: 2 -> 6 replicas)."""
    return i % 10 == 5


def rule_document(deployment: str) -> dict[str, Any]:
    """The rule of one Deployment: rps per pod from Prometheus, target 10, 2..10 replicas.

    The scale-up policy period is 1 s so that the same rule can scale again in the next measured
    tick (after the Deployment was put back to 2): the benchmark times ticks, not rate limits.
    """
    return {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "local", "namespace": NAMESPACE, "kind": "Deployment", "name": deployment},
        "minReplicas": START_REPLICAS,
        "maxReplicas": 10,
        "metrics": [
            {
                "name": "rps",
                "type": "Pods",
                "query": f'sum by (pod) ({METRIC}{{namespace="{NAMESPACE}",deployment="{deployment}"}})',
                "podLabel": "pod",
                "target": {"type": "AverageValue", "averageValue": TARGET_PER_POD},
            }
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "Percent", "value": 900, "periodSeconds": 1}],
            }
        },
    }


@dataclass(frozen=True)
class RulePlan:
    """What the floor client does for one rule."""

    rule: str
    deployment: str
    query: str
    patch: bool


@dataclass
class Fleet:
    """Deployments, pods, series and rule sets (one SSM prefix per rule count) in a LocalStack."""

    stack: LocalStack
    pods: dict[int, list[str]] = field(default_factory=dict)
    prefixes: dict[int, str] = field(default_factory=dict)

    def prepare(self, n: int) -> str:
        """Ensure Deployments 0..n-1 and a rule set of n rules exist; returns its SSM prefix."""
        kube = self.stack.kube
        for i in range(len(self.pods), n):
            name = deployment_name(i)
            kube.add_deployment(NAMESPACE, name, replicas=START_REPLICAS, labels={"app": name})
            self.pods[i] = kube.ready_pods(NAMESPACE, f"app={name}")
        if n not in self.prefixes:
            prefix = f"/ampscaler/bench{n}/"
            ssm = self.stack.client("ssm")
            for i in range(n):
                ssm.put_parameter(
                    Name=f"{prefix}n{n}-{deployment_name(i)}",
                    Value=json.dumps(rule_document(deployment_name(i))),
                    Type="String",
                    Overwrite=True,
                )
            self.prefixes[n] = prefix
        self.write_samples(n)
        return self.prefixes[n]

    def write_samples(self, n: int, hot: bool = True) -> None:
        """Write the current per-pod value of Deployments 0..n-1 (refreshes the lookback window).

        With ``hot`` every tenth Deployment is above target (its rule scales); without, all are on
        target (every rule steady).
        """
        now = time.time()
        series = []
        for i in range(n):
            value = HOT_PER_POD if hot and patches(i) else TARGET_PER_POD
            for pod in self.pods[i]:
                labels = {
                    "__name__": METRIC,
                    "namespace": NAMESPACE,
                    "deployment": deployment_name(i),
                    "pod": pod,
                }
                series.append((labels, [(now, value)]))
        for start in range(0, len(series), 500):
            self.stack.write_samples(series[start : start + 500])

    def reset(self, n: int) -> None:
        """Put every scaling Deployment of 0..n-1 back to 2 replicas (the first two pods remain)."""
        for i in range(n):
            if (
                patches(i)
                and self.stack.kube.scale("deployments", NAMESPACE, deployment_name(i))["spec"]["replicas"]
                != START_REPLICAS
            ):
                self.stack.kube.set_replicas("deployments", NAMESPACE, deployment_name(i), START_REPLICAS)

    def plan(self, n: int, patched: set[str]) -> list[RulePlan]:
        """The floor's per-rule requests, patching exactly the Deployments the tick patched."""
        return [
            RulePlan(
                rule=f"floor/n{n}-{deployment_name(i)}",
                deployment=deployment_name(i),
                query=rule_document(deployment_name(i))["metrics"][0]["query"],
                patch=deployment_name(i) in patched,
            )
            for i in range(n)
        ]

    def env(self, prefix: str, **overrides: str) -> dict[str, str]:
        """The scaler function's environment for one rule set."""
        return self.stack.env(RULE_PREFIX=prefix, **overrides)


def patched_deployments(stack: LocalStack) -> tuple[set[str], int]:
    """Deployments PATCHed (200) since the request log was last cleared, and the request count."""
    requests = stack.kube.requests
    stack.kube.clear_requests()
    names = {
        r.path.rsplit("/", 2)[-2]
        for r in requests
        if r.method == "PATCH" and r.path.endswith("/scale") and r.status == 200
    }
    return names, len(requests)


# -- worker processes ----------------------------------------------------------------------------


def _apply_env(env: Mapping[str, str]) -> None:
    from devstack.moto import CONFLICTING_ENV

    for name in CONFLICTING_ENV:
        os.environ.pop(name, None)
    os.environ.update(env)


def _redirect_stdout(path: str) -> None:
    # Decision records and EMF go to stdout in Lambda; here to a file whose bytes are counted.
    sys.stdout.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.close(fd)


def _cpu_seconds() -> float:
    """CPU time (user + system) this process has used, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _max_rss_bytes() -> int:
    """This process's resident-set high-water mark in bytes.

    VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a spawned worker would report
    its (much larger) parent's peak; VmHWM belongs to the new address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def ticker_worker(conn: multiprocessing.connection.Connection, env: dict[str, str], log_path: str) -> None:
    """A scaler process: production runtime, one Ticker, ticks on command."""
    _apply_env(env)
    _redirect_stdout(log_path)
    from aws_lambda_powertools import Logger

    from ampscaler.runtime import build_runtime
    from ampscaler.schedule import Slot
    from ampscaler.tick import Ticker

    runtime = build_runtime(Logger(service="ampscaler"))
    ticker = Ticker(runtime.ports, runtime.settings, owner=f"bench-{uuid.uuid4()}")
    conn.send({"ready": True, "max_concurrency": runtime.settings.max_concurrency})
    while True:
        command, arg = conn.recv()
        if command == "tick":
            # One-second slots on the wall clock, so the engine's now is the current second.
            slot = Slot(runtime.settings.shard_index, int(arg["slot"]), 1)
            cpu_before = _cpu_seconds()
            now = time.time()
            result = ticker.run_slot(slot, now + float(arg.get("deadline_seconds", 600)))
            ended = time.time()
            runtime.audit.tick_finished(result.summary(), result.duration_seconds, ran=result.dropped is None)
            runtime.audit.flush()
            sys.stdout.flush()
            errors = [o.message for o in result.outcomes if o.status == "error"]
            if result.dropped:
                errors.append(f"slot dropped: {result.message}")
            conn.send(
                {
                    "duration": result.duration_seconds,
                    "cpu": _cpu_seconds() - cpu_before,
                    "started": now,
                    "ended": ended,
                    "evaluated": result.evaluated,
                    "errors": len(errors),
                    "error_samples": errors[:3],
                    "skipped": sum(1 for o in result.outcomes if o.status == "skipped"),
                    "patched": sum(1 for o in result.outcomes if o.patched),
                }
            )
        elif command == "rss":
            conn.send(_max_rss_bytes())
        elif command == "profile":
            import cProfile
            import pstats

            # One rule after another on this thread: cProfile sees only the thread that enabled
            # it, and the tick's own path per rule is what differs from the floor.
            profiler = cProfile.Profile()
            slot = Slot(runtime.settings.shard_index, int(arg["slot"]), 1)
            now = time.time()
            fence = runtime.ports.state.take_fence(slot.shard, slot.id, slot.end, "bench-profile", now)
            loaded = [lr for lr in runtime.ports.rules.load_rules() if lr.rule is not None]
            states = runtime.ports.state.load([lr.name for lr in loaded], fence)
            profiler.enable()
            for lr in loaded:
                ticker.evaluate(lr, states.get(lr.name), slot, fence, now + 600)
            profiler.disable()
            out = io_string()
            stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
            stats.print_stats(40)
            tottime = io_string()
            pstats.Stats(profiler, stream=tottime).sort_stats("tottime").print_stats(25)
            conn.send({"cumulative": out.getvalue(), "tottime": tottime.getvalue()})
        elif command == "stop":
            ticker.close()
            conn.send(None)
            return


def io_string() -> Any:
    """A StringIO (imported lazily in the worker)."""
    import io

    return io.StringIO()


def floor_worker(conn: multiprocessing.connection.Connection, env: dict[str, str]) -> None:
    """The minimal client: requests + a thread pool issuing the tick's requests, rule by rule."""
    _apply_env(env)
    import boto3
    import requests
    from requests.adapters import HTTPAdapter
    from requests_aws4auth import AWS4Auth

    from ampscaler.adapters.eks_token import EksTokenProvider
    from ampscaler.settings import Settings

    settings = Settings.from_env(env)
    region = env["AWS_DEFAULT_REGION"] if "AWS_DEFAULT_REGION" in env else env["AWS_REGION"]
    workers = settings.max_concurrency
    http = requests.Session()
    http.mount("https://", HTTPAdapter(pool_maxsize=workers))
    http.mount("http://", HTTPAdapter(pool_maxsize=workers))
    dynamodb = boto3.session.Session().client("dynamodb")
    auth = AWS4Auth(
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AMP_REGION"], "aps",
        session_token=env.get("AWS_SESSION_TOKEN"),
    )  # fmt: skip
    endpoints = json.loads(env["CLUSTER_ENDPOINTS"])
    cluster = env["CLUSTER_NAME"]
    kube_url = endpoints[cluster]["endpoint"]
    ca_file = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bench-ca-{os.getpid()}.pem")
    import base64

    Path(ca_file).write_bytes(base64.b64decode(endpoints[cluster]["caData"]))
    amp_url = f"{env['AMP_ENDPOINT_URL']}/workspaces/{env['AMP_WORKSPACE_ID']}/api/v1/query"
    table = settings.state_table
    tokens = EksTokenProvider(region)
    pool = ThreadPoolExecutor(max_workers=workers)
    conn.send({"ready": True})

    # The same DynamoDB calls as the state store: the shard fence once per slot, and a fenced
    # transaction writing a rule's item (< 1 KB) where the slot scaled it; steady rules write nothing.
    from ampscaler.adapters.state_dynamodb import (
        FENCE_HELD_CONDITION,
        RULE_WRITE_CONDITION,
        TAKE_FENCE_CONDITION,
    )

    fence_key = "#fence/shard-floor"
    engine_blob, decision_blob = "e" * 150, "d" * 500

    def take_fence(slot: str, now: float) -> None:
        dynamodb.update_item(
            TableName=table, Key={"rule": {"S": fence_key}},
            UpdateExpression="SET fence_slot = :slot, fence_until = :until, fence_owner = :owner, "
            "write_seq = if_not_exists(write_seq, :zero)",
            ConditionExpression=TAKE_FENCE_CONDITION,
            ExpressionAttributeValues={
                ":slot": {"S": slot}, ":until": {"N": str(int(now) + 1)}, ":now": {"N": str(now)},
                ":owner": {"S": "floor"}, ":zero": {"N": "0"},
            },
            ReturnValues="ALL_OLD", ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )  # fmt: skip

    def one_rule(plan: RulePlan, token: str, now: float, slot: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        base = f"{kube_url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{plan.deployment}/scale"
        scale = http.get(base, headers=headers, verify=ca_file, timeout=10).json()
        http.get(
            f"{kube_url}/api/v1/namespaces/{NAMESPACE}/pods",
            params={"labelSelector": scale["status"]["selector"], "limit": "500"},
            headers=headers, verify=ca_file, timeout=10,
        ).json()  # fmt: skip
        http.post(
            amp_url, data={"query": plan.query, "time": f"{now:.3f}", "stats": "all"}, auth=auth, timeout=10
        ).json()
        if not plan.patch:
            return
        body = {
            "metadata": {"resourceVersion": scale["metadata"]["resourceVersion"]},
            "spec": {"replicas": 6},
        }
        http.patch(
            base, data=json.dumps(body), verify=ca_file, timeout=10,
            headers={**headers, "Content-Type": "application/strategic-merge-patch+json"},
        ).json()  # fmt: skip
        event = {
            "metadata": {"name": f"{plan.deployment}.{time.time_ns():x}", "namespace": NAMESPACE},
            "involvedObject": {"kind": "Deployment", "name": plan.deployment, "namespace": NAMESPACE},
            "reason": "SuccessfulRescale", "message": "New size: 6", "type": "Normal",
        }  # fmt: skip
        http.post(
            f"{kube_url}/api/v1/namespaces/{NAMESPACE}/events", json=event, headers=headers, verify=ca_file,
            timeout=10,
        )  # fmt: skip
        dynamodb.transact_write_items(
            TransactItems=[
                {"Update": {
                    "TableName": table, "Key": {"rule": {"S": fence_key}}, "UpdateExpression": "ADD write_seq :one",
                    "ConditionExpression": FENCE_HELD_CONDITION,
                    "ExpressionAttributeValues": {":slot": {"S": slot}, ":one": {"N": "1"}},
                }},
                {"Put": {
                    "TableName": table,
                    "Item": {
                        "rule": {"S": plan.rule}, "state_slot": {"S": slot}, "engine": {"S": engine_blob},
                        "last_decision": {"S": decision_blob}, "expires_at": {"N": str(int(now) + 604800)},
                    },
                    "ConditionExpression": RULE_WRITE_CONDITION,
                    "ExpressionAttributeValues": {":slot": {"S": slot}},
                }},
            ]
        )  # fmt: skip

    while True:
        command, arg = conn.recv()
        if command == "run":
            plans = [RulePlan(**p) for p in arg["plans"]]
            slot = slot_id_str(arg["slot"])
            token = tokens.token(cluster)
            now = time.time()
            started = time.perf_counter()
            take_fence(slot, now)
            # Same shape as the tick: every rule submitted at once to a pool of max_concurrency.
            list(pool.map(one_rule, plans, [token] * len(plans), [now] * len(plans), [slot] * len(plans)))
            conn.send({"duration": time.perf_counter() - started})
        elif command == "rss":
            conn.send(_max_rss_bytes())
        elif command == "stop":
            pool.shutdown()
            conn.send(None)
            return


def slot_id_str(start_seconds: int) -> str:
    """``ampscaler.schedule.slot_id`` (imported lazily in the worker)."""
    from ampscaler.schedule import slot_id

    return slot_id(start_seconds)


class Worker:
    """A spawned worker process driven over a Pipe."""

    def __init__(self, target: Any, *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        child.close()
        self.hello: dict[str, Any] = self.recv(120)

    def recv(self, timeout: float = 900) -> Any:
        """The worker's next answer (raises if it died or stayed silent)."""
        if not self.conn.poll(timeout):
            raise RuntimeError(f"benchmark worker {self.process.pid} did not answer within {timeout:.0f} s")
        return self.conn.recv()

    def send(self, command: str, arg: Any = None) -> None:
        """Send one command."""
        self.conn.send((command, arg))

    def call(self, command: str, arg: Any = None) -> Any:
        """Send one command and wait for its answer."""
        self.send(command, arg)
        return self.recv()

    def stop(self) -> None:
        """Ask the worker to exit, and make sure it did."""
        try:
            if self.process.is_alive():
                self.call("stop")
        except (OSError, EOFError, RuntimeError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


_slot_lock = threading.Lock()
_last_slot = 0


def next_slot() -> int:
    """A one-second slot later than any used before: waits for the next second when needed.

    A slot's fence is held until its second is over, so the next tick waits for that.
    """
    global _last_slot
    with _slot_lock:
        while int(time.time()) <= _last_slot:
            time.sleep(0.02)
        _last_slot = int(time.time())
        return _last_slot


@dataclass
class TickMeasurement:
    """Medians and raw samples for one rule count."""

    rules: int
    ticks: list[float]
    floors: list[float]
    patched: int
    requests_per_tick: int
    tick_rss_bytes: int
    floor_rss_bytes: int
    errors: int
    samples_processed: int
    log_stats: dict[str, Any]

    @property
    def tick_median(self) -> float:
        """Median tick duration (s)."""
        return median(self.ticks)

    @property
    def floor_median(self) -> float:
        """Median floor duration (s)."""
        return median(self.floors)


def log_stats(path: Path, evaluations: int) -> dict[str, Any]:
    """Bytes of decision records and EMF blobs per evaluation, and CloudWatch metrics per rule."""
    decision_bytes = emf_bytes = other_bytes = decisions = 0
    per_rule: dict[str, set[tuple[str, tuple[tuple[str, str], ...]]]] = {}
    function_level: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    with path.open("rb") as fh:
        for raw in fh:
            size = len(raw)
            try:
                doc = json.loads(raw)
            except ValueError:
                other_bytes += size
                continue
            if isinstance(doc, dict) and doc.get("event") == "decision":
                decision_bytes += size
                decisions += 1
            elif isinstance(doc, dict) and "_aws" in doc:
                emf_bytes += size
                directive = doc["_aws"]["CloudWatchMetrics"][0]
                dims = tuple(sorted((d, str(doc[d])) for d in directive["Dimensions"][0]))
                rule = dict(dims).get("Rule")
                for metric in directive["Metrics"]:
                    key = (metric["Name"], dims)
                    if rule is None:
                        function_level.add(key)
                    else:
                        per_rule.setdefault(rule, set()).add(key)
            else:
                other_bytes += size
    rules = max(1, len(per_rule))
    return {
        "decisions": decisions,
        "decision_bytes_per_record": decision_bytes / max(1, decisions),
        "emf_bytes_per_evaluation": emf_bytes / max(1, evaluations),
        "other_bytes": other_bytes,
        "metrics_per_rule": sum(len(v) for v in per_rule.values()) / rules,
        "function_level_metrics": len(function_level),
    }


def measure(fleet: Fleet, n: int, repeats: int, profile: bool = False) -> TickMeasurement:
    """Interleave ``repeats`` ticks and floor runs over ``n`` rules after one warm-up of each."""
    stack = fleet.stack
    prefix = fleet.prepare(n)
    env = fleet.env(prefix)
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / f"tick-{n}.log"
    ticker = Worker(ticker_worker, env, str(log_path))
    floor = Worker(floor_worker, env)
    try:
        ticks: list[float] = []
        floors: list[float] = []
        patched_count = requests_count = errors = samples = 0
        evaluations = 0
        last_tick = 0.0
        for k in range(repeats + 1):  # k == 0 is the warm-up (rule load, clients, tokens, connections)
            fleet.reset(n)
            fleet.write_samples(n)
            stack.kube.clear_requests()
            # The rules' scale-up policy period is 1 s: let it pass since the previous tick.
            time.sleep(max(0.0, last_tick + 1.1 - time.time()))
            result = ticker.call("tick", {"slot": next_slot()})
            last_tick = time.time()
            patched, n_requests = patched_deployments(stack)
            if result["errors"] or result["evaluated"] != n:
                log(
                    f"tick {n} rules: {result['evaluated']} evaluated, {result['errors']} errors {result['error_samples']}"
                )
            evaluations += result["evaluated"]
            fleet.reset(n)
            floor_result = floor.call(
                "run", {"plans": [vars(p) for p in fleet.plan(n, patched)], "slot": next_slot()}
            )
            stack.kube.clear_requests()
            if k == 0:
                continue
            ticks.append(result["duration"])
            floors.append(floor_result["duration"])
            patched_count, requests_count = len(patched), n_requests
            errors += result["errors"]
            samples = int(result.get("samples_processed", 0))
        if profile:
            fleet.reset(n)
            time.sleep(1.1)
            prof = ticker.call("profile", {"slot": next_slot()})
            (OUT / f"tick-{n}.profile.txt").write_text(prof["tottime"] + "\n\n" + prof["cumulative"])
        tick_rss = ticker.call("rss")
        floor_rss = floor.call("rss")
    finally:
        ticker.stop()
        floor.stop()
        fleet.reset(n)
    return TickMeasurement(
        rules=n,
        ticks=ticks,
        floors=floors,
        patched=patched_count,
        requests_per_tick=requests_count,
        tick_rss_bytes=tick_rss,
        floor_rss_bytes=floor_rss,
        errors=errors,
        samples_processed=samples,
        log_stats=log_stats(log_path, evaluations),
    )


def state_item_bytes(stack: LocalStack, rule: str) -> int:
    """Approximate DynamoDB item size of one rule's state (attribute names + values, as billed)."""
    item = (
        stack.client("dynamodb")
        .get_item(TableName="ampscaler-state", Key={"rule": {"S": rule}})
        .get("Item", {})
    )
    size = 0
    for name, value in item.items():
        (kind, raw), *_ = value.items()
        size += len(name.encode()) + (len(str(raw).encode()) if kind in ("S", "N") else len(json.dumps(raw)))
    return size


def repeats_for(n: int, quick: bool) -> int:
    """Measured ticks per rule count: more for the fast small ticks, fewer for 1,000 rules."""
    if quick:
        return 3 if n <= 10 else 2
    return {1: 15, 10: 10, 100: 7}.get(n, 3)


def run(ctx: RunContext) -> list[Figure]:
    """The tick figures (1/10/100/1,000 rules; 1 and 10 in quick mode) and the 1,000-rule memory."""
    counts = [1, 10, 100] if ctx.quick else [1, 10, 100, 1000]
    fleet = fleet_of(ctx)
    figures: list[Figure] = []
    results: dict[int, TickMeasurement] = {}
    for n in counts:
        log(f"tick: {n} rules")
        m = measure(fleet, n, repeats_for(n, ctx.quick), profile=(n == 100))
        results[n] = m
        log(
            f"tick: {n} rules median {m.tick_median * 1000:.0f} ms vs floor {m.floor_median * 1000:.0f} ms "
            f"({m.tick_median / m.floor_median:.2f}x), patched {m.patched}, errors {m.errors}"
        )
        target = "≤ 1.5x floor" if n == 100 else ""
        if target:
            target += " met" if m.tick_median / m.floor_median <= 1.5 else " MISSED"
        figures.append(
            ctx.figure(
                key=f"tick.rules_{n}",
                figure=f"Tick, {n:,} rule{'s' if n > 1 else ''} ({m.patched} patched)",
                value=m.tick_median,
                unit="s",
                baseline=m.floor_median,
                baseline_label="raw-request floor",
                how=(
                    f"`Ticker.run_slot`, production adapters, {len(m.ticks)} slots, median; floor: the same "
                    f"{m.requests_per_tick} kube requests + {n} AMP queries + the fence write and one "
                    f"transaction per patched rule ({m.patched}) via requests/boto3 on a pool of the same "
                    "size, interleaved"
                ),
                target=target,
            )
        )
    largest = results[counts[-1]]
    figures.append(
        ctx.figure(
            key=f"tick.memory_{largest.rules}",
            figure=f"Memory high-water mark, {largest.rules:,} rules",
            value=float(largest.tick_rss_bytes),
            unit="B",
            baseline=float(largest.floor_rss_bytes),
            baseline_label="the floor client's process",
            how=(
                "resident high-water mark (VmHWM; ru_maxrss would carry the parent's across exec) of the "
                "scaler process after its ticks (Lambda memory: 256 MB); baseline: the floor process "
                "(python + requests + boto3) after the same rules"
            ),
        )
    )
    ctx.facts["tick"] = {
        str(n): {
            "ticks_s": m.ticks,
            "floors_s": m.floors,
            "patched": m.patched,
            "requests_per_tick": m.requests_per_tick,
            "tick_rss_bytes": m.tick_rss_bytes,
            "floor_rss_bytes": m.floor_rss_bytes,
            "errors": m.errors,
            "samples_processed": m.samples_processed,
            "log": m.log_stats,
        }
        for n, m in results.items()
    }
    ctx.facts["cost_inputs"] = cost_inputs(ctx, fleet, results)
    profile = OUT / "tick-100.profile.txt"
    if profile.exists():
        rows = top_hotspots(profile.read_text())
        ctx.facts["tick_profile_100"] = rows
        ctx.sections["Tick profile, 100 rules (cProfile of the per-rule path in the scaler process)"] = (
            "Each rule's evaluation (lease, reads, query, decide, patch, audit, save) run one after another on "
            "one thread; top functions by own time (full listing in bench/out/tick-100.profile.txt):\n\n"
            "```\nncalls tottime percall cumtime percall filename:lineno(function)\n"
            + "\n".join(rows)
            + "\n```"
        )
    return figures


def fleet_of(ctx: RunContext) -> Fleet:
    """The run's Fleet (shared by tick, sharding and the cost inputs)."""
    fleet = ctx.shared.get("fleet")
    if not isinstance(fleet, Fleet):
        fleet = Fleet(ctx.stack())
        ctx.shared["fleet"] = fleet
    return fleet


def top_hotspots(profile_text: str, limit: int = 12) -> list[str]:
    """The top rows (by own time) of a pstats 'tottime' listing."""
    rows: list[str] = []
    started = False
    for line in profile_text.splitlines():
        if line.strip().startswith("ncalls"):
            if started:
                break
            started = True
            continue
        if started and line.strip():
            rows.append(" ".join(line.split()))
        if len(rows) >= limit:
            break
    return rows


def cost_inputs(
    ctx: RunContext, fleet: Fleet, results: Mapping[int, TickMeasurement] | None = None
) -> dict[str, Any]:
    """What the cost estimate needs, measured here: tick durations, log bytes, item size, samples."""
    results = dict(results or {})
    if 10 not in results:
        results[10] = measure(fleet, 10, 2)
    stats = results[10].log_stats
    item = state_item_bytes(fleet.stack, f"n10-{deployment_name(5)}")
    return {
        "tick_seconds": {str(n): m.tick_median for n, m in results.items()},
        "decision_bytes_per_record": stats["decision_bytes_per_record"],
        "emf_bytes_per_evaluation": stats["emf_bytes_per_evaluation"],
        "metrics_per_rule": stats["metrics_per_rule"],
        "function_level_metrics": stats["function_level_metrics"],
        "state_item_bytes": item,
        "samples_per_query": realistic_samples_per_query(fleet.stack),
    }


def realistic_samples_per_query(stack: LocalStack, pods: int = 3) -> int:
    """QuerySamplesProcessed (``stats=all``) of a typical rule query: rate() over 2m of per-pod counters.

    Ten minutes of a per-pod ``http_requests_total`` scraped every 15 s are written, then the query
    ``sum by (pod) (rate(...[2m]))`` is run through the production AMP adapter at now.
    """
    from ampscaler.adapters.amp import AmpMetricsSource
    from ampscaler.rule import parse_rule

    now = time.time()
    series = []
    for p in range(pods):
        points = [(now - 600 + k * 15, float(k * 150)) for k in range(41)]
        series.append(
            ({"__name__": "bench_cost_requests_total", "deployment": "cost", "pod": f"cost-{p}"}, points)
        )
    stack.write_samples(series)
    doc = rule_document("cost")
    doc["metrics"][0]["query"] = 'sum by (pod) (rate(bench_cost_requests_total{deployment="cost"}[2m]))'
    rule = parse_rule(doc, name="cost")
    env = stack.env()
    source = AmpMetricsSource(
        workspace_id=env["AMP_WORKSPACE_ID"],
        region=env["AMP_REGION"],
        endpoint_url=env["AMP_ENDPOINT_URL"],
        session=stack.boto3_session(),
    )
    outcome = source.observe_with_stats(rule, rule.metrics[0], now, now + 10)
    return int(outcome.stats.samples_processed or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tick benchmark alone and print its figures as JSON lines."""
    return standalone_main(run, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
