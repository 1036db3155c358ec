"""``make sandbox``: the local stack with live traffic and the scaler on its schedule, left up for the CLI.

``python -m devstack.sandbox [--interval SECONDS] [--cycle SECONDS] [--out DIR] [--quiet]``

Starts ``devstack.stack.LocalStack`` (real Prometheus behind the SigV4 proxy standing in for AMP,
moto for SSM/DynamoDB, the Kubernetes API simulator as cluster ``local``), creates the Deployment
``demo/web`` and keeps remote-writing its ``http_requests_total`` counters with ``make demo``'s
traffic generator, the burst repeating every ``--cycle`` seconds. The real scaler function runs
as in AWS (a local schedule plus the slot queue, one invocation per ``--interval`` slot), so any
rule pushed into the local SSM is evaluated and the workload scaled. It writes the example rule for the workload to
``DIR/web.yaml`` and the environment for the CLI to ``DIR/env.sh``, prints the same ``export``
lines, then ``sandbox ready``, and runs until Ctrl-C or SIGTERM, which stop everything it started.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from ampscaler.adapters.eks_token import EksClusterInfo
from devstack.demo import (
    DEPLOYMENT,
    MIN_REPLICAS,
    NAMESPACE,
    RULE_NAME,
    Interrupted,
    Scenario,
    Terminal,
    TrafficGenerator,
    format_tick,
    scaler_running,
    signals_ignored,
    sleep_until,
    slot_environment,
    stop_on_signals,
    tick_row,
)
from devstack.lambda_runtime import LineCapture, LocalFunction, load_handler
from devstack.moto import CONFLICTING_ENV
from devstack.stack import LocalStack

DEFAULT_INTERVAL_SECONDS = 5
DEFAULT_CYCLE_SECONDS = 180.0
READY_DELAY_SECONDS = 3.0
# Next to make demo's output, which .gitignore and make clean already cover.
DEFAULT_OUT = "demo-output/sandbox"
# History written at start-up so rate() has data at once and `backtest --from -10m` has a window.
BACKFILL_SECONDS = 600
READY_LINE = "sandbox ready"
# What the CLI needs of the function environment (the rest is Lambda's own configuration).
CLI_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AMP_ENDPOINT_URL",
    "AMP_WORKSPACE_ID",
    "AMP_REGION",
    "CLUSTER_NAME",
    "CLUSTER_ENDPOINTS",
    "RULE_PREFIX",
    "STATE_TABLE",
)


@dataclass(frozen=True)
class CyclingScenario(Scenario):
    """``make demo``'s burst (base -> peak -> after), repeated every ``duration_seconds``."""

    def demand(self, elapsed: float) -> float:
        """Total demand (rps) ``elapsed`` seconds after the traffic started."""
        return super().demand(elapsed % self.duration_seconds)


def cli_exports(env: Mapping[str, str]) -> list[str]:
    """Shell lines that point the ``ampscaler`` CLI of any terminal at the sandbox.

    Parameters
    ----------
    env
        The scaler function's environment (``LocalStack.env()``).

    Returns
    -------
    list[str]
        An ``unset`` of the variables that would redirect boto3 elsewhere, then one ``export``
        per variable, quoted for POSIX shells.
    """
    lines = ["unset " + " ".join(CONFLICTING_ENV)]
    lines += [f"export {name}={shlex.quote(env[name])}" for name in CLI_ENV if name in env]
    return lines


def decision_records(lines: Sequence[str]) -> list[dict[str, Any]]:
    """The full decision records among the function's output lines."""
    records = []
    for line in lines:
        text = line.strip()
        if not text.startswith("{"):
            continue
        with contextlib.suppress(json.JSONDecodeError):
            record = json.loads(text)
            if isinstance(record, dict) and record.get("event") == "decision":
                records.append(record)
    return records


def remove_client_ca_file(ca_pem: bytes) -> None:
    """Delete the CA file the Kubernetes adapter wrote in the temp directory for this cluster CA."""
    path = EksClusterInfo("local", "https://127.0.0.1", base64.b64encode(ca_pem).decode("ascii")).ca_file()
    Path(path).unlink(missing_ok=True)


