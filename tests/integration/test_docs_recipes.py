"""Every shell recipe in docs/decide.md and docs/cli.md, run in a real shell with the tools the docs
name (bash, jq, python, head, ls, diff, cmp) and ``ampscaler`` on PATH, so the docs cannot drift.

- A ```sh block is a recipe: its lines run in one shell, which must exit 0.
- A block of ``$ command`` lines is a transcript: each command runs in turn (in one working
  directory per block) and its output (stdout and stderr together, as a terminal shows them) must
  equal the lines the doc shows under it. The inputs the docs name are in tests/fixtures/docs/ and
  tests/unit/importers/fixtures/.
- Backtests run over 24 h backfilled into a Prometheus of their own with the traffic of
  ``bench/backtest.py``, so the figures are the documented ones; the doc's dates, unix times and
  ``--url`` are translated to that window and server.
- Transcripts of live state (``push``, ``get``, ``describe``, ``explain``) are in
  ``LIVE_COMMANDS``; see ``test_every_transcript_is_covered``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.backtest import daily_http_series
from devstack.backfill import backfill
from devstack.moto import CONFLICTING_ENV, MotoServer
from devstack.prometheus import PrometheusServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOC_FIXTURES = ROOT / "tests" / "fixtures" / "docs"
IMPORT_FIXTURES = ROOT / "tests" / "unit" / "importers" / "fixtures"
DAY_SECONDS = 86400
# The window the backtest transcripts were captured over, and the server they name.
DOC_BACKTEST_START = datetime(2026, 11, 22, 5, tzinfo=UTC).timestamp()
DOC_PROMETHEUS_URL = "http://localhost:9090"
# Subcommands whose transcripts show live cluster state (ages, pod names, current metric values).
LIVE_COMMANDS = ("get", "describe", "explain")


@dataclass(frozen=True)
class Step:
    """One command and, in a transcript, the output the doc shows for it."""

    command: str
    expected: str | None


@dataclass(frozen=True)
class Recipe:
    """One fenced block of a doc."""

    doc: str
    line: int
    steps: tuple[Step, ...]

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def subcommand(self) -> str:
        """The ampscaler subcommand of the first step ("" when it does not run ampscaler)."""
        words = self.steps[0].command.split()
        return words[1] if words[:1] == ["ampscaler"] and len(words) > 1 else ""


def parse_recipes(path: Path) -> list[Recipe]:
    """The ```sh blocks and the ``$``-transcript blocks of a markdown file."""
    recipes: list[Recipe] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if fence is None:
            i += 1
            continue
        start = i + 1
        end = start
        while not lines[end].startswith("```"):
            end += 1
        body = lines[start:end]
        if fence.group(1) in ("sh", "bash"):
            steps = tuple(
                Step(line, None) for line in body if line.strip() and not line.lstrip().startswith("#")
            )
            recipes.append(Recipe(path.name, start, steps))
        elif body and body[0].startswith("$ "):
            recipes.append(Recipe(path.name, start, _transcript(body)))
        i = end + 1
    return recipes


def _transcript(body: list[str]) -> tuple[Step, ...]:
    steps: list[Step] = []
    k = 0
    while k < len(body):
        command = body[k][2:]
        while command.endswith("\\"):
            k += 1
            command = command[:-1] + " " + body[k].strip()
        k += 1
        output: list[str] = []
        while k < len(body) and not body[k].startswith("$ "):
            output.append(body[k])
            k += 1
        steps.append(Step(command, "\n".join(output)))
    return tuple(steps)


RECIPES = [*parse_recipes(ROOT / "docs" / "decide.md"), *parse_recipes(ROOT / "docs" / "cli.md")]


# ------------------------------------------------------------------------------------ the shell


@pytest.fixture(scope="module")
def tool_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """PATH with ``ampscaler``, ``python`` and ``python3`` of this interpreter, then the system's."""
    bin_dir = tmp_path_factory.mktemp("bin")
    # Scripts, not symlinks: a symlinked venv interpreter would not find its pyvenv.cfg.
    scripts = {
        "ampscaler": f'exec "{sys.executable}" -m ampscaler.cli.main "$@"',
        "python": f'exec "{sys.executable}" "$@"',
        "python3": f'exec "{sys.executable}" "$@"',
    }
    for name, line in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{line}\n")
        (bin_dir / name).chmod(0o755)
    for tool in ("bash", "jq", "head", "ls", "diff", "cmp"):
        assert shutil.which(tool), f"{tool} is named by the docs; scripts/bootstrap.sh installs it"
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def shell_env(tool_path: str, **extra: str) -> dict[str, str]:
    """The environment of a reader's shell: no AWS settings of this machine, ampscaler importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in CONFLICTING_ENV}
    env.update(
        PATH=tool_path,
        PYTHONPATH=os.pathsep.join([str(ROOT / "layers" / "ampscaler"), str(ROOT)]),
        # Both streams unbuffered, so the merged output keeps the order a terminal shows.
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    env.update(extra)
    return env


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` in bash (pipefail, so a failing ``ampscaler`` in a pipe fails the step)."""
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,  # a hang bound; every command takes seconds
        check=False,
    )


def check_transcript(
    recipe: Recipe, cwd: Path, env: dict[str, str], translate: dict[str, str] | None = None
) -> None:
    """Run each ``$`` command; its output must be the documented one."""
    for step in recipe.steps:
        command, expected = _translate(step.command, translate), _translate(step.expected or "", translate)
        done = run(command, cwd, env)
        got = "\n".join(line.rstrip() for line in done.stdout.rstrip("\n").splitlines())
        want = "\n".join(line.rstrip() for line in expected.splitlines())
        assert got == want, f"{recipe.id}: `{command}` (exit {done.returncode}) printed:\n{done.stdout}"


