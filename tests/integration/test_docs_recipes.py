"""Every shell recipe in docs/decide.md, docs/cli.md and docs/migrate.md, run in a real shell with the tools the docs
name (bash, jq, python, head, ls, diff, cmp) and ``ampscaler`` on PATH, so the docs cannot drift.

- A ```sh block is a recipe: its lines run in one shell, which must exit 0.
- A block of ``$ command`` lines is a transcript: each command runs in turn (in one working
  directory per block) and its output (stdout and stderr together, as a terminal shows them) must
  equal the lines the doc shows under it. The inputs the docs name are in tests/fixtures/docs/ and
  tests/unit/importers/fixtures/.
- Backtests run over 24 h backfilled into a Prometheus of their own with the traffic of
  ``bench/backtest.py``, so the figures are the documented ones; the doc's dates, unix times and
  ``--url`` are translated to that window and server.
- ``push`` runs against moto. The transcripts of live state (``get``, ``describe``, ``explain``) run
  against ``LocalStack`` in the scenario the doc describes (both rules pushed, load on the
  frontend, one tick of the real scaler function, later an invalid version of one rule) and must
  equal the doc once clocks, ages, pod names and sample counts are masked.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shlex
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
from devstack.stack import LocalStack

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


RECIPES = [
    *parse_recipes(ROOT / "docs" / "decide.md"),
    *parse_recipes(ROOT / "docs" / "cli.md"),
    *parse_recipes(ROOT / "docs" / "migrate.md"),
]


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


# -- live state: get, describe, explain -----------------------------------------------------------

# What differs between two runs of the same scenario: clocks, ages, pod names, sample counts.
VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "<time>"),
    (re.compile(r"\b\d{10}\.\d+\b|\b1\d{9}\b"), "<unix>"),
    # kubectl's age format: 26s, 2m5s, 3h, 4d ...
    (re.compile(r"\b(?:\d+[smhd])+( ago)?(?= |$|,|\))"), "<age>"),
    (re.compile(r"\b[a-z]+-[0-9a-f]{10}-[0-9a-z]{5}\b"), "<pod>"),
    (re.compile(r"samples: +\d+ processed"), "samples: <n> processed"),
    (re.compile(r'"samplesProcessed": \d+'), '"samplesProcessed": <n>'),
]


def mask(text: str) -> list[str]:
    """Lines with the volatile parts replaced and runs of spaces (table padding) collapsed."""
    lines = []
    for line in text.rstrip("\n").splitlines():
        for pattern, replacement in VOLATILE:
            line = pattern.sub(replacement, line)
        lines.append(re.sub(r" {2,}", "  ", line.rstrip()))
    return lines


@dataclass
class LiveDocsStack:
    """The scenario docs/cli.md's get/describe/explain transcripts were captured in."""

    stack: LocalStack
    work: Path
    env: dict[str, str]
    tick_time: float
    invalid_version_saved: bool = False


def _scenario(stack: LocalStack, work: Path, tool_path: str) -> LiveDocsStack:
    """Both rules pushed (frontend updated to maxReplicas 12), load on 3 frontend pods, one tick.

    The frontend's 3 pods serve 24, 26 and 28 rps against a target of 10 per pod, so the tick
    scales 3 -> 7 (the default scale-up policies allow +4 per 15 s); the worker's queue holds 130
    messages against 40 per pod on 2 replicas, so the dry-run rule would scale 2 -> 4.
    """
    shutil.copytree(DOC_FIXTURES / "rules", work / "rules")
    env = shell_env(tool_path, **{k: v for k, v in stack.env().items() if not k.startswith("POWERTOOLS")})
    stack.kube.add_deployment("shop", "frontend", 3, labels={"app": "frontend"})
    stack.kube.add_deployment("jobs", "worker", 2, labels={"app": "worker"})
    assert run("ampscaler push rules/frontend.yaml rules/worker.json", work, env).returncode == 0
    frontend = work / "rules" / "frontend.yaml"
    frontend.write_text(frontend.read_text().replace("maxReplicas: 20", "maxReplicas: 12"))
    assert run("ampscaler push rules/frontend.yaml", work, env).returncode == 0
    now = time.time()
    pods = sorted(stack.kube.ready_pods("shop", "app=frontend"))
    series = [
        (
            {"__name__": "http_requests_total", "namespace": "shop", "pod": pod},
            # Into the future as well, so the commands see the same rate however long they take.
            [(now - 180 + 15 * k, float(rps * 15 * k)) for k in range(13 + 4 * 60)],
        )
        for pod, rps in zip(pods, (24, 26, 28), strict=True)
    ]
    # From before the slot's start too: the tick evaluates its queries at the slot's start.
    backlog = [(now - 31 + 15 * k, 130.0) for k in range(4 * 60 + 2)]
    series.append(({"__name__": "rabbitmq_queue_messages_ready", "queue": "jobs"}, backlog))
    stack.write_samples(series)
    return LiveDocsStack(stack, work, env, _one_tick(stack, now))


@pytest.fixture(scope="module")
def live_docs(tmp_path_factory: pytest.TempPathFactory, tool_path: str) -> Iterator[LiveDocsStack]:
    """The scenario of ``_scenario`` on a stack shared by the live transcripts."""
    with LocalStack() as stack:
        yield _scenario(stack, tmp_path_factory.mktemp("live"), tool_path)


