"""``ampscaler validate``: every error per file, exit 1 on any invalid file, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ampscaler.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(p) for p in (ROOT / "examples" / "rules").glob("*.*"))

GOOD = """\
apiVersion: ampscaler/v1
target: {cluster: prod, namespace: shop, kind: Deployment, name: frontend}
maxReplicas: 10
metrics:
  - name: rps
    type: Pods
    query: sum by (pod) (rate(http_requests_total[2m]))
    target: {type: AverageValue, averageValue: 10}
"""


def test_validate_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *EXAMPLES]) == 0
    out = capsys.readouterr().out
    assert out.count(": valid (") == len(EXAMPLES)


def test_validate_prints_every_error_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        GOOD.replace("maxReplicas: 10", "maxReplicas: 10\nminReplicas: 12").replace(
            "sum by (pod) (rate(http_requests_total[2m]))", "sum(rate(http_requests_total[2m])"
        ),
        encoding="utf-8",
    )
    assert main(["validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{good}: valid (1 rule: prod/shop/frontend)"
    # Every problem at once: the PromQL and Pods-grouping errors are not hidden by the format error.
    assert out[1:] == [
        f"{bad}: INVALID (3 errors)",
        "  error: maxReplicas: must be greater than or equal to minReplicas (12), got 10",
        "  error: metrics[0].query: unclosed '(' from column 4",
        "  error: metrics[0].query: a Pods query must return one series per pod, grouped by the 'pod' label "
        "(aggregate with sum by (pod) (...))",
    ]


def test_validate_semantic_errors_after_format_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        GOOD.replace("sum by (pod) (rate(http_requests_total[2m]))", "sum(rate(x[2m])"), encoding="utf-8"
    )
    assert main(["validate", "--output", "json", str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["files"][0]["errors"] == [
        "metrics[0].query: unclosed '(' from column 4",
        "metrics[0].query: a Pods query must return one series per pod, grouped by the 'pod' label "
        "(aggregate with sum by (pod) (...))",
    ]


def test_validate_multi_document_file_and_cluster_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "rules.yaml"
    second = GOOD.replace("cluster: prod, ", "").replace("frontend", "backend")
    file.write_text(GOOD + "---\n" + second, encoding="utf-8")
    assert main(["validate", str(file)]) == 1
    assert "document 2: target.cluster: required" in capsys.readouterr().out
    assert main(["validate", "--cluster", "staging", str(file)]) == 0
    assert "2 rules: prod/shop/frontend, staging/shop/backend" in capsys.readouterr().out


def test_validate_warnings_do_not_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "rule.yaml"
    file.write_text(GOOD + "cooldownPeriodSeconds: 60\n", encoding="utf-8")
    assert main(["validate", str(file)]) == 0
    assert "  warning: cooldownPeriodSeconds: only matters when minReplicas is 0" in capsys.readouterr().out


def test_validate_unreadable_and_undecodable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert main(["validate", str(tmp_path / "missing.yaml"), str(broken)]) == 1
    out = capsys.readouterr().out
    assert "missing.yaml: INVALID (1 error)\n  error: (file): cannot read: No such file or directory" in out
    assert "  error: (document): invalid JSON at line 1 column 2" in out
