"""StateStore on DynamoDB: one small item per rule, one fence item per shard.

The fence is what makes slots safe without a write per rule: every slot of a shard takes the
shard's fence item with one conditional UpdateItem (the pattern of Powertools idempotency's
``DynamoDBPersistenceLayer._put_record``), which succeeds only for a slot later than the one
holding it and only once that slot's time is up. The slot identifier is the fencing token: a
rule's state is written in a transaction that also checks the fence still names this slot, so
an evaluation that overran its slot, or a thread thawed after its invocation ended, can never
overwrite what a later slot wrote.

Steady evaluations (nothing but a repeated recommendation changed) write nothing: their state
stays in this object's memory for the next slot of the same execution environment, and the
fence item's ``write_seq`` (bumped by every rule write) says whether that memory is still
current or must be read again. The item's recommendation history is compacted exactly (see
``engine.history``) so it stays under 1 KB, one write unit.

Numbers travel as DynamoDB ``N`` strings written from the float's shortest repr, so they read back
as the identical float; engine state and last decision are JSON strings (the decide contract's
own encoding).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from ampscaler import contract
from ampscaler.adapters.boto_deadline import bounded_client
from ampscaler.errors import (
    AmpscalerError,
    DeadlineExceededError,
    FenceLostError,
    LeaseHeldError,
    SlotTakenError,
    StateStoreError,
)
from ampscaler.ports import Fence, StoredState
from ampscaler.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

logger = logging.getLogger(__name__)

PARTITION_KEY = "rule"
TTL_ATTRIBUTE = "expires_at"
# Items of rules that stop being evaluated (deleted rules) expire after this long. Every rule's
# item is rewritten at least once per decision-log heartbeat, far more often than this.
DEFAULT_TTL_SECONDS = 7 * 24 * 3600
# Rule names cannot contain '#' (rule.RULE_NAME_RE), so fence items never collide with rules.
FENCE_KEY_PREFIX = "#fence/shard-"
# BatchGetItem takes at most 100 keys per request.
_BATCH_GET_LIMIT = 100

TAKE_FENCE_CONDITION = (
    # A slot later than the one holding the fence (slots are fixed-width digit strings, so string
    # order is time order: a duplicated or late delivery can never go back to a slot already
    # taken) ...
    "attribute_not_exists(fence_slot) OR (fence_slot < :slot"
    # ... and only once the previous slot's time is up, so two slots never act at once.
    " AND fence_until <= :now)"
)
FENCE_HELD_CONDITION = "fence_slot = :slot"
# A state written by a later slot is never overwritten by an earlier one.
RULE_WRITE_CONDITION = "attribute_not_exists(state_slot) OR state_slot < :slot"


@dataclass(frozen=True)
class StateRecord:
    """One rule's item as the CLI shows it."""

    rule: str
    state: StoredState
    expires_at: int | None = None


