"""``ampscaler decide``: one decide input document in, one decision document out (the replay contract)."""

from __future__ import annotations

import argparse

from ampscaler.contract import DecideInputError, decide_document, dumps
from ampscaler.documents import MAX_DECIDE_INPUT_BYTES, DocumentError, load_json, read_document_file

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
  2  the input is invalid or unreadable: {"error": ..., "details": [...]} on stdout
     (not UTF-8, over 4 MiB, not JSON, duplicate keys, NaN, nesting deeper than 64,
     integers over 40 digits, or fields out of range: "json.path: message")
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


def _fail(error: str, details: list[str], code: int) -> int:
    print(dumps({"error": error, "details": details}))
    return code


def run(args: argparse.Namespace) -> int:
    """Read, decide, print; return the exit status."""
    try:
        text = read_document_file(args.input, limit=MAX_DECIDE_INPUT_BYTES, what="input")
    except OSError as exc:
        return _fail("cannot read input", [f"{args.input}: {exc.strerror or exc}"], EXIT_INVALID_INPUT)
    except DocumentError as exc:
        return _fail("invalid input", [str(exc)], EXIT_INVALID_INPUT)
    try:
        doc = load_json(text)
    except DocumentError as exc:
        return _fail("invalid JSON", [str(exc)], EXIT_INVALID_INPUT)
    try:
        output = decide_document(doc)
    except DecideInputError as exc:
        return _fail("invalid decide input", exc.errors, EXIT_INVALID_INPUT)
    print(dumps(output))
    return EXIT_OK
