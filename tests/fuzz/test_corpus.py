"""The hostile corpus through every entry point: in process, and as a batch under a Lambda-like memory cap."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.corpus import CORPUS
from tests.fuzz.harness import check_all

ROOT = Path(__file__).resolve().parents[2]
# The scaler runs in 256 MB; the interpreter, its libraries and address-space reservations need
# room on top, so the batch gets 512 MiB of address space: a bomb that expands fails it at once.
MEMORY_CAP_BYTES = 512 * 1024 * 1024
# Generous: the batch takes a few seconds on a shared 2-core machine; this only catches a hang.
BATCH_TIMEOUT_SECONDS = 300


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_corpus_case_is_answered_cleanly_by_every_entry_point(case: str, tmp_path: Path) -> None:
    outcomes = check_all(CORPUS[case], tmp_path)
    crashes = [o for o in outcomes if not o.clean]
    assert not crashes, crashes


def test_corpus_good_documents_are_still_accepted(tmp_path: Path) -> None:
    answers = {
        (name, o.entry): o.detail
        for name in ("good-json-rule", "good-yaml-rule", "utf8-bom-json", "good-decide")
        for o in check_all(CORPUS[name], tmp_path)
    }
    assert answers[("good-json-rule", "parse_rule")] == "valid: fuzz"
    assert answers[("good-json-rule", "validate.json")] == "exit 0: valid"
    assert answers[("good-yaml-rule", "validate.yaml")] == "exit 0: valid"
    assert answers[("utf8-bom-json", "validate.json")] == "exit 0: valid"
    assert answers[("good-decide", "decide")] == "exit 0"


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def test_corpus_batch_under_a_memory_cap_exits_cleanly() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "ampscaler"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.harness"],
        cwd=ROOT,
        env=env,
        preexec_fn=_cap_memory,
        capture_output=True,
        text=True,
        timeout=BATCH_TIMEOUT_SECONDS,
        check=False,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    crashes = [line for line in lines if not line["clean"]]
    assert (done.returncode, crashes, done.stderr) == (0, [], "")
    assert {line["case"] for line in lines} == set(CORPUS)