def write_files(out: Path, scenario: Scenario, exports: Sequence[str]) -> tuple[Path, Path]:
    """The example rule (YAML, as a user would write it) and ``env.sh``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rule_path = out / "web.yaml"
    rule = {"name": RULE_NAME, **scenario.rule()}
    rule_path.write_text(
        "# The sandbox's workload demo/web: requests per second per pod, target 10.\n"
        + yaml.safe_dump(rule, sort_keys=False),
        encoding="utf-8",
    )
    env_path = out / "env.sh"
    env_path.write_text("# source this file to point ampscaler at the sandbox\n" + "\n".join(exports) + "\n")
    return rule_path, env_path


def serve(stack: LocalStack, args: argparse.Namespace, term: Terminal) -> None:
    """Create the workload, start traffic and the scaler schedule; return only when interrupted."""
    scenario = CyclingScenario.for_duration(args.cycle)
    interval = int(args.interval)
    stack.kube.add_deployment(NAMESPACE, DEPLOYMENT, replicas=MIN_REPLICAS, labels={"app": DEPLOYMENT})
    exports = cli_exports(stack.env())
    rule_path, env_path = write_files(Path(args.out), scenario, exports)
    capture = LineCapture()
    with stack.environment(**slot_environment(interval)):
        function = LocalFunction(load_handler("scaler", stream=capture))
        deadline = time.time() + READY_DELAY_SECONDS + 10
        while not stack.kube.ready_pods(NAMESPACE) and time.time() < deadline:
            time.sleep(0.1)
        started = time.time()
        traffic = TrafficGenerator(stack, scenario, started)
        traffic.backfill(BACKFILL_SECONDS)
        traffic.start()
        try:
            term.say(
                f"traffic: {METRIC_DESCRIPTION} for Deployment {NAMESPACE}/{DEPLOYMENT}, "
                f"{scenario.base_rps:g} -> {scenario.peak_rps:g} -> {scenario.after_rps:g} rps every "
                f"{scenario.duration_seconds:g}s; a scaler slot every {interval}s"
            )
            term.say(f"example rule: {rule_path}  (ampscaler push {rule_path})")
            term.say(f"CLI environment: source {env_path}, or paste:")
            for line in exports:
                term.say(line)
            term.say(READY_LINE + " (Ctrl-C stops everything)")
            # The redirect covers the worker threads too: EMF blobs look sys.stdout up per write.
            with contextlib.redirect_stdout(capture), scaler_running(stack, function, interval):
                while True:
                    sleep_until(time.time() + 0.25)
                    if traffic.error is not None:
                        raise RuntimeError(f"traffic generator failed: {traffic.error}") from traffic.error
                    for record in decision_records(capture.drain()):
                        if record.get("rule") == RULE_NAME:
                            row = tick_row(record, started, traffic.demand_at(float(record["input"]["now"])))
                            term.say(format_tick(row), live=True)
                        else:
                            term.say(f"{record.get('rule')}: {record.get('from')} -> {record.get('to')}  "
                                     f"{record.get('reason')}", live=True)  # fmt: skip
        finally:
            traffic.stop()


METRIC_DESCRIPTION = 'http_requests_total{namespace="demo"}'


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.sandbox",
        description="Run the local stack with live traffic and the scaler on its schedule, for the CLI.",
    )
    parser.add_argument(
        "--interval",
        type=int,
        default=DEFAULT_INTERVAL_SECONDS,
        help=f"scaler schedule in seconds (default {DEFAULT_INTERVAL_SECONDS}; Lambda's default is 15)",
    )
    parser.add_argument(
        "--cycle",
        type=float,
        default=DEFAULT_CYCLE_SECONDS,
        help=f"seconds of one traffic burst cycle (default {DEFAULT_CYCLE_SECONDS:g})",
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"directory for web.yaml and env.sh (default {DEFAULT_OUT})"
    )
    parser.add_argument("--quiet", action="store_true", help="no line per scaler decision")
    args = parser.parse_args(argv)
    if args.interval < 1:
        parser.error("--interval must be at least 1 second")
    if args.cycle < 20:
        parser.error("--cycle must be at least 20 seconds")
    return args


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    """Run the sandbox until interrupted; returns 128 + signal number, or 1 on a failure."""
    args = parse_args(argv)
    term = Terminal(stdout or sys.stdout, args.quiet)
    stack = LocalStack(ready_delay_seconds=READY_DELAY_SECONDS)
    try:
        with stop_on_signals():
            try:
                term.say("starting Prometheus (+ AMP SigV4 proxy), moto server and the cluster simulator ...")
                stack.start()
                term.say(
                    f"  prometheus {stack.prometheus.url}  moto {stack.moto.endpoint_url}  "
                    f"kubernetes {stack.kube.url}"
                )
                serve(stack, args, term)
            finally:
                # Stopping must finish even if the user presses Ctrl-C again.
                with signals_ignored():
                    kube = getattr(stack, "kube", None)
                    stack.close()
                    if kube is not None:
                        remove_client_ca_file(kube.ca_pem)
    except Interrupted as exc:
        term.say(f"interrupted ({exc}); stopped Prometheus, moto and the cluster simulator")
        return 128 + exc.signum
    except Exception as exc:  # a one-line reason instead of a traceback for a failed start-up
        term.say(f"sandbox failed: {exc}")
        return 1
    return 1  # serve() only returns by an exception


if __name__ == "__main__":
    sys.exit(main())
