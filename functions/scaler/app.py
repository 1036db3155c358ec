"""Scaler function: one evaluation slot of one shard per invocation (a schedule firing or a slot message)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ampscaler.errors import AmpscalerError
from ampscaler.runtime import ScalerApp

logger = Logger()


def _init() -> ScalerApp | None:
    # Built in Lambda's init phase, so its cost does not eat into the first slot, then reused
    # while the execution environment stays warm: the rule cache, the states of steady rules,
    # the EKS token and cluster connections survive between invocations. A configuration error
    # is raised by the first invocation instead, where it is logged and alarmed.
    try:
        return ScalerApp.from_env(logger)
    except AmpscalerError:
        return None


_app: ScalerApp | None = _init()


@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Scheduler's ``{"shardIndex": N, "scheduledTime": "<RFC 3339>"}``, or an SQS batch of slot messages."""
    global _app
    if _app is None:
        _app = ScalerApp.from_env(logger)
    return _app.handle(event, context)
