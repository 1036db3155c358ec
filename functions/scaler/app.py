"""Scaler function: each scheduled invocation evaluates this shard's rules every 15 s until the next."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ampscaler.runtime import ScalerApp

logger = Logger()
# Built on the first invocation, then reused while the execution environment stays warm: the
# rule cache, the EKS token and cluster connections survive between invocations.
_app: ScalerApp | None = None


@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge Scheduler target: ``{"shardIndex": N, "scheduledTime": "<RFC 3339>"}``."""
    global _app
    if _app is None:
        _app = ScalerApp.from_env(logger)
    return _app.handle(event, context)
