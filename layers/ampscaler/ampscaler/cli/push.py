"""``ampscaler push FILE...``: validate rule files, diff them against SSM, write the changed ones."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from ampscaler.adapters.rules_ssm import SsmRuleStore
from ampscaler.cli.common import (
    CommandError,
    add_cluster_option,
    add_prefix_option,
    aws_session,
    fail,
    rule_store,
)
from ampscaler.cli.formatting import unified_diff
from ampscaler.cli.validate import policy_from, validate_file
from ampscaler.errors import AmpscalerError, RuleInvalidError
from ampscaler.model import Rule
from ampscaler.policy import RulePolicy
from ampscaler.rule import load_rule_file, rule_to_document

EXAMPLES = [
    "ampscaler push rules/*.yaml --dry-run             # show what would change in SSM",
    "ampscaler push rules/web.yaml --cluster prod      # validate, diff and write",
]

HELP_EPILOG = """\
Every file is checked exactly as `ampscaler validate` checks it. If any rule is invalid nothing
is written. Each rule is written to <prefix><rule name> (the rule's "name", else
<cluster>/<namespace>/<target name>) as canonical pretty JSON: every default spelled out, so SSM
shows what the scaler runs and a YAML and a JSON file of the same rule store the same text.
The parameter is a String, overwritten, tagged target=<Kind>/<namespace>/<name> and
cluster=<cluster>. A rule whose stored document already equals the new one is left alone.

exit status: 0 when every rule is written or unchanged, 1 on invalid files or a failed write.
"""


@dataclass
class PlannedRule:
    """One rule to push: where it goes, what is there now and what will be written."""

    file: str
    rule: Rule
    parameter: str
    document: dict[str, Any]
    current: str | None
    action: str  # create | update | unchanged
    diff: str
    version: int | None = None
    written: bool = False


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``push`` command."""
    parser = subparsers.add_parser(
        "push",
        help="validate rule files, show the diff against SSM and write them",
        description="Validate rule files, show a unified diff against SSM Parameter Store, then write.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="rule files (.json, .yaml, .yml)")
    add_prefix_option(parser)
    add_cluster_option(parser)
    parser.add_argument("--dry-run", action="store_true", help="show the diff only, write nothing")
    parser.set_defaults(func=run)


def canonical_text(document: Any) -> str:
    """The text push writes and diffs: JSON indented by 2, keys in the document's order."""
    return json.dumps(document, indent=2) + "\n"


def _normalized(value: str) -> tuple[str, Any]:
    """Stored text as it is diffed (re-indented when it is JSON) and its decoded value (None if not JSON)."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value, None
    return canonical_text(decoded), decoded


def read_current(store: SsmRuleStore, parameter: str) -> str | None:
    """The stored value of ``parameter``, None when it does not exist.

    ``SsmRuleStore.load_rule`` returns the parsed rule only, and the diff needs the raw text.

    Raises
    ------
    CommandError
        SSM could not be read (the message names the IAM action).
    """
    try:
        return str(store.client.get_parameter(Name=parameter, WithDecryption=False)["Parameter"]["Value"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise CommandError(f"cannot read {parameter}: {exc} (needs ssm:GetParameter)") from exc
    except BotoCoreError as exc:
        raise CommandError(f"cannot read {parameter}: {exc}") from exc


def load_files(
    paths: list[str], cluster: str | None, policy: RulePolicy | None = None
) -> tuple[list[tuple[str, Rule]], list[str]]:
    """Every rule in ``paths`` with the file it came from, and every error (``file: problem``).

    The checks are ``validate``'s (``policy``: the operator's blast radius); rules are returned
    only when there is no error at all, and two rules with the same name (one parameter) are an
    error.
    """
    errors: list[str] = []
    for path in paths:
        report = validate_file(path, cluster, policy)
        errors.extend(f"{path}: {e}" for e in report.errors)
    if errors:
        return [], errors
    rules: list[tuple[str, Rule]] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            for rule in load_rule_file(path, default_cluster=cluster, policy=policy):
                if rule.name in seen:
                    errors.append(f"{path}: rule {rule.name!r} is also defined in {seen[rule.name]}")
                    continue
                seen[rule.name] = path
                rules.append((path, rule))
        except RuleInvalidError as exc:  # validate_file passed, so only a file changed meanwhile
            errors.extend(f"{path}: {e}" for e in exc.errors)
        except OSError as exc:
            errors.append(f"{path}: cannot read: {exc.strerror or exc}")
    return ([] if errors else rules), errors


def plan(store: SsmRuleStore, rules: list[tuple[str, Rule]]) -> list[PlannedRule]:
    """Compare each rule's canonical document with what SSM holds.

    Raises
    ------
    CommandError
        SSM could not be read.
    """
    planned: list[PlannedRule] = []
    for path, rule in rules:
        parameter = store.parameter_name(rule.name)
        document = rule_to_document(rule)
        new_text = canonical_text(document)
        current = read_current(store, parameter)
        if current is None:
            action, old_text = "create", None
        else:
            old_text, decoded = _normalized(current)
            action = "unchanged" if decoded == document else "update"
        diff = "" if action == "unchanged" else unified_diff(old_text, new_text, parameter)
        planned.append(PlannedRule(path, rule, parameter, document, current, action, diff))
    return planned


def run(args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Validate, diff, write; return the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        policy = policy_from(args)
    except ValueError as exc:
        return fail("push", exc, err)
    rules, errors = load_files(list(args.files), args.cluster, policy)
    if errors:
        for line in errors:
            print(f"  error: {line}", file=err)
        return fail("push", f"{len(errors)} validation error(s); nothing was written", err)
    try:
        store = rule_store(args, aws_session(args), history=False)
        planned = plan(store, rules)
    except AmpscalerError as exc:
        return fail("push", exc, err)

    failure: str | None = None
    if not args.dry_run:
        for item in planned:
            if item.action == "unchanged":
                continue
            try:
                item.version = store.put_rule(item.rule.name, canonical_text(item.document))
                item.written = True
            except AmpscalerError as exc:
                # Stop at the first refusal: the rest would most likely fail the same way.
                failure = f"{item.parameter}: {exc}"
                break
    _print(planned, args, out)
    if failure is not None:
        written = sum(1 for p in planned if p.written)
        return fail("push", f"{failure} ({written} rule(s) written before the failure)", err)
    return 0


def _outcome(item: PlannedRule, dry_run: bool) -> str:
    if item.action == "unchanged":
        return "unchanged"
    if dry_run:
        return f"would {item.action}"
    if not item.written:
        return "not written"
    return "created" if item.action == "create" else "updated"


def _print(planned: list[PlannedRule], args: argparse.Namespace, out: TextIO) -> None:
    if getattr(args, "output", "table") == "json":
        doc = [
            {
                "rule": p.rule.name,
                "file": p.file,
                "parameter": p.parameter,
                "action": p.action,
                "result": _outcome(p, args.dry_run),
                "version": p.version,
                "diff": p.diff,
            }
            for p in planned
        ]
        print(json.dumps(doc, indent=2), file=out)
        return
    for p in planned:
        if p.diff:
            out.write(p.diff)
        outcome = _outcome(p, args.dry_run)
        version = f" (version {p.version})" if p.version is not None else ""
        print(f"{p.parameter}: {outcome}{version}", file=out)
    changed = sum(1 for p in planned if p.action != "unchanged")
    if args.dry_run:
        print(f"dry run: {changed} of {len(planned)} rule(s) would change; nothing written", file=out)
