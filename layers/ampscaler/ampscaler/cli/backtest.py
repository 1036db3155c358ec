"""``ampscaler backtest``: replay a rule over Prometheus/AMP history and report what it would have done."""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ampscaler.adapters.amp import AmpMetricsSource, RangeSeries
from ampscaler.backtest.fetch import AmpRangeClient, RangeClient, fetch_history
from ampscaler.backtest.report import format_json, format_table, write_chart, write_csv
from ampscaler.backtest.simulate import (
    DEFAULT_STARTUP_DELAY_SECONDS,
    BacktestOptions,
    BacktestResult,
    TimeGrid,
    simulate,
)
from ampscaler.cli.common import add_prefix_option
from ampscaler.errors import AmpscalerError
from ampscaler.model import PrometheusSource, Rule
from ampscaler.quantity import quantity_decimal
from ampscaler.settings import Settings

# Lines for ``ampscaler --help`` (and this command's own epilog).
EXAMPLES = (
    "ampscaler backtest rule.json --from -24h --to now --url http://localhost:9090 --chart day.png",
    "ampscaler backtest shop/frontend --from 2024-05-01T00:00:00Z --to 2024-05-02T00:00:00Z "
    "--workspace-id ws-1234 --region eu-west-1 --csv frontend.csv",
    "ampscaler backtest rule.json --compare faster.json --from -6h --url http://localhost:9090 "
    "--chart cmp.png",
)

# Ten years: longer spans or steps are typos, and they keep float arithmetic exact enough.
MAX_SECONDS = 10 * 365 * 86400.0
MAX_UNIX_SECONDS = 1e11
# Evaluation points of one replay: 10 years at 5 min, or 1 year at 30 s.
MAX_GRID_POINTS = 1_100_000
# Prometheus resolves at most milliseconds.
MIN_STEP_SECONDS = 0.001
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NEGATIVE_VALUE_RE = re.compile(r"^-\d*\.?\d+((ms|s|m|h|d|w)(\d*\.?\d+(ms|s|m|h|d|w))*)?$")


def parse_duration(text: str) -> float:
    """Seconds in ``15s``, ``1h30m``, ``2d`` (Prometheus duration units) or a plain number of seconds.

    Raises
    ------
    ValueError
        When ``text`` is neither.
    """
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not 0 <= seconds <= MAX_SECONDS:
            raise ValueError(
                f"not a duration: {text[:40]!r} (use a number of seconds from 0 to {MAX_SECONDS:g})"
            )
        return seconds
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text or total > MAX_SECONDS:
        raise ValueError(f"not a duration: {text[:40]!r} (use e.g. 15s, 5m, 1h30m, 2d; at most 10 years)")
    return total


