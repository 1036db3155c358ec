"""Evaluation slots: which slots a scheduled invocation serves, and the slot messages on the queue.

A schedule fires once per ``schedule_interval_seconds`` (60) per shard. Rules are evaluated every
``evaluation_interval_seconds`` (15), so each firing covers several slots: the scheduled
invocation serves the first one itself and puts one delayed message per later slot on the slot
queue (SQS message timers), and each message invokes the function for exactly that slot. No
invocation sleeps between slots, so none is billed for waiting.

A slot is numbered ``floor(start / interval)``; its identifier is its start (unix seconds)
zero-padded to 12 digits, so identifiers compare as strings in time order (the state store's fence
relies on it) whatever the interval, and changing ``EVALUATION_INTERVAL_SECONDS`` keeps them moving
forward.
Pure: no clock reads, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ampscaler.errors import AmpscalerError

# SQS DelaySeconds accepts 0..900.
MAX_DELAY_SECONDS = 900
SLOT_MESSAGE_KIND = "ampscaler.slot"


@dataclass(frozen=True)
class Slot:
    """One evaluation slot of one shard."""

    shard: int
    index: int
    interval_seconds: int

    @property
    def id(self) -> str:
        """Fixed-width identifier (the start in unix seconds): the fencing token of the slot."""
        return slot_id(self.index * self.interval_seconds)

    @property
    def start(self) -> float:
        """Unix time the slot begins: the ``now`` of every evaluation in it."""
        return float(self.index * self.interval_seconds)

    @property
    def end(self) -> float:
        """Unix time the next slot begins; the slot's fence is held until then."""
        return float((self.index + 1) * self.interval_seconds)


def slot_id(start_seconds: int) -> str:
    """The identifier of the slot starting at unix time ``start_seconds`` (zero-padded to 12 digits)."""
    return f"{start_seconds:012d}"


def invocation_slots(
    scheduled_time: float, shard: int, interval_seconds: int, schedule_interval_seconds: int
) -> list[Slot]:
    """The slots one scheduled invocation covers: from its scheduled time until the next firing.

    The first is the slot containing ``scheduled_time``; Scheduler fires on the minute, so with
    the defaults that is four slots starting at :00, :15, :30 and :45.
    """
    first = int(scheduled_time // interval_seconds)
    count = max(1, schedule_interval_seconds // interval_seconds)
    return [Slot(shard, first + k, interval_seconds) for k in range(count)]


def delay_seconds(slot: Slot, now: float) -> int:
    """SQS ``DelaySeconds`` that delivers ``slot``'s message at (not before) its start.

    Rounded up: a message early by a fraction of a second would find the previous slot's fence
    still held; one late by under a second costs nothing.
    """
    return max(0, min(MAX_DELAY_SECONDS, math.ceil(slot.start - now)))


def slot_message(slot: Slot) -> str:
    """The queue message body that asks for ``slot`` to be evaluated."""
    return json.dumps(
        {
            "kind": SLOT_MESSAGE_KIND,
            "shardIndex": slot.shard,
            "slot": slot.index,
            "intervalSeconds": slot.interval_seconds,
        },
        separators=(",", ":"),
    )


def slot_from_message(body: str, shard_count: int) -> Slot:
    """Parse a slot message body; anything else is refused with what is wrong with it.

    Raises
    ------
    AmpscalerError
        The body is not a slot message of this stack (bad JSON, wrong kind, shard out of range).
    """
    if len(body) > 1024:
        raise AmpscalerError(f"slot message of {len(body)} characters is not one ampscaler sends")
    try:
        doc: Any = json.loads(body)
    except ValueError as exc:
        raise AmpscalerError(f"slot message is not JSON: {exc}") from None
    if not isinstance(doc, Mapping) or doc.get("kind") != SLOT_MESSAGE_KIND:
        raise AmpscalerError(f"not an ampscaler slot message (kind must be {SLOT_MESSAGE_KIND!r})")
    shard, index, interval = doc.get("shardIndex"), doc.get("slot"), doc.get("intervalSeconds")
    for name, value in (("shardIndex", shard), ("slot", index), ("intervalSeconds", interval)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise AmpscalerError(f"slot message: {name} must be a non-negative integer, got {value!r}")
    assert isinstance(shard, int) and isinstance(index, int) and isinstance(interval, int)
    if shard >= shard_count:
        raise AmpscalerError(f"slot message: shardIndex {shard} is not below SHARD_COUNT={shard_count}")
    if interval == 0 or index > 10**11:
        raise AmpscalerError("slot message: slot or intervalSeconds out of range")
    return Slot(shard, index, interval)


def due_in_slot(rule_interval_seconds: int | None, slot: Slot) -> bool:
    """Whether a rule with its own evaluation interval is evaluated in ``slot``.

    A rule asking for every 60 s with 15 s slots is due in every fourth slot (slot numbers that are
    multiples of 4), decided by the slot alone so that no state has to be written to know it.
    """
    every = slots_per_evaluation(rule_interval_seconds, slot.interval_seconds)
    return slot.index % every == 0


def slots_per_evaluation(rule_interval_seconds: int | None, interval_seconds: int) -> int:
    """How many slots apart a rule's evaluations are (1 when it has no interval of its own)."""
    if not rule_interval_seconds or rule_interval_seconds <= interval_seconds:
        return 1
    return math.ceil(rule_interval_seconds / interval_seconds)


def last_due_slot(rule_interval_seconds: int | None, interval_seconds: int, at_or_before: int) -> int:
    """The latest slot number ``<= at_or_before`` in which the rule was due."""
    every = slots_per_evaluation(rule_interval_seconds, interval_seconds)
    return at_or_before - at_or_before % every
