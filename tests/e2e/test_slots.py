"""Evaluation slots and the shard fence through the real scaler handler: the slot queue (SQS message
timers in moto, delivered by the local event-source poller), duplicate and late deliveries, two
environments racing for a slot, a slot overrunning into the next, a worker stalled past its
deadline, steady evaluations that write nothing, and a cold environment restoring them exactly."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger

from ampscaler import contract
from ampscaler.adapters.state_dynamodb import DynamoDbStateStore, item_size
from ampscaler.model import MetricSpec, Rule
from ampscaler.ports import MeasuredObservation, MetricsSource
from ampscaler.runtime import ScalerApp
from ampscaler.schedule import Slot, invocation_slots, slot_message
from devstack.lambda_runtime import LocalFunction, SqsEventSource
from devstack.stack import STATE_TABLE, LocalStack
from tests.e2e.conftest import LambdaContext, load_handler, log_records
from tests.e2e.test_scaler_handler import (
    FAST,
    SLOW_MACHINE_DROPS,
    check_sample,
    invoke,
    next_slot,
    patches,
    replicas,
    rule_doc,
    write_per_pod,
)

pytestmark = pytest.mark.e2e

# Slots 4 s wide: an evaluation must end 0.5 s before its slot does, and on a loaded machine
# 1.5 s (2 s slots) was not always enough for the successor of a stalled slot.
INTERVAL = 4
SLOTS = {**FAST, "EVALUATION_INTERVAL_SECONDS": str(INTERVAL), "SCHEDULE_INTERVAL_SECONDS": str(INTERVAL)}


def setup(stack: LocalStack, ns: str, name: str, metric: str, per_pod: float) -> None:
    stack.kube.add_deployment(ns, name, replicas=2, labels={"app": name})
    stack.put_rule(f"{ns}/{name}", rule_doc(ns, name, metric))
    write_per_pod(stack, metric, ns, per_pod)


def current_slot() -> Slot:
    return invocation_slots(time.time(), 0, INTERVAL, INTERVAL)[0]


def sleep_until(at: float) -> None:
    while (left := at - time.time()) > 0:
        time.sleep(min(left, 0.2))


def slot_event(slot: Slot) -> dict[str, Any]:
    return {
        "Records": [{"messageId": str(uuid.uuid4()), "body": slot_message(slot), "eventSource": "aws:sqs"}]
    }


def new_app() -> ScalerApp:
    """A second execution environment of the function (its own clients and memory)."""
    return ScalerApp.from_env(Logger(service="ampscaler"))


class StallingMetrics:
    """Answers the query, then stalls its worker thread until released.

    Stands in for what no server can produce: a thread paused after its last call returned (a
    long GC pause, or Lambda freezing the environment and thawing it later).
    """

    def __init__(self, inner: MetricsSource) -> None:
        self.inner = inner
        self.stalled = threading.Event()
        self.release = threading.Event()

    def observe_with_stats(
        self, rule: Rule, spec: MetricSpec, at: float, deadline: float
    ) -> MeasuredObservation:
        outcome = self.inner.observe_with_stats(rule, spec, at, deadline)
        self.stalled.set()
        self.release.wait(timeout=60)
        return outcome


def stall(app: ScalerApp) -> StallingMetrics:
    stalling = StallingMetrics(app.runtime.ports.metrics)
    app.runtime = replace(app.runtime, ports=replace(app.runtime.ports, metrics=stalling))  # type: ignore[arg-type]
    return stalling


@pytest.fixture
def in_thread() -> Iterator[Callable[[Callable[[], Any]], dict[str, Any]]]:
    threads: list[threading.Thread] = []

    def run(fn: Callable[[], Any]) -> dict[str, Any]:
        box: dict[str, Any] = {}

        def target() -> None:
            box["result"] = fn()

        thread = threading.Thread(target=target, daemon=True)
        threads.append(thread)
        thread.start()
        box["thread"] = thread
        return box

    yield run
    for thread in threads:
        thread.join(timeout=60)


def test_schedule_firing_queues_later_slots_and_each_message_runs_its_slot(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    env = stack_env(**{**SLOTS, "SCHEDULE_INTERVAL_SECONDS": str(2 * INTERVAL)})
    ns, name, metric = "slots-queued", "api", "e2e_slots_queued_rps"
    setup(local_stack, ns, name, metric, per_pod=10.0)
    function = LocalFunction(load_handler("scaler"))
    sqs = boto3.client("sqs")

    # Fire on a schedule boundary, as Scheduler does: this invocation runs the first slot and
    # puts the second on the queue, delayed to its start.
    period = 2 * INTERVAL
    sleep_until((time.time() // period + 1) * period + 0.05)
    fired = time.time() // period * period
    summary = function.invoke(invoke_event(fired))
    assert summary["enqueued"] == 1
    assert [int(t["slot"]) for t in summary["ticks"]] == [int(fired)]

    with SqsEventSource(sqs, env["SLOT_QUEUE_URL"], function.invoke) as poller:
        deadline = time.time() + 20
        while poller.received < 1 and time.time() < deadline:
            time.sleep(0.1)
    assert poller.received == 1
    ticks = [r for r in log_records(capsys.readouterr().out) if r.get("event") == "tick"]
    assert [int(t["slot"]) for t in ticks] == [int(fired), int(fired) + INTERVAL]
    assert all(t.get("dropped") is None and t["evaluated"] == 1 for t in ticks)
    # The message was delivered at (not before) its slot's start.
    second = next(r for r in ticks if int(r["slot"]) == int(fired) + INTERVAL)
    assert parse_log_time(second["timestamp"]) >= fired + INTERVAL
    assert function.errors == []


def invoke_event(at: float) -> dict[str, Any]:
    from devstack.lambda_runtime import scheduled_event

    return scheduled_event(at)


def parse_log_time(stamp: str) -> float:
    from datetime import datetime

    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f%z").timestamp()


def test_duplicate_delivery_of_a_slot_acts_once(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    stack_env(**SLOTS)
    ns, name, metric = "slots-dup", "api", "e2e_slots_dup_rps"
    setup(local_stack, ns, name, metric, per_pod=30.0)
    handler = load_handler("scaler")
    for _ in range(3):  # a slot the loaded machine reached too late is replaced by the next
        next_slot(INTERVAL)
        slot = current_slot()
        first = handler.lambda_handler(slot_event(slot), LambdaContext())
        if first["ticks"][0]["dropped"] not in SLOW_MACHINE_DROPS:
            break
    second = handler.lambda_handler(slot_event(slot), LambdaContext())

    assert first["ticks"][0]["dropped"] is None and first["ticks"][0]["evaluated"] == 1
    # "taken" by the fence; "late" only when the first run outlasted the slot on a slow machine.
    assert second["ticks"][0]["dropped"] in ("taken", "late") and second["ticks"][0]["evaluated"] == 0
    assert first["batchItemFailures"] == [] == second["batchItemFailures"]
    assert replicas(local_stack, ns, name) == 6
    assert len(patches(local_stack, ns, name)) == 1


def test_slot_arriving_after_its_successor_started_is_dropped_and_counted(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    stack_env(**SLOTS)
    ns, name, metric = "slots-late", "api", "e2e_slots_late_rps"
    setup(local_stack, ns, name, metric, per_pod=30.0)
    handler = load_handler("scaler")
    next_slot(INTERVAL)
    past = Slot(0, current_slot().index - 1, INTERVAL)

    summary = handler.lambda_handler(slot_event(past), LambdaContext())

    assert summary["ticks"][0]["dropped"] == "late"
    assert patches(local_stack, ns, name) == []
    [tick] = [r for r in log_records(capsys.readouterr().out) if r.get("event") == "tick"]
    assert tick["dropped"] == "late" and tick["slot"] == past.id
    # A dropped slot is not a slot that ran: no TickDuration sample for the "no tick" alarm.
    emf = [r for r in log_records(capsys.readouterr().out) if "TickDuration" in r]
    assert emf == []


def test_two_environments_racing_for_one_slot_run_it_once(
    local_stack: LocalStack,
    stack_env: Callable[..., dict[str, str]],
    in_thread: Callable[[Callable[[], Any]], dict[str, Any]],
) -> None:
    stack_env(**SLOTS)
    ns, name, metric = "slots-race", "api", "e2e_slots_race_rps"
    setup(local_stack, ns, name, metric, per_pod=30.0)
    apps = [new_app(), new_app()]
    next_slot(INTERVAL)
    slot = current_slot()
    start = threading.Barrier(2)

    def run(app: ScalerApp) -> Callable[[], dict[str, Any]]:
        def go() -> dict[str, Any]:
            start.wait(timeout=10)
            return app.run_slot(slot, LambdaContext())

        return go

    boxes = [in_thread(run(app)) for app in apps]
    for box in boxes:
        box["thread"].join(timeout=30)

    outcomes = sorted(str(box["result"]["dropped"]) for box in boxes)
    # One runs; the other finds the fence taken (or, on a loaded machine, reaches the fence
    # after the slot's deadline and does not try): never both.
    assert outcomes[0] == "None" and outcomes[1] in ("taken", *SLOW_MACHINE_DROPS), outcomes
    assert replicas(local_stack, ns, name) == 6
    assert len(patches(local_stack, ns, name)) == 1


def test_slot_overrunning_into_the_next_neither_patches_nor_saves_after_its_deadline(
    local_stack: LocalStack,
    stack_env: Callable[..., dict[str, str]],
    in_thread: Callable[[Callable[[], Any]], dict[str, Any]],
) -> None:
    stack_env(**SLOTS)
    ns, name, metric = "slots-overrun", "api", "e2e_slots_overrun_rps"
    setup(local_stack, ns, name, metric, per_pod=30.0)
    stalled_app, next_app = new_app(), new_app()
    stalling = stall(stalled_app)
    next_slot(INTERVAL)
    slot = current_slot()

    box = in_thread(lambda: stalled_app.run_slot(slot, LambdaContext()))
    assert stalling.stalled.wait(timeout=10)
    # The next slot starts while the first is stalled: it takes the fence and scales.
    sleep_until(slot.end + 0.05)
    successor = next_app.run_slot(Slot(0, slot.index + 1, INTERVAL), LambdaContext())
    assert successor["dropped"] is None and successor["evaluated"] == 1
    assert replicas(local_stack, ns, name) == 6
    # The stalled worker thaws: it must not patch or save on the old slot's decision.
    stalling.release.set()
    box["thread"].join(timeout=30)

    assert box["result"]["errors"] == 1
    assert len(patches(local_stack, ns, name)) == 1
    record = DynamoDbStateStore(STATE_TABLE).get(f"{ns}/{name}")
    assert record is not None and record.state.slot == Slot(0, slot.index + 1, INTERVAL).id
    assert record.state.last_decision is not None and record.state.last_decision["patched"] is True


def test_worker_stalled_past_the_deadline_does_not_patch_or_save(
    local_stack: LocalStack,
    stack_env: Callable[..., dict[str, str]],
    in_thread: Callable[[Callable[[], Any]], dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack_env(**SLOTS)
    ns, name, metric = "slots-stalled", "api", "e2e_slots_stalled_rps"
    setup(local_stack, ns, name, metric, per_pod=30.0)
    app = new_app()
    stalling = stall(app)
    next_slot(INTERVAL)
    slot = current_slot()

    box = in_thread(lambda: app.run_slot(slot, LambdaContext()))
    assert stalling.stalled.wait(timeout=10)
    sleep_until(slot.end + 0.2)  # well past the deadline (slot end - 0.5 s margin)
    stalling.release.set()
    box["thread"].join(timeout=30)

    assert box["result"]["errors"] == 1
    assert patches(local_stack, ns, name) == []
    assert replicas(local_stack, ns, name) == 2
    assert DynamoDbStateStore(STATE_TABLE).get(f"{ns}/{name}") is None
    errors = [
        str(r.__dict__.get("error")) for r in caplog.records if r.__dict__.get("event") == "evaluationError"
    ]
    assert any("deadline passed" in e for e in errors), errors


def test_steady_evaluations_write_nothing_log_compactly_and_heartbeat(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    heartbeat = 4 * INTERVAL
    stack_env(**SLOTS, DECISION_HEARTBEAT_SECONDS=str(heartbeat))
    ns, name, metric = "slots-steady", "api", "e2e_slots_steady_rps"
    setup(local_stack, ns, name, metric, per_pod=10.0)  # on target: 2 pods x 10 = 20 -> 2 replicas
    handler = load_handler("scaler")

    ticks = []
    for _ in range(6):
        next_slot(INTERVAL)
        write_per_pod(local_stack, metric, ns, 10.0)
        ticks.append(invoke(handler, interval=INTERVAL)["ticks"][0])
    records = log_records(capsys.readouterr().out)

    # The first evaluation writes (no state yet); the next ones are steady until the heartbeat
    # is due (DECISION_HEARTBEAT_SECONDS after the last write), which writes the state and logs
    # the full record again.
    expected, last_write = [], None
    for tick in ticks:
        due = last_write is None or int(tick["slot"]) - last_write >= heartbeat
        expected.append(1 if due else 0)
        last_write = int(tick["slot"]) if due else last_write
    assert [t["stateWrites"] for t in ticks] == expected
    assert [t["fullRecords"] for t in ticks] == expected
    assert 0 < sum(expected) < len(ticks)
    tick_lines = [r for r in records if r.get("event") == "tick"]
    compact = [entry for t in tick_lines for entry in t["rules"]]
    assert compact == [[f"{ns}/{name}", 2, 2, [10.0]]] * (len(ticks) - sum(expected))
    check_sample("tick_log_line.json", next(t for t in tick_lines if t["rules"]))
    assert replicas(local_stack, ns, name) == 2 and patches(local_stack, ns, name) == []
    # The item stays one write unit, and names the slot that last wrote it.
    raw = boto3.client("dynamodb").get_item(TableName=STATE_TABLE, Key={"rule": {"S": f"{ns}/{name}"}})[
        "Item"
    ]
    assert item_size(raw) < 1024
    record = DynamoDbStateStore(STATE_TABLE).get(f"{ns}/{name}")
    assert record is not None and record.state.slot == f"{last_write:012d}"


def test_cold_environment_restores_the_unwritten_steady_history_exactly(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    # Three slots on one environment: one write, then two steady ones kept only in its memory.
    # The fourth slot, on a new environment, falls on the heartbeat, so its full record shows
    # the state it started from.
    stack_env(**SLOTS, DECISION_HEARTBEAT_SECONDS=str(3 * INTERVAL))
    ns, name, metric = "slots-restore", "api", "e2e_slots_restore_rps"
    setup(local_stack, ns, name, metric, per_pod=10.0)
    warm = load_handler("scaler")
    slots = []
    for _ in range(3):
        next_slot(INTERVAL)
        write_per_pod(local_stack, metric, ns, 10.0)
        slots.append(int(invoke(warm, interval=INTERVAL)["ticks"][0]["slot"]))
    assert slots == [slots[0], slots[0] + INTERVAL, slots[0] + 2 * INTERVAL], "three consecutive slots"
    remembered = warm._app.runtime.ports.state._cache[0][f"{ns}/{name}"]
    capsys.readouterr()

    cold = load_handler("scaler")  # a new execution environment: nothing in memory
    next_slot(INTERVAL)
    write_per_pod(local_stack, metric, ns, 10.0)
    tick = invoke(cold, interval=INTERVAL)["ticks"][0]
    [decision] = [r for r in log_records(capsys.readouterr().out) if r.get("event") == "decision"]

    assert int(tick["slot"]) == slots[0] + 3 * INTERVAL
    # Read from the item written in the first slot, brought up to the last slot that ran:
    # exactly what the warm environment remembered.
    assert remembered.engine is not None
    assert decision["input"]["state"] == contract.state_to_dict(remembered.engine)
    assert decision["input"]["state"]["recommendations"] == [{"time": float(slots[2]), "replicas": 2}]


def test_slot_whose_predecessor_still_holds_the_fence_is_dropped_as_early(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]]
) -> None:
    stack_env(**SLOTS)
    ns, name, metric = "slots-early", "api", "e2e_slots_early_rps"
    setup(local_stack, ns, name, metric, per_pod=30.0)
    handler = load_handler("scaler")
    next_slot(INTERVAL)
    held = current_slot()
    # Another environment holds the fence past its slot's end (its clock ran ahead, say).
    DynamoDbStateStore(STATE_TABLE).take_fence(0, held.id, held.end + 60, "other", time.time())
    # Any slot inside the hold is early. One the loaded machine reached too late to try the
    # fence at all is replaced by the next, as the scheduler would.
    for later in range(1, 4):
        slot = Slot(0, held.index + later, INTERVAL)
        sleep_until(slot.start + 0.05)
        summary = handler.lambda_handler(slot_event(slot), LambdaContext())
        if summary["ticks"][0]["dropped"] not in SLOW_MACHINE_DROPS:
            break

    assert summary["ticks"][0]["dropped"] == "early"
    assert patches(local_stack, ns, name) == []
