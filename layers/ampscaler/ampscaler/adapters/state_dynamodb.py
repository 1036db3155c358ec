"""StateStore on DynamoDB: one item per rule holding engine state, last decision and a lease.

The lease is a conditional UpdateItem (the pattern of Powertools idempotency's
``DynamoDBPersistenceLayer._put_record``): it succeeds only when nobody holds an unexpired lease
and the schedule slot has not been taken yet, so overlapping or duplicated invocations never
evaluate a rule at the same time and never act on one slot twice. A failed condition becomes
``LeaseHeldError`` ``from`` the ClientError, saying whether the lease or the slot blocked it.

Numbers travel as DynamoDB ``N`` strings written from the float's shortest repr, so they read back
as the identical float without boto3's Decimal conversion; engine state and last decision are
JSON strings (the decide contract's own encoding).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ampscaler import contract
from ampscaler.errors import AmpscalerError, LeaseHeldError, StateStoreError
from ampscaler.ports import StoredState
from ampscaler.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

logger = logging.getLogger(__name__)

PARTITION_KEY = "rule"
TTL_ATTRIBUTE = "expires_at"
# Items of rules that stop being evaluated (deleted rules) expire after this long.
DEFAULT_TTL_SECONDS = 7 * 24 * 3600

# Bounded calls: the tick has a deadline, and SDK retries must not run past it.
DEFAULT_BOTO_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"max_attempts": 3, "mode": "standard"},
    # The tick evaluates rules on a thread pool; one connection per worker avoids pool churn.
    max_pool_connections=64,
)

ACQUIRE_CONDITION = (
    # No lease (new item, or released), an expired lease, or our own lease ...
    "(attribute_not_exists(lease_owner) OR lease_expires < :now OR lease_owner = :owner)"
    # ... and this schedule slot later than any taken before (by anyone, ourselves included).
    # Slots are fixed-width digit strings (tick.slot_of), so string order is time order: a
    # duplicated or late invocation can never go back and act on a slot already passed.
    " AND (attribute_not_exists(last_slot) OR last_slot < :slot)"
)


@dataclass(frozen=True)
class StateRecord:
    """One rule's item as the CLI shows it: stored state plus lease bookkeeping."""

    rule: str
    state: StoredState
    lease_owner: str | None = None
    lease_expires: float | None = None
    last_slot: str | None = None
    expires_at: int | None = None


