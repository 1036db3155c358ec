"""Every command answers hostile input with a message and its documented exit code, never a traceback.

The inputs are the issue's cases: deep nesting, invalid UTF-8, lone surrogates, huge integers,
alias bombs, binary files, directories, missing files, duplicate keys, byte-order marks. Each
assertion also checks the answer is not the CLI's last-resort "internal error" line: that line
exists for bugs, and these inputs are not bugs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ampscaler.cli.main import main
from tests.unit.test_rule_limits import BOMB_RULE

GOOD_RULE = """\
apiVersion: ampscaler/v1
target: {cluster: prod, namespace: shop, kind: Deployment, name: frontend}
maxReplicas: 10
metrics:
  - name: backlog
    type: External
    query: sum(queue_length)
    target: {type: Value, value: 10}
"""

# name -> (file name, content); content None means "do not create" (a missing file).
Hostile = tuple[str, bytes | None]
HOSTILE: dict[str, Hostile] = {
    "alias-bomb": ("bomb.yaml", BOMB_RULE.encode()),
    "deep-json": ("deep.json", b"[" * 100_000 + b"]" * 100_000),
    "deep-yaml": ("deep.yaml", b"a: " + b"[" * 100_000 + b"]" * 100_000),
    "invalid-utf8": ("latin1.yaml", GOOD_RULE.replace("shop", "caf\xe9").encode("latin-1")),
    "utf16": ("utf16.json", json.dumps({"apiVersion": "ampscaler/v1"}).encode("utf-16")),
    "lone-surrogate": ("surrogate.json", b'{"apiVersion": "ampscaler/v1", "name": "a\\ud800"}'),
    "huge-int-json": ("huge.json", b'{"apiVersion": "ampscaler/v1", "maxReplicas": ' + b"9" * 5000 + b"}"),
    "huge-int-yaml": ("huge.yaml", GOOD_RULE.replace("10\n", "9" * 400 + "\n", 1).encode()),
    "huge-float": ("float.json", b'{"now": 1e400, "maxReplicas": 1e400}'),
    "binary": ("binary.yaml", bytes(range(256)) * 4),
    "nul-bytes": ("nul.json", b"\x00" * 64),
    "duplicate-keys": (
        "dup.yaml",
        GOOD_RULE.replace("maxReplicas: 10", "maxReplicas: 5\nmaxReplicas: 500").encode(),
    ),
    "empty": ("empty.yaml", b""),
    "huge-file": ("big.yaml", b"# " + b"x" * (33 * 1024 * 1024) + b"\n"),
    "missing": ("missing.yaml", None),
}


def materialise(tmp_path: Path, case: str) -> str:
    name, content = HOSTILE[case]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    return str(path)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_validate_hostile_file_is_reported_invalid_with_exit_1(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = materialise(tmp_path, case)
    code, out, _ = run(["validate", "--output", "json", path], capsys)
    assert code == 1
    report = json.loads(out)["files"][0]
    assert report["valid"] is False and report["errors"], report
    # Each message is one bounded line, whatever the input held.
    assert all(len(e) < 400 and "\n" not in e for e in report["errors"])


def test_validate_directory_is_reported_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "rules.yaml"
    directory.mkdir()
    code, out, _ = run(["validate", str(directory)], capsys)
    assert code == 1
    assert "(file): cannot read: Is a directory" in out


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\xef\xbb\xbf" + GOOD_RULE.encode(), id="yaml"),
        pytest.param(b"\xef\xbb\xbf" + json.dumps({"x": 1}).encode(), id="json"),
    ],
)
def test_validate_accepts_a_bom_as_the_lambda_does(
    content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: validate refused a BOM in a .json file that the scaler's loader accepted.
    path = tmp_path / ("rule.yaml" if content.startswith(b"\xef\xbb\xbfapi") else "rule.json")
    path.write_bytes(content)
    code, out, _ = run(["validate", str(path)], capsys)
    if path.suffix == ".yaml":
        assert code == 0, out
    else:
        assert "BOM" not in out and "invalid JSON" not in out
        assert "x: unknown field" in out


def test_validate_reports_policy_errors_from_environment_and_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text(GOOD_RULE, encoding="utf-8")
    monkeypatch.setenv("ALLOWED_NAMESPACES", "web")
    monkeypatch.setenv("MAX_REPLICAS_CEILING", "5")
    code, out, _ = run(["validate", str(path)], capsys)
    assert code == 1
    assert "target.namespace: namespace 'shop' is not in ALLOWED_NAMESPACES (web)" in out
    assert "maxReplicas: must be at most 5 (the operator's MAX_REPLICAS_CEILING), got 10" in out
    # Flags override the environment.
    code, out, _ = run(
        ["validate", "--allowed-namespaces", "shop", "--max-replicas-ceiling", "10", str(path)], capsys
    )
    assert code == 0, out
    code, out, _ = run(["validate", "--allowed-clusters", "dev", str(path)], capsys)
    assert code == 1 and "cluster 'prod' is not in ALLOWED_CLUSTERS (dev)" in out


def test_validate_bad_ceiling_setting_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text(GOOD_RULE, encoding="utf-8")
    monkeypatch.setenv("MAX_REPLICAS_CEILING", "lots")
    code, _, err = run(["validate", str(path)], capsys)
    assert code == 2
    assert "MAX_REPLICAS_CEILING='lots': must be an integer between 1 and 2147483647" in err
    with pytest.raises(SystemExit) as info:
        main(["validate", "--max-replicas-ceiling", "0", str(path)])
    assert info.value.code == 2


def test_validate_rule_too_large_for_one_parameter_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = "".join(
        f"  - {{name: m{i}, type: External, query: 'sum(q{i}{{a=\"{'x' * 60}\"}})', target: {{type: Value, value: 1}}}}\n"
        for i in range(40)
    )
    path = tmp_path / "big.yaml"
    path.write_text(GOOD_RULE.split("metrics:")[0] + "metrics:\n" + metrics, encoding="utf-8")
    code, out, _ = run(["validate", str(path)], capsys)
    assert code == 1
    assert "bytes; one SSM parameter holds at most 8192" in out


# --------------------------------------------------------------------------- decide


@pytest.mark.parametrize("case", sorted(set(HOSTILE) - {"missing"}))
def test_decide_hostile_input_exits_2_with_a_json_error(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = materialise(tmp_path, case)
    code, out, _ = run(["decide", "--input", path], capsys)
    assert code == 2
    answer = json.loads(out)
    assert set(answer) == {"error", "details"} and answer["details"]


@pytest.mark.parametrize("make", [lambda p: p, lambda p: p / "missing.json"], ids=["directory", "missing"])
def test_decide_unreadable_input_exits_2(
    make: Callable[[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["decide", "--input", str(make(tmp_path))], capsys)
    assert code == 2
    assert json.loads(out)["error"] == "cannot read input"


# --------------------------------------------------------------------------- import


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_import_hostile_file_exits_1_with_a_message(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = materialise(tmp_path, case)
    code, _, err = run(["import", path], capsys)
    assert code == 1
    assert err.strip(), "the reason is printed"


@pytest.mark.parametrize("case", ["alias-bomb", "deep-yaml", "invalid-utf8", "duplicate-keys", "missing"])
def test_import_hostile_adapter_config_exits_1_before_converting(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "hpa.yaml"
    manifest.write_text("kind: HorizontalPodAutoscaler\n", encoding="utf-8")
    code, _, err = run(["import", str(manifest), "--adapter-config", materialise(tmp_path, case)], capsys)
    assert code == 1
    assert err.startswith("error: --adapter-config ")


def test_import_deeply_nested_v1_metrics_annotation_is_a_per_item_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    manifest = tmp_path / "hpa.yaml"
    manifest.write_text(
        "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\n"
        "metadata: {name: web, namespace: shop, annotations: "
        f"{{autoscaling.alpha.kubernetes.io/metrics: '{deep}'}}}}\n"
        "spec: {scaleTargetRef: {kind: Deployment, name: web}, maxReplicas: 5}\n",
        encoding="utf-8",
    )
    code, out, _ = run(["import", str(manifest)], capsys)
    assert code == 1
    assert "annotation is not a JSON list of metrics: nested deeper than 64 levels" in out


# --------------------------------------------------------------------------- backtest and push


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--step", "1e-300"], "--step must be at least 0.001s"),
        (["--step", "nan"], "not a duration: 'nan'"),
        (["--step", "inf"], "not a duration: 'inf'"),
        (["--from", "1e400"], "not a time: '1e400'"),
        (["--from=-inf"], "not a duration: 'inf'"),
        (["--from=-1e400s"], "not a duration"),
        (["--from", "0", "--step", "0.001"], "evaluations; at most 1100000"),
        (["--startup-delay", "1e999"], "not a duration"),
    ],
)
def test_backtest_hostile_arguments_exit_2_with_one_line(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = tmp_path / "rule.yaml"
    rule.write_text(GOOD_RULE, encoding="utf-8")
    argv = ["backtest", str(rule), "--url", "http://127.0.0.1:9"]
    if not any(o.startswith("--from") for o in options):
        argv += ["--from", "-1h"]
    code, _, err = run([*argv, *options], capsys)
    # Bad arguments exit 2, as docs/cli.md says, whichever check refuses them.
    assert code == 2
    assert err.startswith("ampscaler backtest: error: ") and message in err, err


@pytest.mark.parametrize(
    "case", ["alias-bomb", "deep-yaml", "invalid-utf8", "binary", "duplicate-keys", "missing"]
)
def test_backtest_hostile_rule_file_exits_1(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        ["backtest", materialise(tmp_path, case), "--from", "-1h", "--url", "http://127.0.0.1:9"], capsys
    )
    assert code == 1
    assert err.startswith("ampscaler backtest: error: ")


@pytest.mark.parametrize(
    "case", ["alias-bomb", "deep-json", "lone-surrogate", "huge-int-json", "binary", "missing"]
)
def test_push_hostile_file_writes_nothing_and_exits_1(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Validation fails before any AWS call: no session, no endpoint is needed.
    code, _, err = run(["push", materialise(tmp_path, case), "--dry-run"], capsys)
    assert code == 1
    assert "validation error(s); nothing was written" in err


def test_main_unexpected_exception_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The last line of defence, for bugs: a command that raises still prints one line.
    from ampscaler.cli import validate

    def explode(_: object) -> int:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(validate, "run", explode)
    monkeypatch.setattr("ampscaler.cli.main.COMMAND_MODULES", ["ampscaler.cli.validate"])
    assert main(["validate", "x.yaml"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "ampscaler validate: error: internal error RecursionError: "
        '"maximum recursion depth exceeded" (please report this)\n'
    )