class DynamoDbStateStore:
    """ports.StateStore on one DynamoDB table with partition key ``rule`` (S).

    Parameters
    ----------
    table_name:
        The state table (``Settings.state_table``).
    client:
        DynamoDB client; None creates a deadline-bounded one (``boto_deadline.bounded_client``) on
        first use, from a fresh boto3 session, so it honours ``AWS_ENDPOINT_URL``.
    ttl_seconds:
        Lifetime written to ``expires_at`` on every rule write.
    clock:
        Wall clock, used only for ``expires_at`` when a saved state has no ``last_evaluated``.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table_name = table_name
        self.ttl_seconds = ttl_seconds
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        # States this execution environment knows to be current, per shard, and the fence
        # write_seq they are current for (None: unknown, read from the table).
        self._cache: dict[int, dict[str, StoredState]] = {}
        self._cache_seq: dict[int, int | None] = {}
        # Counters for the benchmark's bill, in DynamoDB's on-demand units worked out from the
        # item sizes (moto does not report consumed capacity faithfully).
        self.write_units = 0
        self.read_units = 0
        self.state_writes = 0

    @classmethod
    def from_settings(cls, settings: Settings, client: DynamoDBClient | None = None) -> DynamoDbStateStore:
        """The store the scaler function uses: table name from settings."""
        return cls(settings.state_table, client=client)

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client, created on first use."""
        if self._client is None:
            # boto3's default session is not thread-safe; worker threads may get here together.
            with self._lock:
                if self._client is None:
                    self._client = cast("DynamoDBClient", bounded_client("dynamodb"))
        return self._client

    # -- the fence ---------------------------------------------------------------------------

    def take_fence(self, shard: int, slot: str, until: float, owner: str, now: float) -> Fence:
        """Take shard ``shard``'s fence for ``slot``, held until ``until`` (the next slot's start).

        Raises
        ------
        SlotTakenError
            ``slot`` or a later slot already took the fence (a duplicate or late delivery).
        LeaseHeldError
            The previous slot's fence is held until after ``now`` (this delivery is early).
        StateStoreError
            DynamoDB could not be reached or refused the call.
        """
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": fence_key(shard)}},
                UpdateExpression=(
                    "SET fence_slot = :slot, fence_until = :until, fence_owner = :owner, "
                    "write_seq = if_not_exists(write_seq, :zero)"
                ),
                ConditionExpression=TAKE_FENCE_CONDITION,
                ExpressionAttributeValues={
                    ":slot": {"S": slot},
                    ":until": _n(until),
                    ":now": _n(now),
                    ":owner": {"S": owner},
                    ":zero": {"N": "0"},
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise _fence_refusal(shard, slot, now, _old_item(exc)) from exc
            raise self._error("UpdateItem", exc) from exc
        except (BotoCoreError, DeadlineExceededError) as exc:
            raise self._error("UpdateItem", exc) from exc
        old = response.get("Attributes", {})
        self._meter(write_units=_write_units(FENCE_ITEM_BYTES))
        return Fence(
            shard=shard,
            slot=slot,
            until=until,
            owner=owner,
            previous_slot=_s(old, "fence_slot"),
            write_seq=_int(old, "write_seq") or 0,
        )

    # -- rule state --------------------------------------------------------------------------

    def load(self, names: Sequence[str], fence: Fence) -> Mapping[str, StoredState]:
        """The state of each rule in ``names``: from memory when still current, else one BatchGetItem.

        Raises
        ------
        StateStoreError
            DynamoDB could not be reached, or an item is unreadable (the message says how to reset it).
        """
        with self._lock:
            if self._cache_seq.get(fence.shard) != fence.write_seq:
                # Another execution environment wrote since: what this one remembers may be stale.
                self._cache[fence.shard] = {}
                self._cache_seq[fence.shard] = fence.write_seq
            cached = self._cache.setdefault(fence.shard, {})
            found = {name: cached[name] for name in names if name in cached}
        missing = [name for name in names if name not in found]
        for start in range(0, len(missing), _BATCH_GET_LIMIT):
            for item in self._batch_get(missing[start : start + _BATCH_GET_LIMIT]):
                name = _s(item, PARTITION_KEY) or ""
                try:
                    found[name] = _stored_state(item)
                except (ValueError, AmpscalerError) as exc:
                    # A corrupt item must not silently become "no history" (that could allow an
                    # early scale-down); the rule fails, loudly, until the item is fixed or deleted.
                    raise StateStoreError(
                        f"rule {name}: the stored state in {self.table_name} is unreadable ({exc}); "
                        f"delete the item with rule={name!r} to start the rule from fresh state"
                    ) from exc
        with self._lock:
            if self._cache_seq.get(fence.shard) == fence.write_seq:
                self._cache.setdefault(fence.shard, {}).update(
                    {name: found[name] for name in missing if name in found}
                )
        return found

    def remember(self, name: str, state: StoredState, fence: Fence) -> None:
        """Keep a steady evaluation's state in memory for this environment's next slot; writes nothing."""
        with self._lock:
            if self._cache_seq.get(fence.shard) is not None:
                self._cache.setdefault(fence.shard, {})[name] = state

    def save(self, name: str, state: StoredState, fence: Fence) -> None:
        """Write rule ``name``'s state, in one transaction with the check that ``fence`` still holds.

        Raises
        ------
        FenceLostError
            A later slot holds the shard's fence, or wrote this rule's state already.
        StateStoreError
            DynamoDB could not be reached or refused the call (the write may or may not have
            happened; this environment then reads the table again next slot).
        """
        item = _rule_item(name, state, fence.slot, self.ttl_seconds, self._clock)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": {PARTITION_KEY: {"S": fence_key(fence.shard)}},
                            "UpdateExpression": "ADD write_seq :one",
                            "ConditionExpression": FENCE_HELD_CONDITION,
                            "ExpressionAttributeValues": {":slot": {"S": fence.slot}, ":one": {"N": "1"}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": item,
                            "ConditionExpression": RULE_WRITE_CONDITION,
                            "ExpressionAttributeValues": {":slot": {"S": fence.slot}},
                        }
                    },
                ],
            )
        except ClientError as exc:
            if _code(exc) == "TransactionCanceledException":
                self._forget(fence.shard)
                reasons = [str(r.get("Code", "")) for r in exc.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    raise FenceLostError(
                        f"rule {name}: state not saved, a later slot than {fence.slot} holds the fence of "
                        f"shard {fence.shard}"
                    ) from exc
                if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    raise FenceLostError(
                        f"rule {name}: state not saved, a slot later than {fence.slot} already wrote it"
                    ) from exc
            self._forget(fence.shard)
            raise self._error("TransactWriteItems", exc) from exc
        except (BotoCoreError, DeadlineExceededError) as exc:
            self._forget(fence.shard)
            raise self._error("TransactWriteItems", exc) from exc
        # A transactional write costs two units per KB of each item, the fence check included.
        self._meter(
            write_units=2 * (_write_units(FENCE_ITEM_BYTES) + _write_units(item_size(item))), state_writes=1
        )
        with self._lock:
            seq = self._cache_seq.get(fence.shard)
            if seq is not None:
                self._cache_seq[fence.shard] = seq + 1
                self._cache.setdefault(fence.shard, {})[name] = state

    # -- reads for the CLI -------------------------------------------------------------------

    def get(self, rule_name: str) -> StateRecord | None:
        """The item of rule ``rule_name`` (strongly consistent), or None.

        Raises
        ------
        StateStoreError
            DynamoDB could not be reached or refused the call.
        """
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key={PARTITION_KEY: {"S": rule_name}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error("GetItem", exc) from exc
        item = response.get("Item")
        return _record(item) if item else None

    def scan_all(self) -> list[StateRecord]:
        """Every rule's item (all pages; fence items left out), sorted by rule name.

        Raises
        ------
        StateStoreError
            DynamoDB could not be reached or refused the call.
        """
        try:
            records = [
                _record(item)
                for item in self._scan()
                if not (_s(item, PARTITION_KEY) or "").startswith(FENCE_KEY_PREFIX)
            ]
        except (ClientError, BotoCoreError) as exc:
            raise self._error("Scan", exc) from exc
        return sorted(records, key=lambda r: r.rule)

    def fence(self, shard: int) -> Mapping[str, Any] | None:
        """Shard ``shard``'s fence item as plain values (slot, until, owner, write_seq), or None."""
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key={PARTITION_KEY: {"S": fence_key(shard)}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error("GetItem", exc) from exc
        item = response.get("Item")
        if not item:
            return None
        return {
            "slot": _s(item, "fence_slot"),
            "until": _float(item, "fence_until"),
            "owner": _s(item, "fence_owner"),
            "writeSeq": _int(item, "write_seq"),
        }

    # -- internals ---------------------------------------------------------------------------

    def _batch_get(self, names: Sequence[str]) -> Iterator[Mapping[str, Any]]:
        keys: list[Mapping[str, Any]] = [{PARTITION_KEY: {"S": name}} for name in names]
        while keys:
            try:
                response = self.client.batch_get_item(
                    RequestItems={self.table_name: {"Keys": keys, "ConsistentRead": True}},
                )
            except (ClientError, BotoCoreError, DeadlineExceededError) as exc:
                raise self._error("BatchGetItem", exc) from exc
            items = response.get("Responses", {}).get(self.table_name, [])
            # A strongly consistent read costs one unit per 4 KB of each item returned.
            self._meter(read_units=sum(-(-item_size(item) // 4096) for item in items))
            yield from items
            # Throttled or oversized batches come back as UnprocessedKeys: ask again for those.
            unprocessed: Mapping[str, Any] = response.get("UnprocessedKeys") or {}
            keys = list((unprocessed.get(self.table_name) or {}).get("Keys", []))

    def _scan(self) -> Iterator[Mapping[str, Any]]:
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table_name, ConsistentRead=True):
            yield from page.get("Items", [])

    def _forget(self, shard: int) -> None:
        with self._lock:
            self._cache_seq[shard] = None
            self._cache.pop(shard, None)

    def _meter(self, write_units: int = 0, read_units: int = 0, state_writes: int = 0) -> None:
        with self._lock:
            self.write_units += write_units
            self.read_units += read_units
            self.state_writes += state_writes

    def _error(self, operation: str, exc: BaseException) -> StateStoreError:
        code = _code(exc)
        if code in ("AccessDeniedException", "AccessDenied"):
            hint = f"; the function's role needs dynamodb:{operation} on table {self.table_name}"
        elif code == "ResourceNotFoundException":
            hint = f"; table {self.table_name!r} does not exist here (check STATE_TABLE and the region)"
        else:
            hint = ""
        return StateStoreError(f"DynamoDB {operation} on {self.table_name} failed: {exc}{hint}")


# A fence item holds its key, three short attributes and a counter: well under 1 KB.
FENCE_ITEM_BYTES = 120


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values (numbers ~ digits/2 + 1 bytes)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode("utf-8"))
        if "S" in value:
            size += len(str(value["S"]).encode("utf-8"))
        elif "N" in value:
            size += len(str(value["N"]).lstrip("-").replace(".", "")) // 2 + 2
        else:
            size += len(json.dumps(value))
    return size


def _write_units(size: int) -> int:
    # On-demand writes cost one unit per started KB.
    return max(1, -(-size // 1024))


def fence_key(shard: int) -> str:
    """Partition key of shard ``shard``'s fence item."""
    return f"{FENCE_KEY_PREFIX}{shard}"


def create_table(client: DynamoDBClient, name: str) -> None:
    """Create the state table as template.yaml declares it and wait until it is ACTIVE.

    On-demand billing, partition key ``rule`` (S), TTL on ``expires_at``. For tests and the demo.
    """
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


# -- encoding ----------------------------------------------------------------------------------


def _n(value: float) -> AttributeValueTypeDef:
    """A DynamoDB number from an int or a finite float, exact: the float's shortest repr, no exponent."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, int):
        return {"N": str(value)}
    decimal = Decimal(repr(value))
    if not decimal.is_finite():
        raise ValueError(f"DynamoDB cannot store {value!r}")
    return {"N": format(decimal, "f")}


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _old_item(exc: ClientError) -> Mapping[str, Any]:
    # ReturnValuesOnConditionCheckFailure=ALL_OLD puts the item that failed the condition here.
    return cast("Mapping[str, Any]", exc.response.get("Item") or {})


def _s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if value and "S" in value else None


def _float(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name)
    return float(value["N"]) if value and "N" in value else None


def _int(item: Mapping[str, Any], name: str) -> int | None:
    value = item.get(name)
    return int(Decimal(value["N"])) if value and "N" in value else None


def _fence_refusal(shard: int, slot: str, now: float, old: Mapping[str, Any]) -> LeaseHeldError:
    held = _s(old, "fence_slot")
    if held is not None and held >= slot:
        which = "took it already" if held == slot else "is later and holds it"
        return SlotTakenError(
            f"shard {shard}: slot {slot} not run, slot {held} {which} (duplicate or late delivery)",
            taken_by=held,
        )
    until = _float(old, "fence_until")
    if until is not None and until > now:
        return LeaseHeldError(
            f"shard {shard}: slot {held} holds the fence for another {until - now:.2f}s (slot {slot} is early)"
        )
    return LeaseHeldError(f"shard {shard}: the fence for slot {slot} is not available")


def _rule_item(
    name: str, state: StoredState, slot: str, ttl_seconds: int, clock: Callable[[], float]
) -> dict[str, AttributeValueTypeDef]:
    stamp = state.last_evaluated if state.last_evaluated is not None else clock()
    item: dict[str, AttributeValueTypeDef] = {
        PARTITION_KEY: {"S": name},
        "state_slot": {"S": slot},
        TTL_ATTRIBUTE: _n(int(stamp) + ttl_seconds),
    }
    fields: dict[str, AttributeValueTypeDef | None] = {
        "engine": None if state.engine is None else {"S": _json(contract.state_to_dict(state.engine))},
        "parameter_version": None if state.parameter_version is None else _n(state.parameter_version),
        "last_evaluated": None if state.last_evaluated is None else _n(state.last_evaluated),
        "last_scale_time": None if state.last_scale_time is None else _n(state.last_scale_time),
        "last_decision": None if state.last_decision is None else {"S": _json(state.last_decision)},
        "last_error": None if state.last_error is None else {"S": _json(state.last_error)},
        "written_at": None if state.written_at is None else _n(state.written_at),
    }
    item.update({key: value for key, value in fields.items() if value is not None})
    return item


def _stored_state(item: Mapping[str, Any]) -> StoredState:
    engine_json = _s(item, "engine")
    decision_json = _s(item, "last_decision")
    error_json = _s(item, "last_error")
    return StoredState(
        engine=None if engine_json is None else contract.state_from_dict(json.loads(engine_json)),
        parameter_version=_int(item, "parameter_version"),
        last_evaluated=_float(item, "last_evaluated"),
        last_scale_time=_float(item, "last_scale_time"),
        last_decision=None if decision_json is None else json.loads(decision_json),
        last_error=None if error_json is None else json.loads(error_json),
        slot=_s(item, "state_slot"),
        written_at=_float(item, "written_at"),
    )


def _record(item: Mapping[str, Any]) -> StateRecord:
    return StateRecord(
        rule=_s(item, PARTITION_KEY) or "",
        state=_stored_state(item),
        expires_at=_int(item, TTL_ATTRIBUTE),
    )
