"""Domain exceptions raised by adapters; each message says what to do about it."""

from __future__ import annotations


class AmpscalerError(Exception):
    """Base class for every error ampscaler raises on purpose."""


class RuleInvalidError(AmpscalerError):
    """A rule document failed validation; ``errors`` holds every problem with its JSON path."""

    def __init__(self, errors: list[str], name: str | None = None) -> None:
        self.errors = list(errors)
        self.name = name
        head = f"rule {name!r} is invalid" if name else "rule is invalid"
        super().__init__(f"{head}: " + "; ".join(self.errors))


class MetricQueryError(AmpscalerError):
    """A metric query failed or returned something unusable."""


class ScaleTargetError(AmpscalerError):
    """Reading or patching the target through the Kubernetes API failed.

    ``status`` is the HTTP status when the API server answered, else None.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConflictError(ScaleTargetError):
    """The scale subresource changed since it was read (HTTP 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=409)


class LeaseHeldError(AmpscalerError):
    """Another invocation holds the rule's lease, or already acted on this schedule slot."""


class StateStoreError(AmpscalerError):
    """Reading or writing the durable state failed."""


class DeadlineExceededError(AmpscalerError):
    """A call was not started, or was cut short, because the caller's deadline had passed."""


class SlotTakenError(LeaseHeldError):
    """The shard's fence for this slot could not be taken: the slot (or a later one) already ran.

    ``taken_by`` is the slot that holds the fence.
    """

    def __init__(self, message: str, taken_by: str | None = None) -> None:
        super().__init__(message)
        self.taken_by = taken_by


class FenceLostError(StateStoreError):
    """A later slot took the shard's fence: this evaluation may no longer patch or save."""
