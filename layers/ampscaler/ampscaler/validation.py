"""The rule validator function's logic: one Parameter Store change in, one verdict out.

A bad edit becomes visible (log record, ``RuleInvalid`` metric, alarm) within seconds instead of
at the scaler's next tick; the scaler itself keeps running the last valid version.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from ampscaler.adapters.audit import PowertoolsAuditSink
from ampscaler.adapters.rules_ssm import SsmRuleStore
from ampscaler.errors import AmpscalerError
from ampscaler.settings import Settings


class RuleValidatorApp:
    """Validates the rule named by a "Parameter Store Change" event."""

    def __init__(self, rules: SsmRuleStore, audit: PowertoolsAuditSink, logger: Logger) -> None:
        self.rules = rules
        self.audit = audit
        self.logger = logger

    @classmethod
    def from_env(cls, logger: Logger) -> RuleValidatorApp:
        """The app as Lambda runs it."""
        settings = Settings.from_env()
        rules = SsmRuleStore.from_settings(settings)
        # No cache: the validator must read the version that just changed.
        rules.cache_seconds = 0
        audit = PowertoolsAuditSink(logger, service=os.environ.get("POWERTOOLS_SERVICE_NAME") or None)
        return cls(rules, audit, logger)

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the changed parameter; returns ``{"rule", "parameter", "status", "errors"}``.

        status is ``valid``, ``invalid``, ``deleted`` or ``ignored`` (outside the prefix).
        """
        detail = event.get("detail")
        if not isinstance(detail, Mapping) or not isinstance(detail.get("name"), str):
            raise AmpscalerError("not a Parameter Store Change event: detail.name is missing")
        parameter = str(detail["name"])
        operation = str(detail.get("operation", ""))
        prefix = self.rules.prefix
        if not parameter.startswith(prefix):
            self.logger.info("parameter outside the rule prefix; ignored", extra={"parameter": parameter})
            return {"parameter": parameter, "status": "ignored", "errors": []}
        name = self.rules.rule_name(parameter)
        if operation == "Delete":
            self.logger.info(
                "rule deleted; the scaler stops evaluating it",
                extra={"event": "ruleDeleted", "rule": name, "parameter": parameter},
            )
            return {"rule": name, "parameter": parameter, "status": "deleted", "errors": []}
        loaded = self.rules.load_rule(name)
        if loaded is None:
            return {"rule": name, "parameter": parameter, "status": "deleted", "errors": []}
        if loaded.errors:
            self.audit.rule_invalid(loaded)
            # The fleet-wide RuleInvalid count is what the alarm watches.
            self.audit.flush()
            return {
                "rule": name,
                "parameter": parameter,
                "version": loaded.version,
                "status": "invalid",
                "errors": list(loaded.errors),
            }
        self.logger.info(
            "rule valid",
            extra={
                "event": "ruleValid",
                "rule": name,
                "parameter": parameter,
                "parameterVersion": loaded.version,
            },
        )
        return {
            "rule": name,
            "parameter": parameter,
            "version": loaded.version,
            "status": "valid",
            "errors": [],
        }
