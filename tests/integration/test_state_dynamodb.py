"""DynamoDbStateStore against a moto server over HTTP: leases, slots, owner-only saves, exact round trips."""

from __future__ import annotations

import threading

import boto3
import pytest

from ampscaler.adapters.state_dynamodb import (
    DEFAULT_TTL_SECONDS,
    DynamoDbStateStore,
    StateRecord,
    create_table,
)
from ampscaler.engine.types import EngineState, Recommendation, ScaleEvent
from ampscaler.errors import LeaseHeldError, StateStoreError
from ampscaler.ports import StoredState

pytestmark = pytest.mark.integration

TABLE = "ampscaler-state"
T0 = 1_700_000_000.25
LEASE = 30.0


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


def test_acquire_new_rule_returns_empty_state_and_records_lease(store: DynamoDbStateStore) -> None:
    stored = store.acquire("web", "inv-a", T0, LEASE, "100")

    assert stored == StoredState(engine=None)
    record = store.get("web")
    assert record == StateRecord(
        rule="web",
        state=StoredState(engine=None),
        lease_owner="inv-a",
        lease_expires=T0 + LEASE,
        last_slot="100",
        expires_at=int(T0) + DEFAULT_TTL_SECONDS,
    )


def test_acquire_lease_held_by_other_owner_is_refused(store: DynamoDbStateStore) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")

    with pytest.raises(LeaseHeldError, match="lease held by inv-a") as info:
        store.acquire("web", "inv-b", T0 + LEASE - 1, LEASE, "101")

    assert info.value.__cause__ is not None, "raised from the ConditionalCheckFailedException"
    assert store.get("web").lease_owner == "inv-a"  # type: ignore[union-attr]


def test_acquire_expired_lease_is_stolen_for_a_new_slot(store: DynamoDbStateStore) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")

    store.acquire("web", "inv-b", T0 + LEASE + 0.5, LEASE, "102")

    record = store.get("web")
    assert record is not None
    assert (record.lease_owner, record.last_slot) == ("inv-b", "102")


def test_acquire_same_slot_twice_is_refused_even_for_same_owner_or_after_expiry(
    store: DynamoDbStateStore,
) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")
    store.save("web", "inv-a", StoredState(engine=EngineState(), last_evaluated=T0))

    with pytest.raises(LeaseHeldError, match="slot 100 was already taken"):
        store.acquire("web", "inv-a", T0 + 1, LEASE, "100")
    with pytest.raises(LeaseHeldError, match="slot 100 was already taken"):
        store.acquire("web", "inv-dup", T0 + 10 * LEASE, LEASE, "100")


def test_acquire_same_owner_reacquires_for_next_slot(store: DynamoDbStateStore) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")

    store.acquire("web", "inv-a", T0 + 15, LEASE, "101")

    assert store.get("web").last_slot == "101"  # type: ignore[union-attr]