class DynamoDbStateStore:
    """ports.StateStore on one DynamoDB table with partition key ``rule`` (S).

    Parameters
    ----------
    table_name:
        The state table (``Settings.state_table``).
    client:
        DynamoDB client; None creates one on first use (thread-safe), from a fresh boto3 session,
        so it honours ``AWS_ENDPOINT_URL`` and the environment at that moment.
    ttl_seconds:
        Lifetime written to ``expires_at`` on every acquire/save, so items of rules that are no
        longer evaluated disappear.
    clock:
        Wall clock used only for ``expires_at`` when the saved state has no ``last_evaluated``.
    boto_config:
        botocore Config for the lazily created client (timeouts, retries, pool size).
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        boto_config: Config = DEFAULT_BOTO_CONFIG,
    ) -> None:
        self.table_name = table_name
        self.ttl_seconds = ttl_seconds
        self._client = client
        self._clock = clock
        self._boto_config = boto_config
        self._lock = threading.Lock()

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
                    self._client = boto3.session.Session().client("dynamodb", config=self._boto_config)
        return self._client

    # -- ports.StateStore ------------------------------------------------------------------

    def acquire(self, rule_name: str, owner: str, now: float, lease_seconds: float, slot: str) -> StoredState:
        """Take rule ``rule_name``'s lease for schedule ``slot`` and return its stored state.

        Succeeds when the item is new, the lease is free or expired, or ``owner`` already holds
        it, and ``slot`` differs from the last slot taken. Records ``slot`` so it is never acted
        on twice.

        Raises
        ------
        LeaseHeldError
            Another owner holds an unexpired lease, or ``slot`` was already taken.
        StateStoreError
            DynamoDB could not be reached or refused the call.
        """
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": rule_name}},
                UpdateExpression=(
                    "SET lease_owner = :owner, lease_expires = :expires, last_slot = :slot, "
                    f"{TTL_ATTRIBUTE} = :ttl"
                ),
                ConditionExpression=ACQUIRE_CONDITION,
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":now": _n(now),
                    ":expires": _n(now + lease_seconds),
                    ":slot": {"S": slot},
                    ":ttl": _n(int(now) + self.ttl_seconds),
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise LeaseHeldError(_acquire_refusal(rule_name, slot, now, _old_item(exc))) from exc
            raise self._error("UpdateItem", exc) from exc
        except BotoCoreError as exc:
            raise self._error("UpdateItem", exc) from exc
        try:
            return _stored_state(response.get("Attributes", {}))
        except (ValueError, AmpscalerError) as exc:
            # A corrupt item must not silently become "no history" (that could allow an early
            # scale-down); the rule stays skipped, loudly, until the item is fixed or deleted.
            self.release(rule_name, owner)
            raise StateStoreError(
                f"rule {rule_name}: the stored state in {self.table_name} is unreadable ({exc}); "
                f"delete the item with rule={rule_name!r} to start the rule from fresh state"
            ) from exc

    def save(self, rule_name: str, owner: str, state: StoredState) -> None:
        """Write ``state`` (replacing every state field; None removes it) and release ``owner``'s lease.

        Raises
        ------
        LeaseHeldError
            ``owner`` no longer holds the lease (it expired and another invocation took it).
        StateStoreError
            DynamoDB could not be reached or refused the call.
        """
        stamp = state.last_evaluated if state.last_evaluated is not None else self._clock()
        values: dict[str, AttributeValueTypeDef] = {
            ":owner": {"S": owner},
            ":ttl": _n(int(stamp) + self.ttl_seconds),
        }
        sets = [f"{TTL_ATTRIBUTE} = :ttl"]
        removes = ["lease_owner", "lease_expires"]
        fields: dict[str, AttributeValueTypeDef | None] = {
            "engine": None if state.engine is None else {"S": _json(contract.state_to_dict(state.engine))},
            "parameter_version": None if state.parameter_version is None else _n(state.parameter_version),
            "last_evaluated": None if state.last_evaluated is None else _n(state.last_evaluated),
            "last_scale_time": None if state.last_scale_time is None else _n(state.last_scale_time),
            "last_decision": None if state.last_decision is None else {"S": _json(state.last_decision)},
            "last_error": None if state.last_error is None else {"S": _json(state.last_error)},
        }
        for attribute, value in fields.items():
            if value is None:
                removes.append(attribute)
            else:
                sets.append(f"{attribute} = :{attribute}")
                values[f":{attribute}"] = value
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": rule_name}},
                UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                holder = _s(_old_item(exc), "lease_owner")
                message = (
                    f"rule {rule_name}: state not saved, the lease is now held by {holder}"
                    if holder
                    else f"rule {rule_name}: state not saved, {owner} does not hold the lease"
                )
                raise LeaseHeldError(message) from exc
            raise self._error("UpdateItem", exc) from exc
        except BotoCoreError as exc:
            raise self._error("UpdateItem", exc) from exc

    def release(self, rule_name: str, owner: str) -> None:
        """Drop ``owner``'s lease without touching state; a lease held by someone else is left alone.

        Raises
        ------
        StateStoreError
            DynamoDB could not be reached or refused the call.
        """
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": rule_name}},
                UpdateExpression="REMOVE lease_owner, lease_expires",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                # Already released, expired and taken over, or never taken: nothing of ours to drop.
                logger.debug("rule %s: release by %s skipped, lease not held", rule_name, owner)
                return
            raise self._error("UpdateItem", exc) from exc
        except BotoCoreError as exc:
            raise self._error("UpdateItem", exc) from exc

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
        """Every item in the table (all pages), sorted by rule name.

        Raises
        ------
        StateStoreError
            DynamoDB could not be reached or refused the call.
        """
        try:
            records = [_record(item) for item in self._scan()]
        except (ClientError, BotoCoreError) as exc:
            raise self._error("Scan", exc) from exc
        return sorted(records, key=lambda r: r.rule)

    def _scan(self) -> Iterator[Mapping[str, Any]]:
        paginator = self.client.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table_name, ConsistentRead=True):
            yield from page.get("Items", [])

    def _error(self, operation: str, exc: BaseException) -> StateStoreError:
        code = _code(exc)
        if code in ("AccessDeniedException", "AccessDenied"):
            hint = f"; the function's role needs dynamodb:{operation} on table {self.table_name}"
        elif code == "ResourceNotFoundException":
            hint = f"; table {self.table_name!r} does not exist here (check STATE_TABLE and the region)"
        else:
            hint = ""
        return StateStoreError(f"DynamoDB {operation} on {self.table_name} failed: {exc}{hint}")


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


def _acquire_refusal(rule_name: str, slot: str, now: float, old: Mapping[str, Any]) -> str:
    last = _s(old, "last_slot")
    if last is not None and last >= slot:
        which = "was already taken" if last == slot else f"is older than slot {last}, already taken"
        return f"rule {rule_name}: schedule slot {slot} {which} (duplicate or overlapping invocation)"
    holder = _s(old, "lease_owner")
    expires = _float(old, "lease_expires")
    if holder is not None and expires is not None:
        return f"rule {rule_name}: lease held by {holder} for another {max(expires - now, 0.0):.1f}s"
    return f"rule {rule_name}: lease not available"


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
    )


def _record(item: Mapping[str, Any]) -> StateRecord:
    return StateRecord(
        rule=_s(item, PARTITION_KEY) or "",
        state=_stored_state(item),
        lease_owner=_s(item, "lease_owner"),
        lease_expires=_float(item, "lease_expires"),
        last_slot=_s(item, "last_slot"),
        expires_at=_int(item, TTL_ATTRIBUTE),
    )
