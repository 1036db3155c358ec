"""``ampscaler validate FILE...``: schema, format and semantic checks of rule files, every error at once."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ampscaler.documents import MAX_RULE_BYTES
from ampscaler.errors import RuleInvalidError
from ampscaler.policy import (
    ALLOWED_CLUSTERS_ENV,
    ALLOWED_NAMESPACES_ENV,
    MAX_REPLICAS_CEILING_ENV,
    RulePolicy,
    parse_ceiling,
    split_list,
)
from ampscaler.rule import (
    RULE_SCHEMA,
    ErrorList,
    build_rule,
    index_path,
    lint_document,
    lint_rule,
    read_rule_documents,
    rule_to_document,
)

EXAMPLES = [
    "ampscaler validate examples/rules/*.yaml        # check rule files before pushing them",
    "ampscaler validate --output json rule.json",
]

HELP_EPILOG = """\
checks, in order:
  format    every field against the rule format (docs/rules.md): unknown fields, types,
            ranges and the HPA API server's limits, with the JSON path of each problem
  schema    docs/rule.schema.json (reported only where it disagrees with the format check)
  semantic  PromQL structure -- a light check only: balanced (), [], {} and closed quotes,
            not a full parse; a Pods query must group by its podLabel (sum by (pod) (...));
            plus warnings for settings that have no effect (they do not fail validation)
  policy    the operator's blast radius, as the scaler applies it: $ALLOWED_NAMESPACES,
            $ALLOWED_CLUSTERS and $MAX_REPLICAS_CEILING (or the flags below); system
            namespaces (kube-*, amazon-*) only when listed explicitly
  size      the rule as push writes it fits one SSM parameter (8 KiB)

exit status: 0 when every file is valid (warnings allowed), 1 otherwise, 2 for usage errors.
"""


@dataclass
class FileReport:
    """What ``validate`` found in one file."""

    file: str
    rules: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` command."""
    parser = subparsers.add_parser(
        "validate",
        help="check rule files (.json, .yaml, .yml) and print every problem",
        description="Validate rule files: format, JSON Schema and semantic checks.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="rule files; a YAML file may hold several documents"
    )
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        default=None,
        help="cluster for rules whose target omits it (what the scaler's CLUSTER_NAME provides)",
    )
    parser.add_argument(
        "--allowed-namespaces",
        metavar="NS,...",
        default=None,
        help=f"namespaces rules may target (default: ${ALLOWED_NAMESPACES_ENV}; empty: any but system ones)",
    )
    parser.add_argument(
        "--allowed-clusters",
        metavar="NAME,...",
        default=None,
        help=f"clusters rules may target (default: ${ALLOWED_CLUSTERS_ENV}; empty: any)",
    )
    parser.add_argument(
        "--max-replicas-ceiling",
        metavar="N",
        type=_ceiling_arg,
        default=None,
        help=f"largest replica count a rule may set (default: ${MAX_REPLICAS_CEILING_ENV} or 1000)",
    )
    parser.set_defaults(func=run)


def _ceiling_arg(text: str) -> int:
    try:
        return parse_ceiling(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace(f"{MAX_REPLICAS_CEILING_ENV}=", "")) from None


def policy_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> RulePolicy:
    """The rule policy: flags first, then the scaler's environment variables, then the defaults.

    Raises
    ------
    ValueError
        ``$MAX_REPLICAS_CEILING`` is malformed.
    """
    base = RulePolicy.from_env(os.environ if env is None else env)
    namespaces = getattr(args, "allowed_namespaces", None)
    clusters = getattr(args, "allowed_clusters", None)
    ceiling = getattr(args, "max_replicas_ceiling", None)
    return RulePolicy(
        allowed_namespaces=base.allowed_namespaces if namespaces is None else split_list(namespaces),
        allowed_clusters=base.allowed_clusters if clusters is None else split_list(clusters),
        max_replicas_ceiling=base.max_replicas_ceiling if ceiling is None else ceiling,
    )


def _json_path(parts: Iterable[Any]) -> str:
    path = ""
    for part in parts:
        path = index_path(path, part) if isinstance(part, int) else (f"{path}.{part}" if path else str(part))
    return path


def schema_errors(doc: object) -> list[str]:
    """JSON Schema errors of one raw document as ``path: message``; [] when jsonschema is missing."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema ships with the dev install
        return []
    validator = jsonschema.Draft202012Validator(RULE_SCHEMA)
    return [
        f"{_json_path(e.absolute_path) or '(document)'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]


def validate_file(
    path: str, default_cluster: str | None = None, policy: RulePolicy | None = None
) -> FileReport:
    """Run every check on one file; every problem of every document is reported at once.

    Parameters
    ----------
    path
        A .json, .yaml or .yml file.
    default_cluster
        What the scaler's CLUSTER_NAME gives rules whose target omits the cluster.
    policy
        The operator's blast radius; None is the default policy (``ampscaler.rule.DEFAULT_POLICY``).

    Returns
    -------
    FileReport
        Rules found, errors and warnings; never raises for any file content.
    """
    report = FileReport(file=path)
    try:
        docs = read_rule_documents(path)
    except RuleInvalidError as exc:
        report.errors.extend(exc.errors)
        return report
    except OSError as exc:
        report.errors.append(f"(file): cannot read: {exc.strerror or exc}")
        return report
    for number, doc in enumerate(docs, start=1):
        prefix = f"document {number}: " if len(docs) > 1 else ""
        errors = ErrorList()
        rule = build_rule(doc, errors, default_cluster=default_cluster, policy=policy)
        report.errors.extend(prefix + e for e in errors.items)
        # PromQL and Pods-grouping problems are reported whatever else is wrong.
        report.errors.extend(prefix + e for e in lint_document(doc))
        if rule is None:
            continue
        # The parser accepted it, so any schema error is a disagreement worth showing.
        report.errors.extend(f"{prefix}schema: {e}" for e in schema_errors(doc))
        _, lint_warnings = lint_rule(rule)
        report.warnings.extend(prefix + w for w in lint_warnings)
        size = len((json.dumps(rule_to_document(rule), indent=2) + "\n").encode("utf-8"))
        if size > MAX_RULE_BYTES:
            report.errors.append(
                f"{prefix}(document): as push writes it (every default spelled out) the rule is {size} "
                f"bytes; one SSM parameter holds at most {MAX_RULE_BYTES}"
            )
            continue
        report.rules.append(rule.name)
    return report


def run(args: argparse.Namespace) -> int:
    """Validate every file and print the reports; 1 when any file is invalid."""
    try:
        policy = policy_from(args)
    except ValueError as exc:
        print(f"ampscaler validate: error: {exc}", file=sys.stderr)
        return 2
    reports = [validate_file(path, args.cluster, policy) for path in args.files]
    if args.output == "json":
        print(
            json.dumps(
                {
                    "valid": all(r.valid for r in reports),
                    "files": [
                        {
                            "file": r.file,
                            "valid": r.valid,
                            "rules": r.rules,
                            "errors": r.errors,
                            "warnings": r.warnings,
                        }
                        for r in reports
                    ],
                },
                indent=2,
            )
        )
    else:
        for r in reports:
            if r.valid:
                names = ", ".join(r.rules)
                print(f"{r.file}: valid ({len(r.rules)} rule{'s' if len(r.rules) != 1 else ''}: {names})")
            else:
                print(f"{r.file}: INVALID ({len(r.errors)} error{'s' if len(r.errors) != 1 else ''})")
            for e in r.errors:
                print(f"  error: {e}")
            for w in r.warnings:
                print(f"  warning: {w}")
    return 0 if all(r.valid for r in reports) else 1
