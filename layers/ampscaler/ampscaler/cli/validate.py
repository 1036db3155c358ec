"""``ampscaler validate FILE...``: schema, format and semantic checks of rule files, every error at once."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ampscaler.errors import RuleInvalidError
from ampscaler.rule import RULE_SCHEMA, ErrorList, build_rule, index_path, lint_rule, read_rule_documents

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

exit status: 0 when every file is valid (warnings allowed), 1 otherwise.
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
    parser.set_defaults(func=run)


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


def validate_file(path: str, default_cluster: str | None = None) -> FileReport:
    """Run every check on one file."""
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
        rule = build_rule(doc, errors, default_cluster=default_cluster)
        report.errors.extend(prefix + e for e in errors.items)
        if rule is None:
            continue
        # The parser accepted it, so any schema error is a disagreement worth showing.
        report.errors.extend(f"{prefix}schema: {e}" for e in schema_errors(doc))
        lint_errors, lint_warnings = lint_rule(rule)
        report.errors.extend(prefix + e for e in lint_errors)
        report.warnings.extend(prefix + w for w in lint_warnings)
        report.rules.append(rule.name)
    return report


def run(args: argparse.Namespace) -> int:
    """Validate every file and print the reports; 1 when any file is invalid."""
    reports = [validate_file(path, args.cluster) for path in args.files]
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
