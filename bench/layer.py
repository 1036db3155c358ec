"""Layer size and import time from the ``sam build`` artifact; the in-cluster alternatives' pod costs.

``sam build`` (python3.13/arm64, no Docker, as tests/unit/test_template.py runs it) builds the
artifacts into a temporary directory. The layer's unzipped size is the tree size of
``AmpscalerLayer``; Lambda's limit is 250 MB unzipped for function + layers, the project's target
50 MB. The handler's import time is measured in a fresh ``python3.13 -I -S`` whose ``sys.path`` is
the built function, the built layer and only boto3/botocore/s3transfer (the runtime's own), against
``import boto3; boto3.client("ssm")`` in the same setting.

It also holds the in-cluster alternatives' pod costs that ``bench.cost`` compares the bill with.

Run alone: ``.venv/bin/python -m bench.layer [--quick]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

from bench.common import REPO, Figure, RunContext, log, median, standalone_main

SAM = REPO / ".venv-sam" / "bin" / "sam"
PYENV_VERSION = "3.11.7:3.12.1:3.13.0"
LAYER_TARGET_BYTES = 50 * 1024 * 1024

# us-east-1 on-demand list prices used by the estimate (free tiers ignored).
PRICES: dict[str, float] = {
    "m7g_large_hour": 0.0816,  # m7g.large on-demand (2 vCPU, 8 GiB)
}
# The instance price split half to its 2 vCPUs and half to its 8 GiB (an assumption, stated).
VCPU_HOUR = PRICES["m7g_large_hour"] / 2 / 2
GIB_HOUR = PRICES["m7g_large_hour"] / 2 / 8
HOURS_PER_MONTH = 730.0

# In-cluster alternatives: pods at their charts' default requests (millicores, MiB).
ALTERNATIVES: dict[str, list[tuple[str, int, int, str]]] = {
    "KEDA + SigV4 proxy": [
        ("keda-operator", 100, 100, "kedacore/charts keda/values.yaml resources.operator.requests"),
        ("keda-operator-metrics-apiserver", 100, 100, "keda/values.yaml resources.metricServer.requests"),
        ("keda-admission-webhooks", 10, 10, "keda/values.yaml resources.webhooks.requests"),
        ("aws-sigv4-proxy", 100, 128, "AWS's KEDA/AMP sample sets none; assumed as the adapter's suggested"),
    ],
    "Prometheus Adapter + SigV4 proxy": [
        (
            "prometheus-adapter",
            100,
            128,
            "prometheus-community chart: resources {} (none); its commented suggestion",
        ),
        ("aws-sigv4-proxy", 100, 128, "none set; assumed as above"),
    ],
}


def tool_env() -> dict[str, str]:
    """sam needs a region, no credentials, no telemetry, and python3.13 on PATH (pyenv)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAM_CLI_TELEMETRY": "0",
        "PYENV_VERSION": PYENV_VERSION,
    }
    return env


def tree_size(root: Path) -> int:
    """Bytes of every regular file under ``root`` (the unzipped size)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def sam_build(build_dir: Path, cache_dir: Path) -> None:
    """``sam build`` the template into ``build_dir``."""
    if not SAM.exists():
        raise RuntimeError(f"{SAM} missing: run scripts/bootstrap.sh (it installs aws-sam-cli in .venv-sam)")
    result = subprocess.run(
        [str(SAM), "build", "--template-file", str(REPO / "template.yaml"), "--build-dir", str(build_dir),
         "--cache-dir", str(cache_dir)],
        capture_output=True, text=True, env=tool_env(), cwd=REPO, timeout=900,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"sam build failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")


def runtime_stand_in(directory: Path) -> Path:
    """A directory holding only boto3, botocore and s3transfer (what the Lambda runtime provides)."""
    import boto3
    import botocore
    import s3transfer

    directory.mkdir(parents=True, exist_ok=True)
    for module in (boto3, botocore, s3transfer):
        assert module.__file__ is not None
        link = directory / module.__name__
        if not link.exists():
            link.symlink_to(Path(module.__file__).parent)
    return directory


IMPORT_CODE = """
import sys, time
sys.path[:0] = {paths!r}
t0 = time.perf_counter()
{body}
print(time.perf_counter() - t0)
"""


def artifact_import_seconds(python: str, paths: Sequence[str], body: str) -> float:
    """Seconds of ``body`` in a fresh ``python -I -S`` whose path is only ``paths``."""
    code = IMPORT_CODE.format(paths=list(paths), body=textwrap.dedent(body))
    env = tool_env() | {"AWS_REGION": "us-east-1"}
    result = subprocess.run(
        [python, "-I", "-S", "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"import from the artifact failed: {result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


# -- cost (pure arithmetic; tested in tests/unit/test_bench_report.py) -----------------------------


def pod_cost(millicores: int, mib: int) -> float:
    """Monthly cost of one pod's requests at VCPU_HOUR / GIB_HOUR."""
    return (millicores / 1000 * VCPU_HOUR + mib / 1024 * GIB_HOUR) * HOURS_PER_MONTH


