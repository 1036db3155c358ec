"""The function's memory size from measured slots, and the monthly bill from counters measured in a run.

**Memory size.** Lambda gives a function CPU in proportion to its memory (1,769 MB is one vCPU).
The scaler process of ``bench.tick`` (the production adapters, one ``Ticker``) is put in a cgroup
whose CPU quota is that share at 128, 256 and 512 MB, and runs slots of 10 and 100 steady rules
(and 1,000 outside quick mode, at 512 MB): the slot time is what an invocation is billed for.
Where the cgroup cannot be created (no root), the slot time is modelled from the unthrottled wall
and CPU time, and the figure says so.

**The bill.** The real handler (``functions/scaler/app.py``) runs as Lambda runs it: a schedule
firing every four slots, the later slots as delayed messages on the slot queue (moto), each
delivered by a poller as an SQS event, one invocation per slot, in a worker process under the
chosen memory's CPU quota. First every rule is on target (steady), then one rule in ten scales in
every slot. The counters (invocations, billed ms, DynamoDB write and read units, log bytes by kind,
custom metrics, queue messages) are read from the function's own objects and its stdout, and the
month is computed from them at the defaults: 15 s slots, a 60 s schedule, one shard, 730 hours.

Run alone: ``.venv/bin/python -m bench.cost [--quick]``.
"""

from __future__ import annotations

import json
import math
import multiprocessing.connection
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Figure, RunContext, log, median, standalone_main
from bench.tick import OUT, Fleet, Worker, fleet_of, next_slot, ticker_worker

LAMBDA_MB_PER_VCPU = 1769
MEMORY_SIZES = (128, 256, 512)
CHOSEN_MB = 256
SLOT_SECONDS = 15
SCHEDULE_SECONDS = 60
HOURS_PER_MONTH = 730.0
SLOTS_PER_MONTH = HOURS_PER_MONTH * 3600 / SLOT_SECONDS
# The Lambda service's own START/END/REPORT lines per invocation (platform logs, not ours): an
# estimate from their documented format, ~330 bytes together.
PLATFORM_LOG_BYTES = 330
# The SQS event source's idle long polls: AWS publishes no count; ~5 pollers x 3 a minute.
IDLE_POLLS_PER_MONTH = 5 * 3 * 60 * HOURS_PER_MONTH
HEARTBEAT_SECONDS = 1800

PRICES: dict[str, float] = {
    "lambda_arm_gb_second": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "amp_query_sample": 0.10 / 1e9,
    "dynamodb_wru": 0.625 / 1e6,
    "dynamodb_rru": 0.125 / 1e6,
    "logs_ingest_gb": 0.50,
    "cloudwatch_metric_month": 0.30,
    "cloudwatch_alarm_month": 0.10,
}


# -- CPU share of a Lambda memory size ------------------------------------------------------------


