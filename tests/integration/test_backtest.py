"""``ampscaler backtest`` end to end against a real Prometheus holding 24 h of backfilled history.

Real: the Prometheus server (Debian binary), promtool backfill, the SigV4-verifying AMP proxy,
the engine, matplotlib. Simulated: the traffic (a daily shape from bench/backtest.py) and the
"real" Deployment's pod count in that history.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from ampscaler.cli import main as cli_main
from bench.backtest import DAY_SECONDS, daily_http_series, demand_rps, observed_pods, pods_rule_document
from devstack.backfill import backfill
from devstack.prometheus import PrometheusServer
from devstack.sigv4_proxy import SigV4Proxy
from tests.fixtures.prometheus import AMP_ACCESS_KEY_ID, AMP_REGION, AMP_SECRET_ACCESS_KEY, AMP_WORKSPACE_ID

pytestmark = pytest.mark.integration

METRIC = "backtest_http_requests_total"
STEP = 15
TICKS = DAY_SECONDS // STEP
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history_server() -> Iterator[tuple[PrometheusServer, float, float]]:
    """A Prometheus of its own with 24 h of per-pod counters ending two whole hours ago.

    Its own server, because backfilling restarts the server to load the blocks at once.
    """
    end = math.floor(time.time() / 3600) * 3600 - 2 * 3600
    start = end - DAY_SECONDS
    with PrometheusServer() as server:
        # Two extra minutes so rate()[2m] already has samples at the first tick.
        backfill(server, daily_http_series(METRIC, start - 120, end))
        yield server, float(start), float(end)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``ampscaler ...`` in-process through cli.main.main; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli_main.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _rule_file(tmp_path: Path, name: str, average_value: float) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(pods_rule_document(METRIC, average_value=average_value, name=name)))
    return str(path)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_backtest_24h_writes_csv_chart_and_a_sane_summary(history_server, run_cli, tmp_path):
    server, start, end = history_server
    csv_path, png_path = tmp_path / "web.csv", tmp_path / "web.png"
    code, out, err = run_cli(
        "backtest",
        _rule_file(tmp_path, "web", 20),
        "--from",
        str(int(start)),
        "--to",
        str(int(end)),
        "--url",
        server.url,
        "--csv",
        str(csv_path),
        "--chart",
        str(png_path),
        "--output",
        "json",
    )
    assert code == 0, err
    doc = json.loads(out)

    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == TICKS == 5760
    assert rows[0]["unix"] == str(int(start)) and rows[-1]["unix"] == str(int(end) - STEP)

    width, height = _png_size(png_path)
    assert width > 300 and height > 300
    import matplotlib.image

    assert matplotlib.image.imread(str(png_path)).shape[:2] == (height, width)

    summary = doc["rules"][0]["summary"]
    observed = doc["observed"]
    assert summary["ticks"] == TICKS
    assert summary["metricErrorTicks"] == 0
    # The history's own pod count, as the generator produced it (observed = series per step).
    expected_observed = sum(observed_pods(demand_rps(start + k * STEP, start - 120)) for k in range(TICKS))
    assert observed["replicaHours"] == pytest.approx(expected_observed * STEP / 3600, rel=0.02)
    # Same 20 rps per pod target as the real Deployment: similar replica-hours, within bounds.
    assert 2 <= summary["minReplicas"] <= summary["peakReplicas"] <= 20
    assert summary["replicaHours"] == pytest.approx(observed["replicaHours"], rel=0.15)
    assert 0 < summary["scaleEvents"] < TICKS / 10
    assert summary["directionChanges"] <= summary["scaleEvents"]
    assert 0 <= summary["aboveTargetPercent"] < 20
    assert doc["files"] == {"csv": str(csv_path), "chart": str(png_path)}
    # Every CSV row agrees with the summary's peak.
    assert max(int(r["desired_replicas"]) for r in rows) == summary["peakReplicas"]


def test_backtest_compare_writes_both_rules_side_by_side(history_server, run_cli, tmp_path):
    server, start, _ = history_server
    single_png, compare_png, csv_path = tmp_path / "one.png", tmp_path / "two.png", tmp_path / "two.csv"
    # Six hours keep the test quick; RFC3339 and unix forms both go through the parser.
    frm = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 9 * 3600))
    common = ("--from", frm, "--to", str(int(start + 15 * 3600)), "--url", server.url)
    code, _, err = run_cli("backtest", _rule_file(tmp_path, "web", 20), *common, "--chart", str(single_png))
    assert code == 0, err
    code, out, err = run_cli(
        "backtest",
        _rule_file(tmp_path, "web", 20),
        "--compare",
        _rule_file(tmp_path, "web-tight", 10),
        *common,
        "--chart",
        str(compare_png),
        "--csv",
        str(csv_path),
    )
    assert code == 0, err
    # Side by side: the comparison chart is about twice as wide, as tall.
    (w1, h1), (w2, h2) = _png_size(single_png), _png_size(compare_png)
    assert w2 > 1.8 * w1 and h2 == h1
    with open(csv_path, newline="") as fh:
        names = [r["rule"] for r in csv.DictReader(fh)]
    assert names.count("web") == names.count("web-tight") == 6 * 3600 // STEP
    # The table shows both rules and what was observed; half the target needs about twice the pods.
    lines = out.splitlines()
    header = lines[next(i for i, line in enumerate(lines) if line.startswith("range ")) + 1].split()
    assert header == ["web", "web-tight", "observed"]
    hours = next(line for line in lines if line.startswith("replica-hours")).split()[1:]
    assert float(hours[1]) == pytest.approx(2 * float(hours[0]), rel=0.2)


def test_backtest_through_amp_workspace_signs_requests(history_server, run_cli, tmp_path, monkeypatch):
    server, start, _ = history_server
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AMP_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AMP_SECRET_ACCESS_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with SigV4Proxy(
        server.url,
        region=AMP_REGION,
        credentials={AMP_ACCESS_KEY_ID: AMP_SECRET_ACCESS_KEY},
        workspace_ids=(AMP_WORKSPACE_ID,),
    ) as proxy:
        monkeypatch.setenv("AMP_ENDPOINT_URL", proxy.url)
        code, out, err = run_cli(
            "backtest",
            _rule_file(tmp_path, "web", 20),
            "--from",
            str(int(start + 3600)),
            "--to",
            str(int(start + 7200)),
            "--workspace-id",
            AMP_WORKSPACE_ID,
            "--region",
            AMP_REGION,
            "--output",
            "json",
        )
        assert code == 0, err
        assert proxy.requests, "the query went through the SigV4 proxy"
    assert json.loads(out)["rules"][0]["summary"]["ticks"] == 240


def test_backtest_unreachable_prometheus_fails_with_one_line(run_cli, tmp_path):
    code, out, err = run_cli(
        "backtest", _rule_file(tmp_path, "web", 20), "--from", "-1h", "--url", "http://127.0.0.1:9"
    )
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ampscaler backtest: error:")
    assert "rps" in lines[0]


def test_backtest_reads_a_rule_by_name_from_ssm_under_prefix(history_server, run_cli, aws_env):
    server, _, end = history_server
    prefix = "/team-a/rules/"
    ssm = boto3.client("ssm")
    ssm.put_parameter(
        Name=prefix + "shop/web",
        Value=json.dumps(pods_rule_document(METRIC, average_value=20, name="shop/web")),
        Type="String",
    )

    code, out, err = run_cli(
        "backtest", "shop/web", "--prefix", prefix, "--from", str(int(end) - 3600), "--to", str(int(end)),
        "--url", server.url, "--output", "json",
    )  # fmt: skip

    assert code == 0, err
    assert json.loads(out)["rules"][0]["summary"]["ticks"] == 3600 // STEP
    code, _, err = run_cli(
        "backtest", "shop/missing", "--prefix", prefix, "--from", "-1h", "--url", server.url
    )
    assert code == 1
    assert "neither a file nor a rule in SSM (/team-a/rules/shop/missing not found)" in err
