"""DynamoDbStateStore against a moto server over HTTP: the shard fence, fenced transactional saves, the
per-environment memory of steady states, exact round trips, and the units each call costs."""

from __future__ import annotations

import threading

import boto3
import pytest

from ampscaler.adapters.state_dynamodb import (
    DEFAULT_TTL_SECONDS,
    DynamoDbStateStore,
    StateRecord,
    create_table,
    fence_key,
    item_size,
)
from ampscaler.engine.types import EngineState, Recommendation, ScaleEvent
from ampscaler.errors import FenceLostError, LeaseHeldError, SlotTakenError, StateStoreError
from ampscaler.ports import Fence, StoredState

pytestmark = pytest.mark.integration

TABLE = "ampscaler-state"
T0 = 1_700_000_000.25
INTERVAL = 15.0


def slot(n: int) -> str:
    return f"{n:012d}"


@pytest.fixture
def store(aws_env: dict[str, str]) -> DynamoDbStateStore:
    create_table(boto3.client("dynamodb"), TABLE)
    return DynamoDbStateStore(TABLE)


def engine_state() -> EngineState:
    # Floats that do not survive a float -> Decimal(float) -> float trip by accident.
    return EngineState(
        recommendations=(
            Recommendation(time=T0 - 30.123456789, replicas=4),
            Recommendation(time=T0 - 15.1 + 0.2, replicas=5),
        ),
        scale_up_events=(ScaleEvent(time=T0 - 45.000001, change=2),),
        scale_down_events=(ScaleEvent(time=1e-7, change=1),),
        consecutive_failures=2,
        below_activation_since=T0 - 0.1,
    )


def raw_item(rule: str) -> dict[str, dict[str, str]]:
    return boto3.client("dynamodb").get_item(TableName=TABLE, Key={"rule": {"S": rule}}, ConsistentRead=True)[
        "Item"
    ]  # type: ignore[return-value]


def take(store: DynamoDbStateStore, n: int, owner: str = "inv-a", shard: int = 0) -> Fence:
    """Take the fence for slot ``n`` at its start (slot n spans [n*15, (n+1)*15))."""
    return store.take_fence(shard, slot(n), (n + 1) * INTERVAL, owner, n * INTERVAL)


def full_state(n: int) -> StoredState:
    return StoredState(
        engine=engine_state(),
        parameter_version=7,
        last_evaluated=T0 + 0.3,
        last_scale_time=T0 - 45.000001,
        last_decision={
            "from": 3,
            "to": 5,
            "metrics": [{"name": "rps", "current": 0.1 + 0.2}],
            "mode": "active",
        },
        last_error={"time": T0 - 15, "message": "Deployment shop/web not found in cluster prod"},
        slot=slot(n),
        written_at=T0 + 0.3,
    )


def test_take_fence_first_time_records_slot_and_starts_the_write_count(store: DynamoDbStateStore) -> None:
    fence = take(store, 100)

    assert fence == Fence(shard=0, slot=slot(100), until=101 * INTERVAL, owner="inv-a", previous_slot=None)
    assert store.fence(0) == {"slot": slot(100), "until": 101 * INTERVAL, "owner": "inv-a", "writeSeq": 0}
    assert store.write_units == 1


def test_take_fence_next_slot_names_the_previous_one(store: DynamoDbStateStore) -> None:
    take(store, 100)

    fence = take(store, 101, owner="inv-b")

    assert fence.previous_slot == slot(100) and fence.owner == "inv-b"


@pytest.mark.parametrize("again", [100, 99], ids=["same slot (duplicate)", "earlier slot (late)"])
def test_take_fence_for_a_slot_already_passed_is_refused(store: DynamoDbStateStore, again: int) -> None:
    take(store, 100)

    with pytest.raises(SlotTakenError, match="duplicate or late delivery") as info:
        store.take_fence(0, slot(again), (again + 1) * INTERVAL, "inv-b", 200 * INTERVAL)

    assert info.value.taken_by == slot(100)
    assert info.value.__cause__ is not None, "raised from the ConditionalCheckFailedException"
    assert store.fence(0)["owner"] == "inv-a"  # type: ignore[index]


def test_take_fence_before_the_previous_slot_is_over_is_refused(store: DynamoDbStateStore) -> None:
    take(store, 100)

    with pytest.raises(LeaseHeldError, match="is early") as info:
        store.take_fence(0, slot(101), 102 * INTERVAL, "inv-b", 101 * INTERVAL - 0.5)

    assert not isinstance(info.value, SlotTakenError)


