"""Cold start: handler import + first clients in a fresh process, vs ``import boto3; boto3.client("ssm")``.

Each sample is a new interpreter (as a Lambda cold start is) with the scaler function's
environment pointed at a LocalStack. The timed part starts at the first statement of the child
(interpreter start-up excluded on both sides): import ``functions/scaler/app.py`` by path, build
``ScalerApp.from_env`` (every adapter), then the first rule load (the SSM client is created and
``GetParametersByPath`` answered by moto). The baseline child times ``import boto3`` plus one SSM
client. Samples alternate between the two and the medians are compared.

Run alone: ``.venv/bin/python -m bench.cold_start [--quick]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from bench.common import REPO, Figure, RunContext, log, median, standalone_main

PREFIX = "/ampscaler/coldstart/"

HANDLER_CODE = """
import time
t0 = time.perf_counter()
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", {app!r})
app = importlib.util.module_from_spec(spec)
sys.modules["app"] = app
spec.loader.exec_module(app)
t1 = time.perf_counter()
from ampscaler.runtime import ScalerApp
scaler = ScalerApp.from_env(app.logger)
t2 = time.perf_counter()
rules = scaler.runtime.ports.rules.load_rules()
t3 = time.perf_counter()
assert len(rules) == 1 and rules[0].rule is not None, rules
print(json.dumps({{"import": t1 - t0, "build": t2 - t1, "first_rules": t3 - t2, "total": t3 - t0}}))
"""

BASELINE_CODE = """
import time
t0 = time.perf_counter()
import json
import boto3
boto3.client("ssm")
t1 = time.perf_counter()
print(json.dumps({"total": t1 - t0}))
"""


def sample(code: str, env: Mapping[str, str]) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter; its last stdout line is a JSON object of timings."""
    result = subprocess.run(
        [sys.executable, "-c", code], env=dict(env), capture_output=True, text=True, timeout=120, cwd=REPO
    )
    if result.returncode != 0:
        raise RuntimeError(f"cold-start child failed: {result.stderr[-2000:]}")
    doc: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return doc


def child_env(stack_env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus the function's, without AWS settings that would conflict."""
    from devstack.moto import CONFLICTING_ENV

    env = {k: v for k, v in os.environ.items() if k not in CONFLICTING_ENV}
    env.update(stack_env)
    # The child must import the repo's packages as the layer would provide them.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "layers" / "ampscaler"), str(REPO)])
    return env


def import_profile(code: str, env: Mapping[str, str], limit: int = 12, depth: int = 3) -> str:
    """``python -X importtime`` of the handler child: imports up to ``depth`` levels deep, slowest first."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    rows: list[tuple[int, int, str]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, _, rest = line.partition(":")
        _self_us, cumulative_us, name = (part for part in rest.split("|"))
        # One space before a top-level import's name, two more per nesting level.
        level = (len(name) - len(name.lstrip(" ")) - 1) // 2
        if level < depth:
            rows.append((int(cumulative_us), level, name.strip()))
    rows.sort(reverse=True)
    table = ["| module | nesting | cumulative import |", "|---|---|---|"]
    table += [f"| `{name}` | {level} | {us / 1000:.0f} ms |" for us, level, name in rows[:limit]]
    return "`python -X importtime`, one run (the timings above are medians of clean runs):\n\n" + "\n".join(
        table
    )


def run(ctx: RunContext) -> list[Figure]:
    """Median cold start (import + from_env + first rule load) vs the boto3 baseline."""
    from bench.tick import rule_document

    stack = ctx.stack()
    stack.client("ssm").put_parameter(
        Name=f"{PREFIX}web", Value=json.dumps(rule_document("app-0000")), Type="String", Overwrite=True
    )
    env = child_env(stack.env(RULE_PREFIX=PREFIX))
    handler_code = HANDLER_CODE.format(app=str(REPO / "functions" / "scaler" / "app.py"))
    n = 3 if ctx.quick else 9
    handler: list[dict[str, float]] = []
    baseline: list[dict[str, float]] = []
    sample(BASELINE_CODE, env)  # warm the OS page cache for both
    sample(handler_code, env)
    for _ in range(n):
        handler.append(sample(handler_code, env))
        baseline.append(sample(BASELINE_CODE, env))
    ctx.sections["Cold start: slowest imports of the handler"] = import_profile(handler_code, env)
    parts: dict[str, Any] = {
        k: median([h[k] for h in handler]) for k in ("import", "build", "first_rules", "total")
    }
    base = median([b["total"] for b in baseline])
    ctx.facts["cold_start"] = {"handler": handler, "baseline": baseline, "median_parts_s": parts}
    log(f"cold start: {parts['total'] * 1000:.0f} ms vs boto3 baseline {base * 1000:.0f} ms")
    ratio = parts["total"] / base
    return [
        ctx.figure(
            key="cold_start.total",
            figure="Cold start: handler import + first clients + first rule load",
            value=parts["total"],
            unit="s",
            baseline=base,
            baseline_label='`import boto3; boto3.client("ssm")`',
            how=(
                f"fresh interpreter per sample, median of {n}, alternating; import "
                f"{parts['import'] * 1000:.0f} ms + ScalerApp.from_env {parts['build'] * 1000:.0f} ms + "
                f"first rule load from moto SSM {parts['first_rules'] * 1000:.0f} ms"
            ),
            target="≤ 2x" + (" met" if ratio <= 2 else " MISSED"),
        )
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cold-start benchmark alone and print its figure as a JSON line."""
    return standalone_main(run, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