def parse_time(text: str, now: float) -> float:
    """Unix seconds from RFC3339 (``2024-05-01T12:00:00Z``), unix seconds, ``now``, ``-24h`` or ``now-24h``.

    Raises
    ------
    ValueError
        When ``text`` is none of these.
    """
    text = text.strip()
    if text == "now":
        return now
    if text.startswith(("now-", "-")):
        return now - parse_duration(text.removeprefix("now").removeprefix("-"))
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not 0 <= seconds <= MAX_UNIX_SECONDS:
            raise ValueError(
                f"not a time: {text[:40]!r} (unix seconds must be from 0 to {MAX_UNIX_SECONDS:g})"
            )
        return seconds
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use RFC3339 like 2024-05-01T12:00:00Z, unix seconds, now or -24h)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add ``backtest`` to the CLI."""
    parser = subparsers.add_parser(
        "backtest",
        help="replay a rule over metric history and report replicas, scale events and time above target",
        description=(
            "Fetch the rule's metrics with query_range and replay the rule through the engine at every\n"
            "step. Pods metrics conserve load: observed per-pod value x observed pod count is the demand,\n"
            "spread over the simulated ready pods (new pods take load after --startup-delay).\n"
            "Object/External metrics are replayed as observed. Resource (cpu/memory) metrics conserve\n"
            "usage like Pods metrics; their history is the default query over the pods named after the\n"
            "target, and every simulated pod requests --pod-requests. paused/dryRun are ignored: the\n"
            "replay shows the rule as if active."
        ),
        epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("rule", metavar="RULE|FILE", help="rule file (JSON/YAML) or rule name in SSM")
    parser.add_argument("--from", dest="start", required=True, help="RFC3339, unix seconds, now, -24h")
    parser.add_argument("--to", dest="end", default="now", help="same forms as --from (default now)")
    parser.add_argument("--step", default="15s", help="evaluation interval (default 15s)")
    parser.add_argument(
        "--compare", metavar="OTHER", help="second rule (file or SSM name) replayed alongside"
    )
    add_prefix_option(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help="Prometheus-compatible base URL, e.g. http://localhost:9090")
    source.add_argument("--workspace-id", help="AMP workspace id (SigV4-signed; needs --region)")
    parser.add_argument(
        "--startup-delay",
        default=f"{DEFAULT_STARTUP_DELAY_SECONDS:g}s",
        help="time from a scale-up until new pods take load (default 30s)",
    )
    parser.add_argument(
        "--initial-replicas", type=int, help="default: first observed pod count, else minReplicas"
    )
    parser.add_argument(
        "--pod-requests",
        metavar="RESOURCES",
        help="each simulated pod's requests for Resource metrics, e.g. cpu=500m,memory=256Mi "
        "(required for a Utilization target; a ContainerResource metric's container requests them)",
    )
    parser.add_argument("--csv", metavar="PATH", help="write one row per step (and rule) to PATH")
    parser.add_argument("--chart", metavar="PATH", help="write a PNG chart to PATH")
    parser.add_argument(
        "--progress", action="store_true", help="show the progress bar even when stderr is no TTY"
    )
    # argparse takes "-24h" for an option unless it looks like a negative number; widen that test
    # to durations so "--from -24h" works (this parser has no option that looks like one).
    # "--from=-24h" and "now-24h" work on any Python regardless.
    parser._negative_number_matcher = _NEGATIVE_VALUE_RE
    parser.set_defaults(func=run)
    return parser


class TextProgress:
    """A one-line ``[#####.....]`` bar on a stream, redrawn in place; silent when disabled."""

    def __init__(self, stream: TextIO, label: str, enabled: bool, width: int = 30) -> None:
        self.stream = stream
        self.label = label
        self.enabled = enabled
        self.width = width
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        filled = int(self.width * done / total)
        pct = 100.0 * done / total
        self.stream.write(
            f"\r{self.label:<9} [{'#' * filled}{'.' * (self.width - filled)}] {pct:5.1f}% {done}/{total}"
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class _CachingClient:
    """Memoizes range queries so ``--compare`` of rules sharing a query and source fetches it once."""

    def __init__(
        self, inner: RangeClient, key: str, cache: dict[tuple[str, ...], Sequence[RangeSeries]]
    ) -> None:
        self.inner = inner
        self.key = key
        self._cache = cache

    def query_range(self, query: str, start: float, end: float, step: float) -> Sequence[RangeSeries]:
        key = (self.key, query, repr(start), repr(end), repr(step))
        if key not in self._cache:
            self._cache[key] = self.inner.query_range(query, start, end, step)
        return self._cache[key]


def _option(args: argparse.Namespace, name: str) -> str | None:
    value = getattr(args, name, None)
    return str(value) if value else None


def _label(ref: str) -> str:
    path = Path(ref)
    return path.stem if path.is_file() else ref


def load_rule(ref: str, args: argparse.Namespace) -> Rule:
    """A rule from a file, else from SSM (``<--prefix><ref>``, or ``ref`` if it is a full path).

    Raises
    ------
    AmpscalerError
        The file holds no or several rules, the parameter is missing, or the rule is invalid.
    """
    path = Path(ref)
    if path.is_file():
        from ampscaler.rule import load_rule_file

        rules = load_rule_file(path)
        if len(rules) != 1:
            names = ", ".join(r.name for r in rules)
            raise AmpscalerError(
                f"{ref} holds {len(rules)} rules ({names}); backtest takes a file with one rule"
            )
        return rules[0]
    from ampscaler.cli.common import aws_session, rule_store

    store = rule_store(args, aws_session(args), history=False)
    loaded = store.load_rule(ref)
    if loaded is None:
        raise AmpscalerError(
            f"{ref!r} is neither a file nor a rule in SSM ({store.parameter_name(ref)} not found)"
        )
    if loaded.rule is None or loaded.errors:
        raise AmpscalerError(f"rule {ref!r} in SSM is invalid: " + "; ".join(loaded.errors))
    return loaded.rule


def make_client(args: argparse.Namespace, rule: Rule) -> tuple[RangeClient, str]:
    """The range client for ``--url``/``--workspace-id``, else the rule's own ``prometheus`` block.

    Returns the client and a description of where its queries go. Queries go through
    ``AmpMetricsSource`` (URL choice, SigV4 for AMP, retries, error messages as in live ticks).
    """
    session = None
    region = _option(args, "region")
    if args.url:
        # Plain Prometheus: no credentials needed, so no (slow to create) boto3 session.
        target_rule = replace(rule, prometheus=PrometheusSource(url=args.url))
    else:
        import boto3

        session = boto3.Session(region_name=region, profile_name=_option(args, "profile"))
        region = session.region_name
        if args.workspace_id:
            if not region:
                raise AmpscalerError(
                    "--workspace-id needs --region (or AWS_REGION) to find the AMP workspace"
                )
            target_rule = replace(
                rule, prometheus=PrometheusSource(workspace_id=args.workspace_id, region=region)
            )
        elif rule.prometheus is not None:
            target_rule = rule
        else:
            raise AmpscalerError(
                f"rule {rule.name!r} names no Prometheus; give --url PROM_URL or --workspace-id ID"
            )
    # Range queries over a day read far more samples than a tick's instant query: longer read timeout.
    source = AmpMetricsSource(
        region=region,
        session=session,
        connect_timeout_seconds=5.0,
        read_timeout_seconds=120.0,
        # The operator typed --url on the command line: that URL is allowed for this run.
        allowed_prometheus_urls=(args.url,) if args.url else None,
    )
    return AmpRangeClient(source, target_rule), source.target_for(target_rule).description


def run(
    args: argparse.Namespace,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Run ``ampscaler backtest``.

    Returns
    -------
    int
        0 on success; 2 with a one-line reason for a bad argument (an unreadable time, step or
        delay, or ``--from`` not before ``--to``), as argparse exits for usage errors; 1 with a
        one-line reason for any other failure.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        return _run(args, out, err, clock)
    except _BadArgument as exc:
        err.write(f"ampscaler backtest: error: {exc}\n")
        return EXIT_USAGE
    except (AmpscalerError, ValueError, OSError) as exc:
        err.write(f"ampscaler backtest: error: {exc}\n")
        return EXIT_FAILED


EXIT_FAILED = 1
EXIT_USAGE = 2


class _BadArgument(ValueError):
    """A command-line value the backtest cannot use (exit 2, like argparse's usage errors)."""


def parse_pod_requests(text: str | None) -> dict[str, float]:
    """``cpu=500m,memory=256Mi`` -> ``{"cpu": 0.5, "memory": 268435456.0}`` (Kubernetes quantities).

    Raises
    ------
    ValueError
        When an entry is not ``cpu=Q`` or ``memory=Q`` with a positive quantity, or repeats.
    """
    requests: dict[str, float] = {}
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        name, sep, raw = entry.partition("=")
        name = name.strip()
        if not sep or name not in ("cpu", "memory"):
            raise ValueError(f"--pod-requests: {entry.strip()[:40]!r} is not cpu=QUANTITY or memory=QUANTITY")
        if name in requests:
            raise ValueError(f"--pod-requests: {name} is given twice")
        try:
            amount = quantity_decimal(raw.strip())
        except ValueError as exc:
            raise ValueError(f"--pod-requests: {name}: {exc}") from None
        if amount <= 0:
            raise ValueError(f"--pod-requests: {name} must be positive, got {raw.strip()!r}")
        requests[name] = float(amount)
    return requests


def _check_requests(rule: Rule, requests: dict[str, float]) -> None:
    """A Utilization target needs the simulated pods' request for its resource (``_BadArgument``)."""
    for spec in rule.metrics:
        needs_request = spec.type in ("Resource", "ContainerResource") and spec.target.type == "Utilization"
        if needs_request and spec.resource not in requests:
            raise _BadArgument(
                f"metric {spec.name!r} of rule {rule.name!r} targets {spec.resource} utilization: give each "
                f"simulated pod's request with --pod-requests {spec.resource}=QUANTITY (e.g. "
                f"{'cpu=500m' if spec.resource == 'cpu' else 'memory=256Mi'}), as the target's pod spec has it"
            )


def _parse_arguments(args: argparse.Namespace, now: float) -> tuple[TimeGrid, BacktestOptions]:
    """The evaluation grid and options from the command line; ``_BadArgument`` names the option."""
    try:
        step = parse_duration(args.step)
        if step < MIN_STEP_SECONDS:
            raise ValueError(f"--step must be at least {MIN_STEP_SECONDS}s")
        start = parse_time(args.start, now)
        end = parse_time(args.end, now)
        if (end - start) / step > MAX_GRID_POINTS:
            raise ValueError(
                f"--from/--to/--step give {(end - start) / step:.0f} evaluations; at most {MAX_GRID_POINTS} "
                "(narrow the range or widen --step)"
            )
        # Align to the step so repeated runs over "-24h" evaluate at the same instants.
        start = math.floor(start / step) * step
        grid = TimeGrid.half_open(start, end, step)
        options = BacktestOptions(
            initial_replicas=args.initial_replicas,
            startup_delay_seconds=parse_duration(args.startup_delay),
            pod_requests=parse_pod_requests(getattr(args, "pod_requests", None)),
            resource_series=Settings.from_env().resource_series,
        )
    except (ValueError, AmpscalerError) as exc:
        raise _BadArgument(str(exc)) from exc
    return grid, options


def _run(args: argparse.Namespace, out: TextIO, err: TextIO, clock: Callable[[], float]) -> int:
    now = math.floor(clock())
    grid, options = _parse_arguments(args, now)
    rules = [load_rule(args.rule, args)]
    if args.compare:
        rules.append(load_rule(args.compare, args))
        if rules[0].name == rules[1].name:
            # Two versions of one rule (the usual comparison): tell them apart by where they came from.
            rules = [
                replace(r, name=_label(ref)) for r, ref in zip(rules, (args.rule, args.compare), strict=True)
            ]
    for rule in rules:
        _check_requests(rule, dict(options.pod_requests))
    output = _option(args, "output") or "table"
    show = bool(args.progress) or err.isatty()
    cache: dict[tuple[str, ...], Sequence[RangeSeries]] = {}
    results: list[BacktestResult] = []
    for rule in rules:
        inner, where = make_client(args, rule)
        client = _CachingClient(inner, where, cache)
        fetch_bar = TextProgress(err, "fetch", show)
        try:
            history = fetch_history(
                client, rule, grid, progress=fetch_bar, resource_series=options.resource_series
            )
        finally:
            fetch_bar.close()
        # Only long replays get a bar; a short one finishes before it could be read.
        sim_bar = TextProgress(err, "simulate", show and len(grid) >= 1000)
        try:
            results.append(simulate(rule, grid, history, options, progress=sim_bar))
        finally:
            sim_bar.close()

    files: dict[str, str] = {}
    if args.csv:
        rows = write_csv(args.csv, results)
        files["csv"] = str(args.csv)
        if output == "table":
            out.write(f"wrote {rows} rows to {args.csv}\n")
    if args.chart:
        write_chart(args.chart, results)
        files["chart"] = str(args.chart)
        if output == "table":
            out.write(f"wrote chart to {args.chart}\n")
    if output == "json":
        out.write(format_json(results, files) + "\n")
    else:
        out.write(format_table(results) + "\n")
    return 0
