"""Runs one hostile input through the real entry points and classifies the answer.

An answer is *clean* when the entry point returned normally with its documented outcome: a rule
or ``RuleInvalidError`` from ``parse_rule``, exit 0/1 from ``validate``, exit 0/2 with a JSON body
from ``decide``, exit 0/1 with a message from ``import``. Anything else (an exception escaping, an
undocumented exit code, a message that is not one bounded line) is a *crash*.

``python -m tests.fuzz.harness`` runs the whole corpus in this process and prints one JSON line
per case; the suite starts it under a memory cap like the Lambda's.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ampscaler.cli import decide as decide_cli
from ampscaler.cli import importer as import_cli
from ampscaler.cli import validate as validate_cli
from ampscaler.errors import RuleInvalidError
from ampscaler.rule import parse_rule

# What a message may cost: one line, bounded whatever the input held.
MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class Outcome:
    """What one entry point answered."""

    entry: str
    clean: bool
    detail: str


def _bounded(lines: list[str]) -> bool:
    return all(len(line) <= MAX_MESSAGE_CHARS for line in lines)


def check_parse_rule(data: bytes) -> Outcome:
    """The Lambda's path: SSM hands the loader a str (only valid Unicode can be stored)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # still a str: the loader must cope with any str
    try:
        rule = parse_rule(text, name="fuzz", default_cluster="fuzz")
    except RuleInvalidError as exc:
        ok = bool(exc.errors) and _bounded(exc.errors) and all("\n" not in e for e in exc.errors)
        return Outcome("parse_rule", ok, f"invalid: {exc.errors[0][:120] if exc.errors else '(no errors)'}")
    return Outcome("parse_rule", True, f"valid: {rule.name}")


def _run_cli(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = func(args)
    return code, out.getvalue(), err.getvalue()


def check_validate(path: Path) -> Outcome:
    """``ampscaler validate --output json FILE``: exit 0 or 1 and a JSON report."""
    args = argparse.Namespace(
        files=[str(path)],
        cluster="fuzz",
        output="json",
        allowed_namespaces=None,
        allowed_clusters=None,
        max_replicas_ceiling=None,
    )
    code, out, _ = _run_cli(validate_cli.run, args)
    report = json.loads(out)["files"][0]
    ok = code in (0, 1) and (code == 0) == report["valid"] and _bounded(report["errors"])
    return Outcome(f"validate{path.suffix}", ok, f"exit {code}: {(report['errors'] or ['valid'])[0][:120]}")


def check_decide(path: Path) -> Outcome:
    """``ampscaler decide --input FILE``: exit 0 with a decision or 2 with ``{"error", "details"}``."""
    code, out, _ = _run_cli(decide_cli.run, argparse.Namespace(input=str(path)))
    answer = json.loads(out)
    if code == 2:
        ok = set(answer) == {"error", "details"} and _bounded(answer["details"])
        return Outcome("decide", ok, f"exit 2: {answer['error']}: {answer['details'][:1]}")
    return Outcome("decide", code == 0 and "desiredReplicas" in answer, f"exit {code}")


def check_import(path: Path) -> Outcome:
    """``ampscaler import FILE``: exit 0, or exit 1 with the reason on stderr; no internal error."""
    args = argparse.Namespace(
        files=[str(path)], adapter_config=None, cluster=None, out_dir=None, output="json"
    )
    code, _, err = _run_cli(import_cli.run, args)
    ok = code in (0, 1) and "internal error" not in err and (code == 0 or bool(err.strip()))
    return Outcome("import", ok, f"exit {code}: {err.strip()[:120]}")


def check_adapter_config(path: Path) -> Outcome:
    """``ampscaler import --adapter-config FILE``: a bad configuration stops with exit 1 and a reason."""
    manifest = path.with_name("manifest.yaml")
    manifest.write_text("kind: HorizontalPodAutoscaler\n", encoding="utf-8")
    args = argparse.Namespace(
        files=[str(manifest)], adapter_config=str(path), cluster=None, out_dir=None, output="json"
    )
    code, _, err = _run_cli(import_cli.run, args)
    ok = code in (0, 1) and "internal error" not in err and bool(err.strip())
    return Outcome("adapter-config", ok, f"exit {code}: {err.strip()[:120]}")


def check_all(data: bytes, directory: Path) -> list[Outcome]:
    """Every entry point on ``data``; an exception escaping one of them is a crash, not a raise."""
    outcomes: list[Outcome] = []
    checks: list[tuple[str, Callable[[], Outcome]]] = [("parse_rule", lambda: check_parse_rule(data))]
    for suffix in (".yaml", ".json"):
        path = directory / f"case{suffix}"
        path.write_bytes(data)
        checks.append((f"validate{suffix}", functools.partial(check_validate, path)))
    path = directory / "input.json"
    path.write_bytes(data)
    checks.append(("decide", lambda: check_decide(path)))
    manifests = directory / "manifests.yaml"
    manifests.write_bytes(data)
    checks.append(("import", lambda: check_import(manifests)))
    adapter = directory / "adapter.yaml"
    adapter.write_bytes(data)
    checks.append(("adapter-config", lambda: check_adapter_config(adapter)))
    for entry, check in checks:
        try:
            outcomes.append(check())
        except BaseException as exc:  # the point of the harness: nothing may escape
            outcomes.append(Outcome(entry, False, f"{type(exc).__name__}: {str(exc)[:200]}"))
    return outcomes


def main() -> int:
    """Run the corpus; one JSON line per case, exit 0 when every answer is clean."""
    from tests.fuzz.corpus import CORPUS

    crashes = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in CORPUS.items():
            for outcome in check_all(data, Path(tmp)):
                crashes += not outcome.clean
                line = {
                    "case": name,
                    "entry": outcome.entry,
                    "clean": outcome.clean,
                    "detail": outcome.detail,
                }
                print(json.dumps(line), flush=True)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
