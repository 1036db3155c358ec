"""Rule validator function: validates a rule the moment its SSM parameter changes."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ampscaler.validation import RuleValidatorApp

logger = Logger()
_app: RuleValidatorApp | None = None


@logger.inject_lambda_context(log_event=True, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge "Parameter Store Change" event for a parameter under the rule prefix."""
    global _app
    if _app is None:
        _app = RuleValidatorApp.from_env(logger)
    return _app.handle(event)