def test_acquire_concurrent_duplicates_only_one_wins(store: DynamoDbStateStore) -> None:
    winners: list[str] = []
    losers: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(owner: str) -> None:
        barrier.wait()
        try:
            store.acquire("web", owner, T0, LEASE, "100")
            winners.append(owner)
        except LeaseHeldError:
            losers.append(owner)

    threads = [threading.Thread(target=attempt, args=(f"inv-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(winners) == 1
    assert len(losers) == 7
    assert store.get("web").lease_owner == winners[0]  # type: ignore[union-attr]


def test_save_by_owner_persists_state_and_clears_lease(store: DynamoDbStateStore) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")
    state = StoredState(
        engine=engine_state(),
        parameter_version=7,
        last_evaluated=T0 + 0.3,
        last_scale_time=T0 - 45.000001,
        last_decision={
            "from": 3,
            "to": 5,
            "metrics": [{"name": "rps", "current": 0.1 + 0.2}],
            "mode": "live",
        },
        last_error={"time": T0 - 15, "message": "Deployment shop/web not found in cluster prod"},
    )

    store.save("web", "inv-a", state)

    record = store.get("web")
    assert record is not None
    assert record.state == state
    assert record.lease_owner is None
    assert record.lease_expires is None
    # The next slot sees exactly what was saved.
    assert store.acquire("web", "inv-b", T0 + 15, LEASE, "101") == state


def test_save_by_non_owner_is_refused_and_changes_nothing(store: DynamoDbStateStore) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")

    with pytest.raises(LeaseHeldError, match="held by inv-a"):
        store.save("web", "inv-b", StoredState(engine=engine_state(), parameter_version=9))

    record = store.get("web")
    assert record is not None
    assert record.state == StoredState(engine=None)
    assert record.lease_owner == "inv-a"


def test_save_after_lease_was_stolen_is_refused(store: DynamoDbStateStore) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")
    store.acquire("web", "inv-b", T0 + LEASE + 1, LEASE, "102")

    with pytest.raises(LeaseHeldError, match="held by inv-b"):
        store.save("web", "inv-a", StoredState(engine=engine_state()))


def test_save_none_fields_are_removed(store: DynamoDbStateStore) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")
    store.save(
        "web",
        "inv-a",
        StoredState(engine=engine_state(), parameter_version=1, last_scale_time=T0, last_evaluated=T0),
    )
    store.acquire("web", "inv-a", T0 + 15, LEASE, "101")

    store.save("web", "inv-a", StoredState(engine=EngineState(), last_evaluated=T0 + 15))

    item = raw_item("web")
    assert "parameter_version" not in item
    assert "last_scale_time" not in item
    assert "last_decision" not in item
    assert store.get("web").state == StoredState(engine=EngineState(), last_evaluated=T0 + 15)  # type: ignore[union-attr]


def test_numbers_are_stored_as_plain_dynamodb_numbers(store: DynamoDbStateStore) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")
    store.save(
        "web", "inv-a", StoredState(engine=EngineState(), last_evaluated=T0 + 0.1, parameter_version=3)
    )

    item = raw_item("web")
    assert item["last_evaluated"] == {"N": repr(T0 + 0.1)}
    assert item["parameter_version"] == {"N": "3"}
    assert "S" in item["engine"]


def test_ttl_enabled_on_expires_at_and_refreshed_on_save(store: DynamoDbStateStore) -> None:
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == "expires_at"
    store.acquire("web", "inv-a", T0, LEASE, "100")

    store.save("web", "inv-a", StoredState(engine=EngineState(), last_evaluated=T0 + 3600))

    assert raw_item("web")["expires_at"] == {"N": str(int(T0 + 3600) + DEFAULT_TTL_SECONDS)}


def test_release_by_owner_frees_lease_and_keeps_state(store: DynamoDbStateStore) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")
    store.save("web", "inv-a", StoredState(engine=engine_state(), last_evaluated=T0))
    store.acquire("web", "inv-a", T0 + 15, LEASE, "101")

    store.release("web", "inv-a")

    record = store.get("web")
    assert record is not None
    assert record.lease_owner is None
    assert record.state.engine == engine_state()
    store.acquire("web", "inv-b", T0 + 16, LEASE, "102")


def test_release_by_non_owner_leaves_lease(store: DynamoDbStateStore) -> None:
    store.acquire("web", "inv-a", T0, LEASE, "100")

    store.release("web", "inv-b")
    store.release("never-acquired", "inv-b")

    assert store.get("web").lease_owner == "inv-a"  # type: ignore[union-attr]
    assert store.get("never-acquired") is None


def test_scan_all_lists_every_rule_sorted(store: DynamoDbStateStore) -> None:
    for i in reversed(range(25)):
        store.acquire(f"rule-{i:02d}", "inv-a", T0, LEASE, "100")

    records = store.scan_all()

    assert [r.rule for r in records] == [f"rule-{i:02d}" for i in range(25)]
    assert all(r.lease_owner == "inv-a" for r in records)


def test_corrupt_engine_state_fails_loudly_and_releases(store: DynamoDbStateStore) -> None:
    boto3.client("dynamodb").put_item(
        TableName=TABLE, Item={"rule": {"S": "web"}, "engine": {"S": '{"recommendations": "oops"}'}}
    )

    with pytest.raises(StateStoreError, match="delete the item"):
        store.acquire("web", "inv-a", T0, LEASE, "100")

    assert "lease_owner" not in raw_item("web")


def test_missing_table_is_an_actionable_state_store_error(aws_env: dict[str, str]) -> None:
    store = DynamoDbStateStore("no-such-table")

    with pytest.raises(StateStoreError, match="STATE_TABLE") as info:
        store.acquire("web", "inv-a", T0, LEASE, "100")

    assert info.value.__cause__ is not None


def test_acquire_earlier_slot_after_a_later_one_is_refused(store: DynamoDbStateStore) -> None:
    # A duplicated invocation that lags behind the original must not go back to a slot the
    # original has already moved past.
    store.acquire("late", "inv-a", 1000.0, 30.0, "000000000102")
    store.release("late", "inv-a")
    with pytest.raises(LeaseHeldError, match="older than slot 000000000102"):
        store.acquire("late", "inv-b", 1001.0, 30.0, "000000000101")