class CpuQuota:
    """A cgroup (v1 ``cpu`` or v2) limiting a process to Lambda's CPU share at ``memory_mb``."""

    ROOTS = (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup"))

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.share = memory_mb / LAMBDA_MB_PER_VCPU
        self.path: Path | None = None

    def apply(self, pid: int) -> bool:
        """Move ``pid`` (all its threads) into a new cgroup with the quota; False when not possible."""
        period = 100_000
        quota = max(1000, int(period * self.share))
        for root in self.ROOTS:
            try:
                path = root / f"ampscaler-bench-{os.getpid()}-{self.memory_mb}-{pid}"
                path.mkdir()
                if (path / "cpu.cfs_quota_us").exists():
                    (path / "cpu.cfs_period_us").write_text(str(period))
                    (path / "cpu.cfs_quota_us").write_text(str(quota))
                else:
                    (path / "cpu.max").write_text(f"{quota} {period}")
                (path / "cgroup.procs").write_text(str(pid))
                self.path = path
                return True
            except OSError:
                continue
        return False

    def remove(self) -> None:
        """Delete the cgroup (its process must have exited or moved out)."""
        if self.path is not None:
            for _ in range(50):
                try:
                    self.path.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
            self.path = None


@dataclass
class SlotTimes:
    """Slot wall and CPU times of one rule count at one memory size."""

    rules: int
    memory_mb: int
    walls: list[float]
    cpus: list[float]
    throttled: bool

    @property
    def billed_seconds(self) -> float:
        """What an invocation of this slot is billed for (the median slot)."""
        if self.throttled:
            return median(self.walls)
        # Modelled: the CPU part stretches by the inverse share, the waiting does not.
        wall, cpu = median(self.walls), median(self.cpus)
        return max(wall, wall - cpu + cpu * LAMBDA_MB_PER_VCPU / self.memory_mb)


def measure_slots(fleet: Fleet, rules: int, memory_mb: int, slots: int) -> SlotTimes:
    """Steady slots of ``rules`` rules in a scaler process held to ``memory_mb``'s CPU share."""
    prefix = fleet.prepare(rules)
    fleet.write_samples(rules, hot=False)
    worker = Worker(ticker_worker, fleet.env(prefix), str(OUT / f"cost-slots-{rules}-{memory_mb}.log"))
    quota = CpuQuota(memory_mb)
    try:
        throttled = quota.apply(worker.process.pid or 0)
        walls: list[float] = []
        cpus: list[float] = []
        k = attempts = 0
        while k <= slots and attempts < 5 * (slots + 1):  # k == 0 warms up: rule load, clients, writes
            attempts += 1
            fleet.write_samples(rules, hot=False)
            result = worker.call("tick", {"slot": next_slot()})
            if result["errors"]:
                log(
                    f"cost: {rules} rules at {memory_mb} MB: {result['errors']} errors {result['error_samples']}"
                )
            if result["evaluated"] == 0:
                # A dropped slot (an earlier benchmark's slot still held the
                # fence): not what an invocation of this size costs; wait and take another.
                time.sleep(1.0)
                continue
            if k:
                walls.append(result["duration"])
                cpus.append(result["cpu"])
            k += 1
        if not walls:
            raise RuntimeError(f"cost: no slot of {rules} rules at {memory_mb} MB evaluated every rule")
    finally:
        worker.stop()
        quota.remove()
    return SlotTimes(rules, memory_mb, walls, cpus, throttled)


# -- the bill run: the handler, the schedule and the slot queue ------------------------------------


def handler_worker(conn: multiprocessing.connection.Connection, env: dict[str, str], log_path: str) -> None:
    """A function process: the real handler, invoked with the events the parent forwards."""
    from bench.tick import _apply_env, _cpu_seconds, _redirect_stdout

    _apply_env(env)
    _redirect_stdout(log_path)
    from devstack.lambda_runtime import LambdaContext, load_handler

    module = load_handler("scaler")
    conn.send({"ready": True})
    while True:
        command, arg = conn.recv()
        if command == "invoke":
            started, cpu = time.perf_counter(), _cpu_seconds()
            result = module.lambda_handler(arg, LambdaContext(deadline=time.time() + 75))
            sys.stdout.flush()
            conn.send({"wall": time.perf_counter() - started, "cpu": _cpu_seconds() - cpu, "result": result})
        elif command == "counters":
            app = module._app
            state, audit = app.runtime.ports.state, app.runtime.audit
            conn.send(
                {
                    "write_units": state.write_units,
                    "read_units": state.read_units,
                    "state_writes": state.state_writes,
                    "bytes_logged": dict(audit.bytes_logged),
                    "messages_sent": app.slot_queue.messages_sent if app.slot_queue else 0,
                    "slots_dropped": app.slots_dropped,
                }
            )
        elif command == "stop":
            conn.send(None)
            return


@dataclass
class Phase:
    """Counters of one phase of the bill run (differences over its measured firings)."""

    rules: int
    slots: int
    invocations: int
    billed_ms: int
    write_units: int
    read_units: int
    state_writes: int
    decision_bytes: int
    tick_bytes: int
    emf_bytes: int
    error_bytes: int
    messages_sent: int
    full_records: int
    dropped: int
    metrics: set[tuple[str, tuple[tuple[str, str], ...]]]


def run_phase(fleet: Fleet, rules: int, interval: int, firings: int, hot: bool, memory_mb: int) -> Phase:
    """Warm up one firing, then measure ``firings`` schedule periods of 4 slots each."""
    stack = fleet.stack
    prefix = fleet.prepare(rules)
    fleet.write_samples(rules, hot=hot)
    schedule = 4 * interval
    env = fleet.env(
        prefix,
        EVALUATION_INTERVAL_SECONDS=str(interval),
        SCHEDULE_INTERVAL_SECONDS=str(schedule),
        DEADLINE_MARGIN_SECONDS="1",
    )
    log_path = OUT / f"cost-{rules}-{'scaling' if hot else 'steady'}.log"
    worker = Worker(handler_worker, env, str(log_path))
    quota = CpuQuota(memory_mb)
    quota.apply(worker.process.pid or 0)
    sqs = stack.client("sqs")
    queue = env["SLOT_QUEUE_URL"]
    invocations = billed = 0
    records: list[dict[str, Any]] = []
    try:
        before: dict[str, Any] = {}
        for k in range(firings + 1):
            at = (time.time() // schedule + 1) * schedule
            while time.time() < at:
                time.sleep(min(0.2, at - time.time()))
            fleet.reset(rules)
            fleet.write_samples(rules, hot=hot)
            from devstack.lambda_runtime import scheduled_event

            answers = [worker.call("invoke", scheduled_event(at))]
            # The three later slots arrive as delayed messages, each invoking one slot; poll until
            # the period is over, as the event source polls all the time.
            deadline = at + schedule - 0.2
            while time.time() < deadline:
                messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1).get(
                    "Messages", []
                )
                for message in messages:
                    fleet.reset(rules)
                    fleet.write_samples(rules, hot=hot)
                    event = {"Records": [{"messageId": message["MessageId"], "body": message["Body"]}]}
                    answers.append(worker.call("invoke", event))
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            if k == 0:
                before = worker.call("counters")
                continue
            invocations += len(answers)
            billed += sum(max(1, math.ceil(a["wall"] * 1000)) for a in answers)
        after = worker.call("counters")
    finally:
        worker.stop()
        quota.remove()
    metrics: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    full = ticks = 0
    for raw in log_path.read_bytes().splitlines():
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if "_aws" in doc:
            directive = doc["_aws"]["CloudWatchMetrics"][0]
            dims = tuple(sorted((d, str(doc[d])) for d in directive["Dimensions"][0]))
            metrics |= {(m["Name"], dims) for m in directive["Metrics"]}
        elif doc.get("event") == "decision":
            full += 1
        elif doc.get("event") == "tick":
            ticks += 1
            records.append(doc)
    measured = [r for r in records[-4 * firings :]]
    delta = {
        k: after[k] - before[k]
        for k in ("write_units", "read_units", "state_writes", "messages_sent", "slots_dropped")
    }
    logged = {k: after["bytes_logged"][k] - before["bytes_logged"].get(k, 0) for k in after["bytes_logged"]}
    return Phase(
        rules=rules,
        slots=4 * firings,
        invocations=invocations,
        billed_ms=billed,
        write_units=delta["write_units"],
        read_units=delta["read_units"],
        state_writes=delta["state_writes"],
        decision_bytes=logged["decision"],
        tick_bytes=logged["tick"],
        emf_bytes=logged["emf"],
        error_bytes=logged["error"],
        messages_sent=delta["messages_sent"],
        full_records=sum(int(r.get("fullRecords", 0)) for r in measured),
        dropped=delta["slots_dropped"],
        metrics=metrics,
    )


# -- the month ----------------------------------------------------------------------------------


def monthly_bill(
    rules: int,
    steady: Phase,
    scaling: Phase | None,
    billed_ms_per_invocation: float,
    samples_per_query: int,
    alarms: int,
    memory_mb: int = CHOSEN_MB,
) -> tuple[float, list[tuple[str, str, float]], float]:
    """The month at the defaults from one steady phase's counters; returns (total, lines, alarms)."""
    p = PRICES
    gb = memory_mb / 1024
    slots = SLOTS_PER_MONTH
    invocations = slots * steady.invocations / steady.slots
    messages = slots * steady.messages_sent / steady.slots
    firings = slots / (SCHEDULE_SECONDS / SLOT_SECONDS)
    heartbeats = rules * slots * SLOT_SECONDS / HEARTBEAT_SECONDS
    # A steady slot writes only the fence; the heartbeat rewrites each rule's item (one save).
    fence_wru = (steady.write_units - 4 * steady.state_writes) / steady.slots
    save_wru = 4
    tick_bytes = steady.tick_bytes / steady.slots
    emf_bytes = steady.emf_bytes / steady.slots
    full_record_bytes = (scaling.decision_bytes / max(1, scaling.full_records)) if scaling else 3000.0
    log_gb = (
        slots * (tick_bytes + emf_bytes) + heartbeats * full_record_bytes + invocations * PLATFORM_LOG_BYTES
    ) / 2**30
    sqs_requests = firings + 2 * messages + IDLE_POLLS_PER_MONTH
    evaluations = rules * slots
    lines = [
        (
            "Lambda requests",
            f"{invocations:,.0f} invocations (one per slot: measured {steady.invocations} for {steady.slots} slots) × $0.20/million",
            invocations * p["lambda_request"],
        ),
        (
            "Lambda duration",
            f"{invocations:,.0f} × {billed_ms_per_invocation:,.0f} ms billed (measured, {memory_mb} MB CPU share) "
            f"× {gb:g} GB × ${p['lambda_arm_gb_second']:.10f}/GB-s",
            invocations * billed_ms_per_invocation / 1000 * gb * p["lambda_arm_gb_second"],
        ),
        (
            "SQS requests",
            f"{firings:,.0f} SendMessageBatch + {messages:,.0f} messages × (receive + delete) "
            f"+ {IDLE_POLLS_PER_MONTH:,.0f} idle long polls (estimate) = {sqs_requests:,.0f} × $0.40/million",
            sqs_requests * p["sqs_request"],
        ),
        (
            "DynamoDB writes",
            f"{slots:,.0f} slots × {fence_wru:g} WRU fence (measured) + {heartbeats:,.0f} heartbeat saves × "
            f"{save_wru} WRU (transaction, item < 1 KB) × $0.625/million",
            (slots * fence_wru + heartbeats * save_wru) * p["dynamodb_wru"],
        ),
        (
            "AMP query samples",
            f"{evaluations:,.0f} evaluations × {samples_per_query} samples (stats=all) × $0.10/billion",
            evaluations * samples_per_query * p["amp_query_sample"],
        ),
        (
            "CloudWatch Logs ingestion",
            f"{slots:,.0f} slots × ({tick_bytes:,.0f} B tick line + {emf_bytes:,.0f} B EMF) + {heartbeats:,.0f} "
            f"heartbeat records × {full_record_bytes:,.0f} B + {invocations:,.0f} × {PLATFORM_LOG_BYTES} B platform "
            f"lines = {log_gb:,.3f} GB × $0.50/GB",
            log_gb * p["logs_ingest_gb"],
        ),
        (
            "CloudWatch custom metrics",
            f"{len(steady.metrics)} function-level metrics (measured in the EMF output; none per rule) × $0.30/month",
            len(steady.metrics) * p["cloudwatch_metric_month"],
        ),
    ]
    return sum(line[2] for line in lines), lines, alarms * p["cloudwatch_alarm_month"]


def template_alarm_count() -> int:
    """Alarms the stack creates at the defaults (one shard)."""
    from bench.common import REPO

    text = (REPO / "template.yaml").read_text()
    total = text.count("Type: AWS::CloudWatch::Alarm")
    conditional = sum(1 for shard in (1, 2, 3) if f"NoTickAlarmShard{shard}:" in text)
    return total - conditional


def run(ctx: RunContext) -> list[Figure]:
    """Memory-size figures, the steady/scaling per-evaluation figures and the monthly bill."""
    from bench.layer import alternative_cost
    from bench.tick import realistic_samples_per_query

    OUT.mkdir(parents=True, exist_ok=True)
    fleet = fleet_of(ctx)
    figures: list[Figure] = []
    sizing: dict[tuple[int, int], SlotTimes] = {}
    counts = [10, 100] if ctx.quick else [10, 100, 1000]
    for rules in counts:
        for mb in MEMORY_SIZES if rules <= 100 else (512,):
            log(f"cost: {rules} rules at {mb} MB")
            sizing[(rules, mb)] = measure_slots(fleet, rules, mb, 2 if ctx.quick else 3)
    for (rules, mb), times in sizing.items():
        figures.append(
            ctx.figure(
                key=f"cost.slot_{rules}_{mb}mb",
                figure=f"Slot, {rules:,} steady rules at {mb} MB (billed per invocation)",
                value=times.billed_seconds,
                unit="s",
                baseline=float(SLOT_SECONDS),
                baseline_label="the 15 s slot it must fit in",
                how=(
                    f"`Ticker.run_slot` in a process held to {mb}/{LAMBDA_MB_PER_VCPU} of a CPU "
                    + ("(cgroup quota)" if times.throttled else "(modelled: no cgroup here)")
                    + f", median of {len(times.walls)}; CPU {median(times.cpus) * 1000:,.0f} ms unthrottled-equivalent"
                ),
            )
        )
    gb_s = {key: t.billed_seconds * key[1] / 1024 for key, t in sizing.items() if key[0] <= 100}
    ctx.facts["cost_sizing"] = {
        f"{r}@{m}": {"walls": t.walls, "cpus": t.cpus, "throttled": t.throttled}
        for (r, m), t in sizing.items()
    }
    interval = max(4, math.ceil(1.5 * sizing[(100, CHOSEN_MB)].billed_seconds) + 1)
    firings = 1 if ctx.quick else 2
    phases: dict[tuple[int, bool], Phase] = {}
    for rules in (10, 100):
        for hot in (False, True):
            log(f"cost: bill run, {rules} rules, {'scaling' if hot else 'steady'}, {interval} s slots")
            phases[(rules, hot)] = run_phase(fleet, rules, interval, firings, hot, CHOSEN_MB)
    samples = realistic_samples_per_query(fleet.stack)
    alarms = template_alarm_count()
    keda_total, _ = alternative_cost("KEDA + SigV4 proxy")
    adapter_total, _ = alternative_cost("Prometheus Adapter + SigV4 proxy")
    bills: dict[int, tuple[float, list[tuple[str, str, float]], float]] = {}
    for rules in counts:
        measured = phases.get((rules, False)) or phases[(100, False)]
        scaling = phases.get((rules, True)) or phases[(100, True)]
        key = (rules, CHOSEN_MB) if (rules, CHOSEN_MB) in sizing else (rules, 512)
        billed_ms = sizing[key].billed_seconds * 1000
        if measured.rules != rules:
            # 1,000 rules: per-slot counters that grow with the rules (tick line) scaled from 100.
            measured = scale_phase(measured, rules)
        bills[rules] = monthly_bill(rules, measured, scaling, billed_ms, samples, alarms, key[1])
    targets = {10: 3.00, 100: keda_total}
    for rules, (total, _lines, alarm_cost) in bills.items():
        target = targets.get(rules)
        figures.append(
            ctx.figure(
                key=f"cost.month_{rules}",
                figure=f"Monthly cost, {rules:,} rules, 1 shard at the defaults",
                value=total,
                unit="USD/month",
                baseline=keda_total,
                baseline_label="KEDA + SigV4 proxy pods at default requests",
                how=(
                    f"arithmetic in 'Cost estimate' below, from this run's counters; Prometheus Adapter + proxy "
                    f"${adapter_total:,.2f}; plus ${alarm_cost:,.2f} for the stack's {alarms} alarms"
                ),
                target=(
                    "" if target is None else f"≤ ${target:,.2f}" + (" met" if total <= target else " MISSED")
                ),
            )
        )
    for rules in (10, 100):
        steady, scaling = phases[(rules, False)], phases[(rules, True)]
        evaluations = rules * steady.slots
        figures.append(
            ctx.figure(
                key=f"cost.steady_wru_{rules}",
                figure=f"DynamoDB write units per steady evaluation, {rules} rules",
                value=steady.write_units / evaluations,
                unit="WRU",
                baseline=4.0,
                baseline_label="before: 2 UpdateItems × 2 WRU (1,395 B item) per evaluation",
                how=f"fence {steady.write_units} WRU over {steady.slots} slots of {rules} rules; scaling phase: "
                f"{scaling.write_units / max(1, rules * scaling.slots):.2f} WRU per evaluation",
            )
        )
        figures.append(
            ctx.figure(
                key=f"cost.steady_log_{rules}",
                figure=f"Log bytes per steady evaluation, {rules} rules",
                value=(steady.tick_bytes + steady.emf_bytes + steady.decision_bytes) / evaluations,
                unit="B",
                baseline=3834.0,
                baseline_label="before: 2,801 B decision record + 1,033 B EMF per evaluation",
                how=(
                    f"tick line + EMF + full records over {steady.slots} slots; scaling phase: "
                    f"{(scaling.tick_bytes + scaling.emf_bytes + scaling.decision_bytes) / max(1, rules * scaling.slots):,.0f} B "
                    f"per evaluation ({scaling.full_records} full records)"
                ),
            )
        )
    ctx.sections["Cost estimate (arithmetic)"] = bill_section(
        bills, keda_total, adapter_total, alarms, gb_s, interval
    )
    ctx.facts["cost_phases"] = {
        f"{r}-{'scaling' if h else 'steady'}": {k: v for k, v in vars(p).items() if k != "metrics"}
        | {"metrics": sorted(m[0] for m in p.metrics)}
        for (r, h), p in phases.items()
    }
    return figures


def scale_phase(phase: Phase, rules: int) -> Phase:
    """A steady phase's counters for ``rules`` rules: the tick line grows with the rules, the rest not."""
    factor = rules / phase.rules
    return Phase(**{**vars(phase), "rules": rules, "tick_bytes": int(phase.tick_bytes * factor)})


def bill_section(
    bills: Mapping[int, tuple[float, list[tuple[str, str, float]], float]],
    keda: float,
    adapter: float,
    alarms: int,
    gb_seconds: Mapping[tuple[int, int], float],
    interval: int,
) -> str:
    """The markdown with every line of the arithmetic."""
    out = [
        "Prices (us-east-1, on demand, free tiers ignored): Lambda arm64 $0.0000133334/GB-s and $0.20 per "
        "million requests; SQS $0.40 per million requests; AMP $0.10 per billion query samples; DynamoDB "
        "on-demand $0.625 per million WRU; CloudWatch Logs $0.50/GB; custom metrics $0.30/metric-month; "
        "alarms $0.10/alarm-month. One shard, 60 s schedule, 15 s slots (175,200 a month), 256 MB, heartbeat "
        f"{HEARTBEAT_SECONDS} s, 730 h/month. Counters from the bill run ({interval} s slots, 4 per firing, "
        "the handler in a process held to 256 MB's CPU share).",
        "",
        "Memory size, GB-s billed per slot (what duration costs): "
        + "; ".join(
            f"{rules} rules: "
            + ", ".join(f"{mb} MB {v:.3f}" for (r, mb), v in sorted(gb_seconds.items()) if r == rules)
            for rules in sorted({r for r, _ in gb_seconds})
        )
        + f". The default is {CHOSEN_MB} MB: the cheapest at 10 rules, within a few per cent of the cheapest at "
        "100, with the 100-rule slot well inside its 15 s; above ~100 rules per shard 512 MB is both cheaper and "
        "faster, and a shard whose slot nears 15 s needs more memory or another shard.",
        "",
    ]
    for rules, (total, lines, alarm_cost) in bills.items():
        out += [
            f"**ampscaler, {rules:,} rules: ${total:,.2f}/month** (with the {alarms} alarms: ${total + alarm_cost:,.2f})",
            "",
            "| Item | Arithmetic | $/month |",
            "|---|---|---|",
        ]
        out += [f"| {item} | {how} | {value:,.4f} |" for item, how, value in lines]
        out.append("")
    out.append(
        f"In-cluster alternatives (pods at their charts' default requests, any number of rules): KEDA + SigV4 "
        f"proxy ${keda:,.2f}, Prometheus Adapter + SigV4 proxy ${adapter:,.2f} (arithmetic in bench/layer.py); "
        "they too need alerting, which is not counted on either side."
    )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cost benchmark alone and print its figures as JSON lines."""
    return standalone_main(run, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