def alternative_cost(name: str) -> tuple[float, list[tuple[str, str, float]]]:
    """Monthly cost of one in-cluster alternative's pods at their default requests."""
    lines = [
        (
            pod,
            f"{cpu}m × ${VCPU_HOUR:.4f}/vCPU-h + {mib} MiB × ${GIB_HOUR:.4f}/GiB-h, × 730 h ({source})",
            pod_cost(cpu, mib),
        )
        for pod, cpu, mib, source in ALTERNATIVES[name]
    ]
    return sum(line[2] for line in lines), lines


def run(ctx: RunContext) -> list[Figure]:
    """Layer size and artifact import time vs boto3, and the monthly cost vs KEDA's pods."""
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="ampscaler-bench-sam-") as tmp:
        build = Path(tmp) / "build"
        log("layer: sam build")
        sam_build(build, Path(tmp) / "cache")
        layer_bytes = tree_size(build / "AmpscalerLayer")
        function_bytes = tree_size(build / "ScalerFunction")
        runtime = runtime_stand_in(Path(tmp) / "runtime")
        python = shutil.which("python3.13", path=tool_env()["PATH"])
        if python is None:
            raise RuntimeError("python3.13 must be on PATH (pyenv with PYENV_VERSION=" + PYENV_VERSION + ")")
        paths = [str(build / "ScalerFunction"), str(build / "AmpscalerLayer" / "python"), str(runtime)]
        n = 3 if ctx.quick else 7
        handler_s: list[float] = []
        baseline_s: list[float] = []
        for _ in range(n + 1):
            handler_s.append(artifact_import_seconds(python, paths, "import app"))
            baseline_s.append(artifact_import_seconds(python, paths, 'import boto3\nboto3.client("ssm")'))
        handler_s, baseline_s = handler_s[1:], baseline_s[1:]  # the first pair warms the page cache
    boto3_bytes = tree_size(runtime_package_root("botocore")) + tree_size(runtime_package_root("boto3"))
    ctx.facts["layer"] = {
        "layer_bytes": layer_bytes,
        "scaler_function_bytes": function_bytes,
        "handler_import_s": handler_s,
        "boto3_baseline_s": baseline_s,
    }
    figures.append(
        ctx.figure(
            key="layer.size",
            figure="Layer size unzipped",
            value=float(layer_bytes),
            unit="B",
            baseline=float(boto3_bytes),
            baseline_label="boto3 + botocore installed (what the runtime ships)",
            how=f"`sam build` (python3.13/arm64) tree size of AmpscalerLayer; ScalerFunction code {function_bytes:,} B",
            target="< 50 MB" + (" met" if layer_bytes < LAYER_TARGET_BYTES else " MISSED"),
        )
    )
    figures.append(
        ctx.figure(
            key="layer.import",
            figure="Handler import from the built artifact",
            value=median(handler_s),
            unit="s",
            baseline=median(baseline_s),
            baseline_label='`import boto3; boto3.client("ssm")`, same sys.path',
            how=f"fresh `python3.13 -I -S`, sys.path = function + layer + runtime boto3 only, median of {n}",
        )
    )

    return figures


def runtime_package_root(name: str) -> Path:
    """The installed package directory of ``name``."""
    module = __import__(name)
    assert module.__file__ is not None
    return Path(module.__file__).parent


def main(argv: Sequence[str] | None = None) -> int:
    """Run the layer/cost benchmark alone and print its figures as JSON lines."""
    return standalone_main(run, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