def test_take_fence_concurrent_duplicates_only_one_wins(store: DynamoDbStateStore) -> None:
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def contend(owner: str) -> None:
        barrier.wait()
        try:
            store.take_fence(0, slot(100), 101 * INTERVAL, owner, 100 * INTERVAL)
            winners.append(owner)
        except LeaseHeldError:
            pass

    threads = [threading.Thread(target=contend, args=(f"inv-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(winners) == 1
    assert store.fence(0)["owner"] == winners[0]  # type: ignore[index]


def test_fences_of_shards_are_independent(store: DynamoDbStateStore) -> None:
    take(store, 100, shard=0)

    assert take(store, 100, shard=1).previous_slot is None


def test_save_under_the_fence_round_trips_exactly(store: DynamoDbStateStore) -> None:
    fence = take(store, 100)
    state = full_state(100)

    store.save("web", state, fence)

    record = store.get("web")
    assert record is not None
    assert record.state == state
    assert record.expires_at == int(T0 + 0.3) + DEFAULT_TTL_SECONDS
    # A new environment reads exactly what was saved.
    next_fence = take(store, 101)
    assert next_fence.write_seq == 1
    assert DynamoDbStateStore(TABLE).load(["web", "absent"], next_fence) == {"web": state}


def test_save_after_a_later_slot_took_the_fence_is_refused_and_changes_nothing(
    store: DynamoDbStateStore,
) -> None:
    old = take(store, 100)
    take(store, 101, owner="inv-b")

    with pytest.raises(FenceLostError, match="later slot"):
        store.save("web", full_state(100), old)

    assert store.get("web") is None
    assert store.fence(0)["writeSeq"] == 0  # type: ignore[index]


def test_save_never_overwrites_a_later_slots_state(store: DynamoDbStateStore) -> None:
    fence = take(store, 100)
    store.save("web", full_state(100), fence)
    # A fence item rewound by hand (restored from a backup, say) cannot roll a rule back.
    boto3.client("dynamodb").put_item(
        TableName=TABLE,
        Item={"rule": {"S": fence_key(0)}, "fence_slot": {"S": slot(98)}, "fence_until": {"N": "0"}},
    )
    older = take(store, 99)

    with pytest.raises(FenceLostError, match="already wrote it"):
        store.save("web", StoredState(engine=EngineState(), slot=slot(99)), older)

    assert store.get("web").state == full_state(100)  # type: ignore[union-attr]


def test_remembered_states_are_served_from_memory_while_nobody_else_writes(store: DynamoDbStateStore) -> None:
    fence = take(store, 100)
    store.save("web", full_state(100), fence)
    steady = StoredState(engine=EngineState(), slot=slot(101))
    fence = take(store, 101)
    store.load(["web"], fence)
    store.remember("web", steady, fence)
    reads_before = store.read_units

    # Nothing was written since, so the next slot's load costs no read at all.
    assert store.load(["web"], take(store, 102)) == {"web": steady}
    assert store.read_units == reads_before


def test_memory_is_dropped_when_another_environment_wrote(store: DynamoDbStateStore) -> None:
    other = DynamoDbStateStore(TABLE)
    fence = take(store, 100)
    store.save("web", full_state(100), fence)
    store.remember("web", StoredState(engine=EngineState(), slot=slot(100)), fence)
    fence = take(other, 101, owner="inv-b")
    other.save("web", full_state(101), fence)

    loaded = store.load(["web"], take(store, 102))

    assert loaded == {"web": full_state(101)}
    assert store.read_units >= 1


def test_none_fields_are_not_written(store: DynamoDbStateStore) -> None:
    store.save("web", StoredState(engine=EngineState(), last_evaluated=T0 + 15), take(store, 100))

    item = raw_item("web")
    assert not {"parameter_version", "last_scale_time", "last_decision", "last_error"} & set(item)
    assert store.get("web").state == StoredState(engine=EngineState(), last_evaluated=T0 + 15, slot=slot(100))  # type: ignore[union-attr]


def test_numbers_are_stored_as_plain_dynamodb_numbers(store: DynamoDbStateStore) -> None:
    store.save(
        "web",
        StoredState(engine=EngineState(), last_evaluated=T0 + 0.1, parameter_version=3),
        take(store, 100),
    )

    item = raw_item("web")
    assert item["last_evaluated"] == {"N": repr(T0 + 0.1)}
    assert item["parameter_version"] == {"N": "3"}
    assert "S" in item["engine"]


def test_ttl_enabled_on_expires_at_and_refreshed_on_save(store: DynamoDbStateStore) -> None:
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == "expires_at"

    store.save("web", StoredState(engine=EngineState(), last_evaluated=T0 + 3600), take(store, 100))

    assert raw_item("web")["expires_at"] == {"N": str(int(T0 + 3600) + DEFAULT_TTL_SECONDS)}


def test_a_full_item_is_one_write_unit_and_a_save_costs_four(store: DynamoDbStateStore) -> None:
    fence = take(store, 100)
    units = store.write_units

    store.save("web", full_state(100), fence)

    assert item_size(raw_item("web")) < 1024
    # A transaction costs 2 units per item per KB: the fence check and the rule's item.
    assert store.write_units - units == 4


def test_scan_all_lists_every_rule_sorted_without_fences(store: DynamoDbStateStore) -> None:
    fence = take(store, 100)
    for i in reversed(range(25)):
        store.save(f"rule-{i:02d}", StoredState(engine=None), fence)

    records = store.scan_all()

    assert [r.rule for r in records] == [f"rule-{i:02d}" for i in range(25)]
    assert all(isinstance(r, StateRecord) and r.state.slot == slot(100) for r in records)


def test_corrupt_engine_state_fails_loudly(store: DynamoDbStateStore) -> None:
    boto3.client("dynamodb").put_item(
        TableName=TABLE, Item={"rule": {"S": "web"}, "engine": {"S": '{"recommendations": "oops"}'}}
    )

    with pytest.raises(StateStoreError, match="delete the item"):
        store.load(["web"], take(store, 100))


def test_missing_table_is_an_actionable_state_store_error(aws_env: dict[str, str]) -> None:
    store = DynamoDbStateStore("no-such-table")

    with pytest.raises(StateStoreError, match="STATE_TABLE") as info:
        take(store, 100)

    assert info.value.__cause__ is not None
