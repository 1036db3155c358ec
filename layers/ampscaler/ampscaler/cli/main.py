"""The ``ampscaler`` command: builds the argument parser from the command modules and dispatches.

Each command lives in ``ampscaler/cli/<command>.py`` and exposes ``register(subparsers)``, which
adds its sub-parser and sets ``func`` (``(argparse.Namespace) -> int``, the exit code) as a
default. A module may also define ``EXAMPLES`` (lines for ``ampscaler --help``). To add a command,
append its module to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import io
import sys
from collections.abc import Callable, Sequence
from typing import cast

# Order is the order of ``ampscaler --help``.
COMMAND_MODULES: list[str] = [
    "ampscaler.cli.validate",
    "ampscaler.cli.decide",
    "ampscaler.cli.importer",
    "ampscaler.cli.backtest",
    "ampscaler.cli.push",
    "ampscaler.cli.get",
    "ampscaler.cli.describe",
    "ampscaler.cli.explain",
]

OUTPUT_FORMATS = ("table", "json")

DESCRIPTION = """\
ampscaler: Kubernetes HPA semantics for EKS workloads, evaluated by a Lambda function on
Amazon Managed Service for Prometheus metrics. Rules live in SSM Parameter Store."""


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command understands.

    On sub-parsers the defaults are suppressed so ``ampscaler --output json validate f`` and
    ``ampscaler validate --output json f`` both work without the sub-parser resetting the value.
    """
    group = parser.add_argument_group("global options")

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group.add_argument(
        "--output",
        "-o",
        choices=OUTPUT_FORMATS,
        default=default("table"),
        help="output format for commands that print data (default: table)",
    )
    group.add_argument("--region", default=default(None), help="AWS region (default: the AWS SDK's chain)")
    group.add_argument(
        "--profile", default=default(None), help="AWS named profile (default: the AWS SDK's chain)"
    )


def _version() -> str:
    # Distribution metadata rather than ampscaler.__version__: an editable install made before
    # the package had an __init__.py resolves ``ampscaler`` as a namespace package.
    try:
        return importlib.metadata.version("ampscaler")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The full ``ampscaler`` parser with every command in ``COMMAND_MODULES`` registered."""
    modules = [importlib.import_module(name) for name in COMMAND_MODULES]
    examples: list[str] = []
    for module in modules:
        lines = getattr(module, "EXAMPLES", ())
        examples.extend(lines.splitlines() if isinstance(lines, str) else lines)
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples) if examples else None
    parser = argparse.ArgumentParser(
        prog="ampscaler",
        description=DESCRIPTION,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ampscaler {_version()}")
    _add_global_options(parser, suppress=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in modules:
        register = cast(
            "Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], object]", module.register
        )
        register(subparsers)
    for sub in subparsers.choices.values():
        _add_global_options(sub, suppress=True)
    return parser


EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


def _tolerant_streams() -> None:
    """Print what cannot be encoded (a lone surrogate in a file name) escaped instead of crashing."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ampscaler`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    Every command answers bad input with a message and its documented exit code; an exception
    that still escapes one is a bug, reported on one line (exit 1) rather than as a traceback.
    """
    _tolerant_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # the last line of defence, see the docstring
        from ampscaler.rule import show

        print(
            f"ampscaler {args.command}: error: internal error {type(exc).__name__}: "
            f"{show(str(exc), 200)} (please report this)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
