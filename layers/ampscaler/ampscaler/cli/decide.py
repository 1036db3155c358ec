"""``ampscaler decide``: one decide input document in, one decision document out (the replay contract)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ampscaler.contract import DecideInputError, decide_document, dumps

EXAMPLES = [
    "ampscaler decide --input decision-input.json     # replay one logged decision",
    "ampscaler decide < decision-input.json",
]

EXIT_OK = 0
EXIT_INVALID_INPUT = 2

HELP_EPILOG = """\
The input is the document the scaler Lambda logs with every decision (see docs/decide.md):
  {"rule": {...}, "now": 1700000000.0, "scale": {"specReplicas": 3, "statusReplicas": 3},
   "pods": [...], "metrics": [{"name": "rps", "podValues": {"p0": 20.0}}], "state": null}
The output is the decision as one line of canonical JSON, byte-identical to the logged one.

exit status:
  0  a decision was made (whatever it is, including "none")
  2  the input is invalid: {"error": ..., "details": ["json.path: message", ...]} on stdout
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``decide`` command."""
    parser = subparsers.add_parser(
        "decide",
        help="evaluate one decide input document (replay a logged decision)",
        description="Run the HPA engine on one JSON input and print the decision as JSON. "
        "--output is ignored: the contract is always JSON.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--input",
        "-i",
        metavar="FILE",
        default="-",
        help="input document (default: standard input)",
    )
    parser.set_defaults(func=run)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # A duplicated key would silently drop one of the two values.
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _fail(error: str, details: list[str], code: int) -> int:
    print(dumps({"error": error, "details": details}))
    return code


def run(args: argparse.Namespace) -> int:
    """Read, decide, print; return the exit status."""
    try:
        if args.input == "-":
            text = sys.stdin.read()
        else:
            with open(args.input, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as exc:
        return _fail("cannot read input", [f"{args.input}: {exc.strerror or exc}"], EXIT_INVALID_INPUT)
    try:
        doc = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        return _fail("invalid JSON", [f"line {exc.lineno} column {exc.colno}: {exc.msg}"], EXIT_INVALID_INPUT)
    except ValueError as exc:
        return _fail("invalid JSON", [str(exc)], EXIT_INVALID_INPUT)
    try:
        output = decide_document(doc)
    except DecideInputError as exc:
        return _fail("invalid decide input", exc.errors, EXIT_INVALID_INPUT)
    print(dumps(output))
    return EXIT_OK
