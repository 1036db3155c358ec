"""``make sandbox`` and ``make install`` as the README's walk-through uses them.

The sandbox runs as a real subprocess (``python -m devstack.sandbox``, what ``make sandbox`` runs)
with its real Prometheus, moto and simulator; the README's walk-through commands are read from the
README and run in bash with ``ampscaler`` on PATH, then the sandbox is stopped by SIGTERM and must
leave no process and no CA file behind. ``make install`` runs with a temporary PREFIX and the
README's ``ampscaler validate`` transcript must print what the README shows through its shim.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.sandbox import READY_LINE
from tests.fixtures.processes import descendants, still_running

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_OUT = "demo-output/sandbox"
# Hang bounds, not performance checks: a loaded 2-core machine takes a few seconds for each.
START_BOUND_SECONDS = 300
STOP_BOUND_SECONDS = 180
SCALE_BOUND_SECONDS = 600


def readme_block(heading: str, language: str) -> list[str]:
    """The lines of the first ```language block under the README heading ``heading``."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match is not None, f"no ```{language} block under {heading!r}"
    return match.group(1).splitlines()


class Sandbox:
    """The sandbox program as a child process, its output collected by a reader thread."""

    def __init__(self, out: Path) -> None:
        self.process = subprocess.Popen(
            # A short schedule and traffic cycle so the walk-through sees ticks and a scale-up soon.
            [sys.executable, "-m", "devstack.sandbox", "--out", str(out), "--interval", "2", "--cycle", "60"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith(READY_LINE):
                self.ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def exports(self) -> list[str]:
        """The ``unset``/``export`` lines it printed."""
        return [line for line in self.lines if line.startswith(("export ", "unset "))]

    def stop(self, signum: int) -> int:
        """Send ``signum`` and wait (bounded) for the exit code."""
        os.kill(self.process.pid, signum)
        try:
            code = self.process.wait(timeout=STOP_BOUND_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail("sandbox did not stop in time; output:\n" + self.output)
        self._reader.join(30)
        return code


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "sandbox")
    try:
        if not box.ready.wait(timeout=START_BOUND_SECONDS):
            pytest.fail(f"no {READY_LINE!r} within {START_BOUND_SECONDS} s; output:\n" + box.output)
        yield box
    finally:
        if box.process.poll() is None:
            box.process.kill()
            box.process.wait()


@pytest.fixture
def tool_path(tmp_path: Path) -> str:
    """PATH with an ``ampscaler`` of this interpreter (as ``make install``'s shim provides one)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ampscaler").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ampscaler.cli.main "$@"\n')
    (bin_dir / "ampscaler").chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def shell(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,  # a hang bound
        check=False,
    )


def clean_env(tool_path: str) -> dict[str, str]:
    """A reader's shell: none of this machine's AWS settings, ampscaler importable, unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AMP_", "CLUSTER_"))}
    env.update(
        PATH=tool_path,
        PYTHONPATH=os.pathsep.join([str(ROOT / "layers" / "ampscaler"), str(ROOT)]),
        PYTHONUNBUFFERED="1",
    )
    return env


def split_outputs(text: str) -> dict[str, str]:
    """``@@@ command`` marker lines -> the output that followed each."""
    outputs: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("@@@ "):
            current = line[4:]
            outputs[current] = ""
        elif current:
            outputs[current] += line + "\n"
    return outputs


def test_sandbox_serves_the_readme_walkthrough_then_stops_everything(
    sandbox: Sandbox, tmp_path: Path, tool_path: str
) -> None:
    out = tmp_path / "sandbox"
    # What it printed is what it wrote to env.sh, and both give every variable the CLI reads.
    exports = sandbox.exports()
    assert (out / "env.sh").read_text().splitlines()[1:] == exports
    names = {line.split("=", 1)[0].removeprefix("export ") for line in exports if line.startswith("export ")}
    assert {
        "AWS_ENDPOINT_URL",
        "AMP_ENDPOINT_URL",
        "AMP_WORKSPACE_ID",
        "CLUSTER_ENDPOINTS",
        "STATE_TABLE",
    } <= names
    children = descendants(sandbox.process.pid)
    commands = " ".join(children.values())
    assert "prometheus" in commands and "devstack.moto" in commands, children

    # The README's walk-through, verbatim but for the output directory, in one shell.
    steps = [
        line.split("  #")[0].strip() for line in readme_block("### The CLI against a local sandbox", "bash")
    ]
    steps = [step.replace(README_OUT, str(out)) for step in steps if step]
    script = "\n".join(f"echo {shlex.quote('@@@ ' + step)}\n{step}" for step in steps)
    done = shell(script, clean_env(tool_path), tmp_path)
    assert done.returncode == 0, done.stdout
    outputs = split_outputs(done.stdout)

    def output_of(prefix: str) -> str:
        [key] = [k for k in outputs if k.startswith(prefix)]
        return outputs[key]

    assert output_of("ampscaler validate").startswith(f"{out}/web.yaml: valid (1 rule: demo/web)")
    assert "/ampscaler/rules/demo/web: created (version 1)" in output_of("ampscaler push")
    get_lines = output_of("ampscaler get").splitlines()
    assert get_lines[0].split() == [
        "NAME",
        "REFERENCE",
        "TARGETS",
        "MINPODS",
        "MAXPODS",
        "REPLICAS",
        "LAST",
        "SCALE",
        "STATUS",
    ]
    assert re.split(r" {3,}", get_lines[1].strip())[:2] == ["demo/web", "Deployment/web"]
    describe = output_of("ampscaler describe").splitlines()
    assert "Name:               demo/web" in describe
    assert "Parameter:          /ampscaler/rules/demo/web (version 1)" in describe
    explain = output_of("ampscaler explain").splitlines()
    assert explain[0] == "Rule:        demo/web (SSM /ampscaler/rules/demo/web version 1)"
    assert "Target:      Deployment/web in namespace demo of cluster local" in explain
    assert "Nothing was patched and no state was written (explain is read-only)." in explain
    backtest = output_of("ampscaler backtest").splitlines()
    assert backtest[0].startswith("range ") and backtest[1].split() == ["demo/web", "observed"]
    assert backtest[2].split()[0] == "ticks"

    # The scaler on its schedule scales the workload through the traffic burst (bounded wait).
    env = clean_env(tool_path)
    source = f"source {shlex.quote(str(out / 'env.sh'))}\n"
    deadline = time.monotonic() + SCALE_BOUND_SECONDS
    record: dict[str, object] = {}
    while time.monotonic() < deadline:
        got = shell(source + "ampscaler get demo/web -o json", env, tmp_path)
        assert got.returncode == 0, got.stdout
        [record] = json.loads(got.stdout)
        if record.get("lastScaleTime") is not None:
            break
        time.sleep(2)
    assert record.get("lastScaleTime") is not None, (
        f"no scale within {SCALE_BOUND_SECONDS} s:\n{sandbox.output}"
    )
    assert any("(scaled)" in line for line in sandbox.lines), sandbox.output

    code = sandbox.stop(signal.SIGTERM)

    assert code == 128 + signal.SIGTERM, sandbox.output
    assert "interrupted (SIGTERM)" in sandbox.output
    assert "Traceback" not in sandbox.output
    assert still_running(children) == {}
    # The CA file the scaler and the CLI wrote for the sandbox's cluster is gone too.
    endpoints = next(line for line in exports if line.startswith("export CLUSTER_ENDPOINTS="))
    ca_pem = base64.b64decode(json.loads(shlex.split(endpoints)[1].split("=", 1)[1])["local"]["caData"])
    digest = hashlib.sha256(ca_pem).hexdigest()[:16]
    assert not Path(tempfile.gettempdir(), f"ampscaler-eks-ca-{digest}.crt").exists()


def test_make_install_puts_a_working_ampscaler_on_path_for_the_readme(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    # -o: take the venv as installed (the suite runs inside it); the target's own recipe runs.
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed-demo", "install", f"PREFIX={prefix}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shim = prefix / "bin" / "ampscaler"
    assert f"installed {shim}" in done.stdout
    assert "is not on PATH" in done.stdout  # tmp_path is not, and make says what to do

    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "ampscaler"), str(ROOT)])
    # The README's first validate transcript, through the shim, from the clone's root.
    block = readme_block("Check it, then push it", "")
    command = block[0].removeprefix("$ ")
    expected = block[1 : block.index("")]
    validate = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert validate.returncode == 0, validate.stderr
    assert validate.stdout.splitlines() == expected


def test_sandbox_ctrl_c_stops_everything_it_started(sandbox: Sandbox) -> None:
    children = descendants(sandbox.process.pid)
    assert "prometheus" in " ".join(children.values()), children

    code = sandbox.stop(signal.SIGINT)

    assert code == 128 + signal.SIGINT, sandbox.output
    assert "interrupted (SIGINT)" in sandbox.output
    assert "Traceback" not in sandbox.output
    assert still_running(children) == {}
