"""Faults and modes through the real scaler handler, each with its exact outcome asserted: a 409 race on
the scale subresource, the deadline reached mid-slot, paused and dry-run rules, a per-rule evaluation
interval, and sharding. Slots and fencing are in test_slots.py."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ampscaler.adapters.state_dynamodb import DynamoDbStateStore
from ampscaler.tick import shard_of
from devstack.sigv4_proxy import Fault
from devstack.stack import STATE_TABLE, LocalStack
from tests.e2e.conftest import LambdaContext, load_handler, log_records
from tests.e2e.test_scaler_handler import FAST, invoke, next_slot, patches, replicas, rule_doc, write_per_pod

pytestmark = pytest.mark.e2e


def setup(stack: LocalStack, ns: str, name: str, metric: str, start: int = 2, **extra: object) -> None:
    stack.kube.add_deployment(ns, name, replicas=start, labels={"app": name})
    stack.put_rule(f"{ns}/{name}", rule_doc(ns, name, metric, **extra))


def decisions(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [r for r in log_records(capsys.readouterr().out) if r.get("event") == "decision"]


def test_conflict_on_patch_rereads_redecides_once_and_scales(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]]
) -> None:
    stack_env(**FAST)
    ns, name, metric = "race", "api", "e2e_race_rps"
    setup(local_stack, ns, name, metric)
    handler = load_handler("scaler")
    write_per_pod(local_stack, metric, ns, 30.0)
    local_stack.kube.inject(409, method="PATCH", path=f"/deployments/{name}/scale", count=1)
    next_slot()

    summary = invoke(handler)

    assert summary["ticks"][0]["errors"] == 0
    assert replicas(local_stack, ns, name) == 6
    statuses = [
        r.status
        for r in local_stack.kube.requests
        if r.method == "PATCH" and r.path.endswith(f"{name}/scale")
    ]
    assert statuses == [409, 200]


def test_conflict_twice_gives_up_for_this_tick_without_consuming_rate_limit(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    stack_env(**FAST)
    ns, name, metric = "race2", "api", "e2e_race2_rps"
    setup(local_stack, ns, name, metric)
    handler = load_handler("scaler")
    write_per_pod(local_stack, metric, ns, 30.0)
    local_stack.kube.inject(409, method="PATCH", path=f"/deployments/{name}/scale", count=2)
    next_slot()

    summary = invoke(handler)

    assert summary["ticks"][0]["errors"] == 1
    assert replicas(local_stack, ns, name) == 2
    assert local_stack.kube.events(ns, name, reason="FailedRescale")
    record = DynamoDbStateStore(STATE_TABLE).get(f"{ns}/{name}")
    assert record is not None and record.state.engine is not None
    # The recommendation is kept, but a scale that did not happen is not a scale event.
    assert record.state.engine.recommendations
    assert record.state.engine.scale_up_events == ()
    [logged] = decisions(capsys)
    assert logged["applied"] == "failed"
    assert "409 twice" in str(logged["error"])
    assert record.state.last_error is not None and "409 twice" in str(record.state.last_error["message"])


def test_deadline_reached_mid_tick_never_scales_down(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    stack_env(**FAST)
    ns, name, metric = "slow", "api", "e2e_slow_rps"
    setup(local_stack, ns, name, metric, start=5)
    handler = load_handler("scaler")
    # Far below target: a complete evaluation would scale down; the query never answers in time.
    write_per_pod(local_stack, metric, ns, 1.0)
    local_stack.proxy.inject(Fault(delay_seconds=6.0), times=1)
    next_slot()

    started = time.time()
    invoke(handler)
    elapsed = time.time() - started

    assert replicas(local_stack, ns, name) == 5
    assert patches(local_stack, ns, name) == []
    # The tick gives up at its 2 s deadline instead of waiting for the 6 s answer.
    assert elapsed < 4.5
    logged = decisions(capsys)
    if logged:  # the query timed out inside the tick: the decision holds the count
        assert logged[0]["output"]["desiredReplicas"] == 5  # type: ignore[index]
    local_stack.proxy.clear()


@pytest.mark.parametrize(("mode", "word"), [("paused", "paused"), ("dryRun", "dry-run")])
def test_paused_and_dry_run_rules_are_evaluated_and_logged_but_never_patched(
    local_stack: LocalStack,
    stack_env: Callable[..., dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    mode: str,
    word: str,
) -> None:
    stack_env(**FAST)
    ns, name, metric = f"mode-{mode.lower()}", "api", f"e2e_mode_{mode.lower()}_rps"
    setup(local_stack, ns, name, metric, **{mode: True})
    handler = load_handler("scaler")
    write_per_pod(local_stack, metric, ns, 30.0)
    next_slot()

    invoke(handler)

    assert replicas(local_stack, ns, name) == 2
    assert patches(local_stack, ns, name) == []
    [logged] = decisions(capsys)
    assert logged["applied"] == mode
    assert logged["output"]["desiredReplicas"] == 6  # type: ignore[index]
    assert str(logged["reason"]).startswith(f"{word}: would scale 2 -> 6")


def test_rule_evaluation_interval_skips_ticks_until_due(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]]
) -> None:
    stack_env(**FAST)
    ns, name, metric = "slowrule", "batch", "e2e_slowrule_rps"
    setup(local_stack, ns, name, metric, evaluationIntervalSeconds=6)
    handler = load_handler("scaler")
    write_per_pod(local_stack, metric, ns, 10.0)

    evaluated, slots = [], []
    for _ in range(6):  # 2 s slots, a 6 s rule: due in every third slot, decided by the slot number
        next_slot()
        write_per_pod(local_stack, metric, ns, 10.0)
        tick = invoke(handler)["ticks"][0]
        slots.append(int(tick["slot"]))
        evaluated.append(tick["evaluated"])

    # Slot ids are slot starts (unix seconds); slot number = start / 2.
    assert slots == list(range(slots[0], slots[0] + 12, 2)), "one slot each, none skipped"
    assert evaluated == [1 if (slot // 2) % 3 == 0 else 0 for slot in slots]
    assert sum(evaluated) == 2


def test_shards_split_rules_by_stable_hash(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]]
) -> None:
    stack_env(**FAST, SHARD_COUNT="2")
    metric = "e2e_shard_rps"
    names = [f"shard{i}" for i in range(6)]
    for n in names:
        setup(local_stack, n, "api", metric)
    handler = load_handler("scaler")
    next_slot()

    counts = []
    for shard in (0, 1):
        event_summary = handler.lambda_handler(
            {"shardIndex": shard, "scheduledTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            LambdaContext(f"shard-{shard}"),
        )
        counts.append(event_summary["ticks"][0]["evaluated"] + event_summary["ticks"][0]["errors"])

    expected = [sum(1 for n in names if shard_of(f"{n}/api", 2) == s) for s in (0, 1)]
    assert counts == expected
    assert sum(counts) == len(names)


def test_missing_target_is_recorded_for_describe_and_other_rules_keep_scaling(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]]
) -> None:
    stack_env(**FAST)
    ns, metric = "missing", "e2e_missing_rps"
    setup(local_stack, ns, "present", metric)
    # A rule whose Deployment does not exist in the cluster (typo, or deleted).
    local_stack.put_rule(f"{ns}/absent", rule_doc(ns, "absent", metric))
    handler = load_handler("scaler")
    write_per_pod(local_stack, metric, ns, 30.0)
    next_slot()

    summary = invoke(handler)

    assert summary["ticks"][0]["evaluated"] == 1 and summary["ticks"][0]["errors"] == 1
    assert replicas(local_stack, ns, "present") == 6
    record = DynamoDbStateStore(STATE_TABLE).get(f"{ns}/absent")
    assert record is not None and record.state.last_error is not None
    assert "Deployment missing/absent not found" in str(record.state.last_error["message"])
    # The failure was written under this slot's fence; the next slot evaluates the rule again.
    first_slot = record.state.slot
    next_slot()
    summary = invoke(handler)
    assert summary["ticks"][0]["errors"] == 1
    again = DynamoDbStateStore(STATE_TABLE).get(f"{ns}/absent")
    assert again is not None and again.state.slot is not None and first_slot is not None
    assert int(again.state.slot) > int(first_slot)
