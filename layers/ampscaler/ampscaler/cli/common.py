"""What the operator commands share: the AWS session from --region/--profile, the rule and state stores."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from ampscaler.adapters.rules_ssm import SsmRuleStore
from ampscaler.adapters.state_dynamodb import DynamoDbStateStore
from ampscaler.errors import AmpscalerError
from ampscaler.policy import RulePolicy
from ampscaler.settings import DEFAULT_RULE_PREFIX, Settings

if TYPE_CHECKING:
    import boto3

DEFAULT_STATE_TABLE = Settings().state_table
STATE_TABLE_ENV = "STATE_TABLE"
RULE_PREFIX_ENV = "RULE_PREFIX"
CLUSTER_NAME_ENV = "CLUSTER_NAME"


class CommandError(AmpscalerError):
    """A command cannot do what was asked; the message is the one-line reason it prints."""


def add_prefix_option(parser: argparse.ArgumentParser) -> None:
    """``--prefix``: the SSM hierarchy holding the rules."""
    parser.add_argument(
        "--prefix",
        metavar="PATH",
        default=os.environ.get(RULE_PREFIX_ENV) or DEFAULT_RULE_PREFIX,
        help=f"SSM parameter path holding the rules (default: $RULE_PREFIX or {DEFAULT_RULE_PREFIX})",
    )


def add_table_option(parser: argparse.ArgumentParser) -> None:
    """``--table``: the state table the scaler writes (the stack output StateTableName)."""
    parser.add_argument(
        "--table",
        metavar="NAME",
        default=os.environ.get(STATE_TABLE_ENV) or DEFAULT_STATE_TABLE,
        help=(
            "DynamoDB state table: the stack output StateTableName "
            f"(default: $STATE_TABLE or {DEFAULT_STATE_TABLE})"
        ),
    )


def add_cluster_option(parser: argparse.ArgumentParser) -> None:
    """``--cluster``: what the scaler's CLUSTER_NAME gives rules whose target omits the cluster."""
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        default=os.environ.get(CLUSTER_NAME_ENV) or None,
        help="cluster for rules whose target omits it, as the scaler's CLUSTER_NAME (default: $CLUSTER_NAME)",
    )


def aws_session(args: argparse.Namespace) -> boto3.Session:
    """A boto3 Session on the standard credential chain, narrowed by ``--region``/``--profile``.

    Raises
    ------
    CommandError
        When the named profile does not exist.
    """
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session(
            region_name=getattr(args, "region", None) or None,
            profile_name=getattr(args, "profile", None) or None,
        )
    except BotoCoreError as exc:
        raise CommandError(f"AWS configuration: {exc}") from exc


def client(session: boto3.Session, service: str) -> Any:
    """A client of ``service`` from ``session``; it honours ``AWS_ENDPOINT_URL`` like Lambda does.

    Raises
    ------
    CommandError
        When no region is configured.
    """
    from botocore.exceptions import NoRegionError

    try:
        return session.client(service)  # type: ignore[call-overload]
    except NoRegionError as exc:
        raise CommandError("no AWS region: pass --region or set AWS_REGION / a profile region") from exc


def rule_store(args: argparse.Namespace, session: boto3.Session, *, history: bool = True) -> SsmRuleStore:
    """The rule store under ``--prefix``, uncached (a CLI run reads SSM once).

    Rules are judged by the operator's policy from the environment (``ALLOWED_NAMESPACES``,
    ``ALLOWED_CLUSTERS``, ``MAX_REPLICAS_CEILING``), as the scaler judges them.

    Raises
    ------
    CommandError
        When the prefix does not start and end with ``/``, or ``MAX_REPLICAS_CEILING`` is malformed.
    """
    prefix = getattr(args, "prefix", None) or DEFAULT_RULE_PREFIX
    try:
        policy = RulePolicy.from_env(os.environ)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    try:
        return SsmRuleStore(
            prefix,
            cache_seconds=0,
            default_cluster=getattr(args, "cluster", None) or None,
            client=client(session, "ssm"),
            recover_from_history=history,
            policy=policy,
        )
    except ValueError as exc:
        raise CommandError(f"--prefix: {exc}") from exc


def state_store(args: argparse.Namespace, session: boto3.Session) -> DynamoDbStateStore:
    """The state table named by ``--table``."""
    table = getattr(args, "table", None) or DEFAULT_STATE_TABLE
    return DynamoDbStateStore(table, client=client(session, "dynamodb"))


def fail(command: str, message: object, stream: TextIO | None = None) -> int:
    """Print ``ampscaler <command>: error: <message>`` on one line (stderr) and return exit status 1."""
    text = " ".join(str(message).split())
    print(f"ampscaler {command}: error: {text}", file=stream or sys.stderr)
    return 1


def warn(command: str, message: object, stream: TextIO | None = None) -> None:
    """Print ``ampscaler <command>: warning: <message>`` on stderr."""
    text = " ".join(str(message).split())
    print(f"ampscaler {command}: warning: {text}", file=stream or sys.stderr)
