"""``python -m devstack.demo`` as ``make demo`` runs it: a real subprocess with real Prometheus and moto
children; it must scale, write a replayable decision log and a PNG, and leave no process behind,
whether it finishes or is stopped by SIGINT/SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ampscaler import contract
from ampscaler.cli.main import main as ampscaler_main
from tests.fixtures.processes import descendants, still_running

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TICK_LINE = re.compile(r"^\d\d:\d\d +\d")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The signal tests: a demo that ignored the signal would run this long; one that obeys stops its
# children (each stop is bounded at 10-15 s by devstack) well within the bound.
RUN_IGNORING_SIGNAL_SECONDS = 1800
SIGNAL_EXIT_BOUND_SECONDS = 180


class DemoProcess:
    """The demo as a child process; collects its output lines and every descendant it started."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.demo", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.first_tick = threading.Event()
        self.children: dict[int, str] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if TICK_LINE.match(line):
                self.first_tick.set()

    def _watch(self) -> None:
        while self.process.poll() is None:
            for pid, cmdline in descendants(self.process.pid).items():
                # A process that is exiting (a zombie) shows an empty command line; keep the
                # one seen while it ran.
                if cmdline:
                    self.children.setdefault(pid, cmdline)
            time.sleep(0.2)

    def wait(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail("demo did not exit in time; output:\n" + self.output)
        self._reader.join(5)
        self._watcher.join(5)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def assert_left_nothing_running(self) -> None:
        commands = " ".join(self.children.values())
        # The watcher saw the real components, so an empty "still running" set means something.
        assert "prometheus" in commands and "devstack.moto" in commands, self.children
        assert still_running(self.children) == {}


def test_demo_short_run_scales_up_writes_replayable_log_and_png_and_stops_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo-output"
    demo = DemoProcess("--duration", "40", "--out", str(out))

    # A bound for a hung demo, not a performance check: a 40 s run takes about a minute idle, but
    # start-up, matplotlib and the replay subprocess can take several times that on a loaded machine.
    code = demo.wait(timeout=600)

    assert code == 0, demo.output
    text = demo.output
    events = re.search(r"scale events +(\d+) \((\d+) up, (\d+) down\)", text)
    assert events is not None, text
    assert int(events.group(2)) >= 1, text
    peak = re.search(r"peak replicas +(\d+)", text)
    assert peak is not None and int(peak.group(1)) > 1, text
    assert any(TICK_LINE.match(line) and "(scaled)" in line for line in demo.lines), text

    png = (out / "demo.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and png[12:16] == b"IHDR"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 100 and height > 100

    records = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    # A burst changes something in most slots, so most of them log a full record; the rest are
    # compact entries (counted on the summary's invocations line).
    assert len(records) >= 4, text
    slots = re.search(r"invocations +(\d+) \(one per slot\); (\d+) steady", text)
    assert slots is not None and len(records) + int(slots.group(2)) >= 6, text
    assert all(r["event"] == "decision" and r["rule"] == "demo/web" for r in records)
    assert any(r["patched"] and r["to"] > r["from"] for r in records)
    assert f"{len(records)} decisions replayed byte-for-byte" in text
    # Every logged record replays through the `ampscaler decide` command to its logged output.
    capsys.readouterr()
    for i, record in enumerate(records):
        path = tmp_path / f"input-{i}.json"
        path.write_text(json.dumps(record["input"]))
        assert ampscaler_main(["decide", "--input", str(path)]) == 0
        assert capsys.readouterr().out.strip() == contract.dumps(record["output"])

    demo.assert_left_nothing_running()


def test_demo_cpu_scenario_scales_a_cpu_rule_on_cadvisor_series_and_replays(tmp_path: Path) -> None:
    out = tmp_path / "demo-output"
    demo = DemoProcess("--scenario", "cpu", "--duration", "40", "--out", str(out))

    code = demo.wait(timeout=600)

    assert code == 0, demo.output
    text = demo.output
    assert "Resource cpu, Utilization 60% of requests (500m per pod)" in text
    # TARGETS reads like kubectl get hpa for a CPU metric: utilization against the target.
    assert any(TICK_LINE.match(line) and re.search(r"\d+%/60%", line) for line in demo.lines), text
    records = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert any(r["patched"] and r["to"] > r["from"] for r in records), text
    scaled = next(r for r in records if r["patched"] and r["to"] > r["from"])
    (metric,) = scaled["output"]["metrics"]
    assert metric["name"] == "cpu" and metric["target"] == 60 and metric["current"] > 60
    assert metric["averageValue"] > 0.3
    # The pods carry the requests of the Deployment's pod spec, the samples their window.
    assert all(p["requests"] == {"cpu": 0.5, "memory": 134217728.0} for p in scaled["input"]["pods"])
    assert scaled["input"]["metrics"][0]["windowSeconds"] > 0
    assert f"{len(records)} decisions replayed byte-for-byte" in text
    assert all(
        contract.dumps(contract.decide_document(r["input"])) == contract.dumps(r["output"]) for r in records
    )
    demo.assert_left_nothing_running()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_demo_signal_after_first_tick_exits_quickly_and_stops_everything(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # A run far longer than any bound below: exiting within the bound can only mean the signal
    # stopped it, so no assertion on elapsed time is needed (a loaded machine cannot fail it).
    demo = DemoProcess("--duration", str(RUN_IGNORING_SIGNAL_SECONDS), "--out", str(tmp_path / "demo-output"))
    if not demo.first_tick.wait(timeout=300):
        demo.process.kill()
        demo.wait(timeout=60)
        pytest.fail("no tick line within 300 s; output:\n" + demo.output)

    os.kill(demo.process.pid, signum)
    code = demo.wait(timeout=SIGNAL_EXIT_BOUND_SECONDS)

    assert code == 128 + signum, demo.output
    assert "interrupted" in demo.output
    assert "Traceback" not in demo.output
    demo.assert_left_nothing_running()