def _translate(text: str, table: dict[str, str] | None) -> str:
    for old, new in (table or {}).items():
        text = text.replace(old, new)
    return text


# ------------------------------------------------------------------------------------ recipes


def _recipes(predicate: str) -> list[Recipe]:
    found = [r for r in RECIPES if r.subcommand == predicate]
    assert found, f"no recipe for {predicate!r}"
    return found


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r.doc == "decide.md"], ids=lambda r: r.id)
def test_decide_md_replay_recipe_runs_and_reports_the_same_decision(
    recipe: Recipe, tool_path: str, tmp_path: Path
) -> None:
    # A decision record as the scaler logs it: floats such as 20.0 that jq 1.6 prints as 20.
    from ampscaler import contract

    document = json.loads((DOC_FIXTURES / "scale-up.json").read_text())
    record = {
        "level": "INFO",
        "event": "decision",
        "input": document,
        "output": contract.decide_document(document),
    }
    (tmp_path / "logged-line.json").write_text(json.dumps(record) + "\n")

    done = run("\n".join(step.command for step in recipe.steps), tmp_path, shell_env(tool_path))

    assert done.returncode == 0, done.stdout
    assert "same decision" in done.stdout and "byte for byte" in done.stdout, done.stdout


@pytest.mark.parametrize("recipe", _recipes("validate"), ids=lambda r: r.id)
def test_cli_md_validate_transcript(recipe: Recipe, tool_path: str, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    shutil.copy(DOC_FIXTURES / "bad.yaml", tmp_path)
    check_transcript(recipe, tmp_path, shell_env(tool_path))


@pytest.mark.parametrize("recipe", _recipes("decide"), ids=lambda r: r.id)
def test_cli_md_decide_transcript(recipe: Recipe, tool_path: str, tmp_path: Path) -> None:
    shutil.copy(DOC_FIXTURES / "scale-up.json", tmp_path)
    check_transcript(recipe, tmp_path, shell_env(tool_path))


@pytest.mark.parametrize("recipe", _recipes("import"), ids=lambda r: r.id)
def test_cli_md_import_transcript(recipe: Recipe, tool_path: str, tmp_path: Path) -> None:
    for fixture in IMPORT_FIXTURES.iterdir():
        shutil.copy(fixture, tmp_path)
    check_transcript(recipe, tmp_path, shell_env(tool_path))


@pytest.fixture(scope="module")
def history() -> Iterator[tuple[PrometheusServer, float]]:
    """A Prometheus with bench/backtest.py's 24 h of traffic, ending at a whole hour two hours ago."""
    end = math.floor(time.time() / 3600) * 3600 - 2 * 3600
    start = end - DAY_SECONDS
    with PrometheusServer() as server:
        # Two extra minutes so rate()[2m] already has samples at the first tick, as in the doc's run.
        backfill(server, daily_http_series("http_requests_total", start - 120, end))
        yield server, float(start)


def _shifted(doc_text_start: float, test_start: float) -> dict[str, str]:
    """Doc timestamps (RFC3339 and unix) of the captured window -> the same offsets in the test's."""
    table: dict[str, str] = {}
    for offset in (0, 15, DAY_SECONDS - 15, DAY_SECONDS):
        doc_at, test_at = doc_text_start + offset, test_start + offset
        table[_rfc3339(doc_at)] = _rfc3339(test_at)
        table[str(int(doc_at))] = str(int(test_at))
    return table


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("recipe", _recipes("backtest"), ids=lambda r: r.id)
def test_cli_md_backtest_transcript(
    recipe: Recipe, history: tuple[PrometheusServer, float], tool_path: str, tmp_path: Path
) -> None:
    server, start = history
    for name in ("frontend.json", "frontend-lean.json"):
        shutil.copy(DOC_FIXTURES / name, tmp_path)
    translate = {**_shifted(DOC_BACKTEST_START, start), DOC_PROMETHEUS_URL: server.url}
    check_transcript(recipe, tmp_path, shell_env(tool_path), translate)


@pytest.fixture(scope="module")
def ssm_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.mark.parametrize("recipe", _recipes("push"), ids=lambda r: r.id)
def test_cli_md_push_transcript(
    recipe: Recipe, ssm_server: MotoServer, tool_path: str, tmp_path: Path
) -> None:
    """The three push transcripts: a new rule (dry run), an update after a first push, an invalid file."""
    ssm_server.reset()
    env = shell_env(tool_path, **ssm_server.aws_env())
    shutil.copytree(DOC_FIXTURES / "rules", tmp_path / "rules")
    if "maxReplicas: 20` became `12`" in _text_before(recipe):
        assert run("ampscaler push rules/frontend.yaml rules/worker.json", tmp_path, env).returncode == 0
        frontend = tmp_path / "rules" / "frontend.yaml"
        frontend.write_text(frontend.read_text().replace("maxReplicas: 20", "maxReplicas: 12"))
    check_transcript(recipe, tmp_path, env)


def _text_before(recipe: Recipe) -> str:
    """The paragraph just above a recipe (it says which state the transcript starts from)."""
    lines = (ROOT / "docs" / recipe.doc).read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[max(0, recipe.line - 4) : recipe.line - 1])


def test_every_transcript_is_covered() -> None:
    """A new recipe must get a test here, or it could drift unnoticed."""
    covered = {"validate", "decide", "import", "backtest", "push", *LIVE_COMMANDS}
    for recipe in RECIPES:
        if recipe.doc == "decide.md":
            continue
        first = recipe.steps[0].command
        assert recipe.subcommand in covered, f"{recipe.id}: no test runs `{first}`"