def _one_tick(stack: LocalStack, at: float) -> float:
    """One scheduled invocation of the real scaler function at ``at``; returns its evaluation time."""
    from devstack.lambda_runtime import LambdaContext, LineCapture, load_handler, scheduled_event

    capture = LineCapture()
    with stack.environment(SCHEDULE_INTERVAL_SECONDS="15", RULE_CACHE_SECONDS="0"):
        handler = load_handler("scaler", stream=capture)
        # The slot is the 15 s slot containing the firing; on a loaded machine the setup may have
        # used most of it, and a slot past its deadline is not run. Fire in a fresh slot then.
        at = max(at, time.time())
        if at % 15 > 10:
            time.sleep(15 - at % 15 + 0.05)
            at = time.time()
        with contextlib.redirect_stdout(capture):
            handler.lambda_handler(scheduled_event(at), LambdaContext())
    records = [json.loads(line) for line in capture.drain() if line.startswith("{")]
    decisions = [r for r in records if r.get("event") == "decision"]
    assert sorted(r["rule"] for r in decisions) == ["jobs/worker", "shop/frontend"], records
    return float(decisions[0]["input"]["now"])


# The explain transcript captured "right after the tick" (see test_cli_md_explain_right_after_the_tick).
# Found by content, not line number, so editing docs/cli.md above them does not break the test.
RIGHT_AFTER_THE_TICK = next(
    r.id for r in RECIPES if r.steps and r.steps[0].command == "ampscaler explain shop/frontend"
)
# Transcripts captured after "someone saved an invalid version 2 of jobs/worker".
AFTER_INVALID_VERSION = tuple(
    r.id
    for r in RECIPES
    if r.subcommand in ("get", "describe") and any("invalid" in (step.expected or "") for step in r.steps)
)
INVALID_WORKER = {
    "apiVersion": "ampscaler/v1",
    "target": {"cluster": "local", "namespace": "jobs", "kind": "Deployment", "name": "worker"},
    "maxReplicas": 0,
    "metrics": [
        {"name": "backlog", "type": "Externa", "query": 'sum(rabbitmq_queue_messages_ready{queue="jobs"})',
         "target": {"type": "AverageValue", "averageValue": 40}}
    ],
}  # fmt: skip
LIVE_RECIPES = sorted(
    (r for r in RECIPES if r.subcommand in LIVE_COMMANDS and r.id != RIGHT_AFTER_THE_TICK),
    key=lambda r: r.id in AFTER_INVALID_VERSION,  # stable: the doc's order within each state
)


@pytest.mark.parametrize("recipe", LIVE_RECIPES, ids=lambda r: r.id)
def test_cli_md_live_transcript(
    recipe: Recipe, live_docs: LiveDocsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same lines as the doc once clocks, ages, pod names and sample counts are masked."""
    if recipe.id in AFTER_INVALID_VERSION and not live_docs.invalid_version_saved:
        live_docs.invalid_version_saved = True
        live_docs.stack.client("ssm").put_parameter(
            Name="/ampscaler/rules/jobs/worker",
            Value=json.dumps(INVALID_WORKER),
            Type="String",
            Overwrite=True,
        )
    for step in recipe.steps:
        done = run(step.command, live_docs.work, live_docs.env)
        assert done.returncode == 0, f"{recipe.id}: `{step.command}`:\n{done.stdout}"
        assert mask(done.stdout) == mask(step.expected or ""), (
            f"{recipe.id}: `{step.command}`:\n{done.stdout}"
        )


# "Right after the tick that scaled shop/frontend from 3 to 7": the rate limit holds it at 7 only
# while the tick's scale-up is inside the 15 s policy period, so this transcript gets a scenario of
# its own and runs the command through the CLI in-process at once after the tick. Should a loaded
# machine still take 10 s or more to get there, the evaluation would no longer be "right after the
# tick", and a fresh scenario is set up instead of comparing.
RIGHT_AFTER_SECONDS = 10.0
ATTEMPTS = 5


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r.id == RIGHT_AFTER_THE_TICK], ids=lambda r: r.id)
def test_cli_md_explain_right_after_the_tick(
    recipe: Recipe, tool_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [step] = recipe.steps
    for attempt in range(ATTEMPTS):
        with LocalStack() as stack:
            live = _scenario(stack, tmp_path / f"attempt-{attempt}", tool_path)
            code, stdout = _explain_in_process(step.command, live, monkeypatch)
            if time.time() - live.tick_time < RIGHT_AFTER_SECONDS:
                break
    else:
        pytest.fail(
            f"{ATTEMPTS} attempts all took {RIGHT_AFTER_SECONDS:g} s or more from the tick to explain"
        )
    assert code == 0, stdout
    assert mask(stdout) == mask(step.expected or ""), stdout


def _explain_in_process(
    command: str, live: LiveDocsStack, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    """``ampscaler explain ...`` through the CLI's own parser and command, in this process."""
    from ampscaler.cli.main import main

    argv = shlex.split(command)
    assert argv[:2] == ["ampscaler", "explain"], command
    for name in [n for n in os.environ if n.startswith("AWS_") or n in CONFLICTING_ENV]:
        monkeypatch.delenv(name)
    for name, value in live.env.items():
        monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv[1:])
    return code, err.getvalue() + out.getvalue()


def test_every_transcript_is_covered() -> None:
    """A new recipe must get a test here, or it could drift unnoticed."""
    covered = {"validate", "decide", "import", "backtest", "push", *LIVE_COMMANDS}
    for recipe in RECIPES:
        if recipe.doc == "decide.md":
            continue
        first = recipe.steps[0].command
        assert recipe.subcommand in covered, f"{recipe.id}: no test runs `{first}`"
