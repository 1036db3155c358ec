"""``ampscaler decide``: the real console script for the byte-for-byte contract, main(argv) for the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ampscaler.cli.main import main
from ampscaler.contract import decide_document, dumps

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "ampscaler"


def pods_rule_input() -> dict[str, Any]:
    """3 pods at 35 rps each against an AverageValue target of 10 (docs/rules.md scenario 1)."""
    return {
        "rule": {
            "apiVersion": "ampscaler/v1",
            "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "frontend"},
            "minReplicas": 2,
            "maxReplicas": 20,
            "metrics": [
                {
                    "name": "rps",
                    "type": "Pods",
                    "query": "sum by (pod) (rate(http_requests_total[2m]))",
                    "target": {"type": "AverageValue", "averageValue": 10},
                }
            ],
            "behavior": {},
        },
        "now": 1700000000.0,
        "scale": {"specReplicas": 3, "statusReplicas": 3},
        "pods": [{"name": f"p{i}"} for i in range(3)],
        "metrics": [{"name": "rps", "podValues": {f"p{i}": 35.0 for i in range(3)}}],
        "state": None,
    }


def external_value_input(replicas: int, state: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """Queue length 30 against an External Value target of 40, no scale-down stabilization."""
    return {
        "rule": {
            "apiVersion": "ampscaler/v1",
            "target": {"cluster": "prod", "namespace": "jobs", "kind": "Deployment", "name": "worker"},
            "minReplicas": 1,
            "maxReplicas": 25,
            "metrics": [
                {
                    "name": "backlog",
                    "type": "External",
                    "query": "sum(q)",
                    "target": {"type": "Value", "value": 40},
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        },
        "now": now,
        "scale": {"specReplicas": replicas, "statusReplicas": replicas},
        "pods": [{"name": f"w{i}"} for i in range(replicas)],
        "metrics": [{"name": "backlog", "value": 30.0}],
        "state": state,
    }


def run_script(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


def test_console_script_output_is_byte_identical_to_the_logged_form() -> None:
    doc = pods_rule_input()
    result = run_script("decide", stdin=json.dumps(doc, indent=2))
    assert result.returncode == 0, result.stderr
    assert result.stdout == dumps(decide_document(doc)) + "\n"
    out = json.loads(result.stdout)
    # Per-pod 35 against 10: ceil(3 * 3.5) = 11; the default scale-up policies allow max(3+4, 3*2) = 7.
    assert out["metrics"][0]["proposal"] == 11
    assert out["desiredReplicas"] == 7


def test_console_script_invalid_input_exits_2_with_details() -> None:
    doc = pods_rule_input()
    doc["rule"]["metrics"][0]["target"]["averageValue"] = -3
    result = run_script("decide", stdin=json.dumps(doc))
    assert result.returncode == 2
    assert json.loads(result.stdout) == {
        "error": "invalid decide input",
        "details": ["rule.metrics[0].target.averageValue: must be a positive number, got -3"],
    }


def test_decide_reads_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "in.json"
    file.write_text(json.dumps(pods_rule_input()), encoding="utf-8")
    code, out = run_main(["decide", "--input", str(file)], capsys)
    assert code == 0
    assert out == dumps(decide_document(pods_rule_input())) + "\n"


def test_decide_replay_of_own_output_state_walks_external_value_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue scenario: External Value target 40, metric 30, 5 replicas -> 4 -> 3 -> 3,
    # since the Value proposal is ceil(ready pods x 30/40) and ceil(3 x 0.75) = 3.
    replicas, state, seen = 5, None, []
    for step in range(4):
        file = tmp_path / f"in{step}.json"
        file.write_text(
            json.dumps(external_value_input(replicas, state, 1700000000.0 + 60 * step)), encoding="utf-8"
        )
        code, out = run_main(["decide", "-i", str(file)], capsys)
        assert code == 0
        decision = json.loads(out)
        replicas, state = decision["desiredReplicas"], decision["state"]
        seen.append(replicas)
    assert seen == [4, 3, 3, 3]


@pytest.mark.parametrize(
    ("text", "error", "detail"),
    [
        pytest.param(
            '{"rule": ', "invalid JSON", "invalid JSON at line 1 column 10: Expecting value", id="truncated"
        ),
        pytest.param(
            '{"now": NaN}', "invalid JSON", "NaN is not valid JSON (numbers must be finite)", id="nan-literal"
        ),
        pytest.param('{"now": 1, "now": 2}', "invalid JSON", 'duplicate key "now"', id="duplicate-key"),
        pytest.param(
            "[]", "invalid decide input", "(document): must be an object, got array", id="not-an-object"
        ),
    ],
)
def test_decide_rejects_bad_json_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, error: str, detail: str
) -> None:
    file = tmp_path / "in.json"
    file.write_text(text, encoding="utf-8")
    code, out = run_main(["decide", "--input", str(file)], capsys)
    assert code == 2
    assert json.loads(out) == {"error": error, "details": [detail]}


def test_decide_missing_input_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_main(["decide", "--input", str(tmp_path / "nope.json")], capsys)
    assert code == 2
    assert json.loads(out)["error"] == "cannot read input"


def test_decide_reports_every_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = pods_rule_input()
    del doc["now"]
    doc["scale"]["specReplicas"] = "3"
    doc["rule"]["maxReplica"] = 3
    file = tmp_path / "in.json"
    file.write_text(json.dumps(doc), encoding="utf-8")
    code, out = run_main(["decide", "--input", str(file)], capsys)
    assert code == 2
    assert json.loads(out)["details"] == [
        "now: required (unix seconds of the evaluation, e.g. 1700000000.0)",
        'rule.maxReplica: unknown field (did you mean "maxReplicas"?)',
        'scale.specReplicas: must be an integer, got "3" (write a plain JSON number without quotes: 3)',
    ]


def test_decide_paused_rule_reports_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = pods_rule_input()
    doc["rule"]["paused"] = True
    file = tmp_path / "in.json"
    file.write_text(json.dumps(doc), encoding="utf-8")
    code, out = run_main(["decide", "--input", str(file)], capsys)
    assert code == 0
    assert json.loads(out)["mode"] == "paused"


def test_help_lists_commands_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for expected in ("decide", "validate", "examples:", "ampscaler decide --input", "--region", "--profile"):
        assert expected in text


def test_no_command_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: ampscaler" in capsys.readouterr().err


def test_docs_output_example_is_the_real_output() -> None:
    text = (ROOT / "docs" / "decide.md").read_text(encoding="utf-8")
    (example,) = [line for line in text.splitlines() if line.startswith('{"desiredReplicas"')]
    assert example == dumps(decide_document(pods_rule_input()))
