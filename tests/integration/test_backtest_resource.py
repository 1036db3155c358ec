"""``ampscaler backtest`` of a CPU Resource rule over cAdvisor history in a real Prometheus.

Real: the Prometheus server (Debian binary) fed cAdvisor-shaped series by remote write, the CLI,
the range queries and the engine. Simulated: the history (two pods of a Deployment at a steady
0.6 cores each, plus another Deployment's pod that must not count) and the replayed pods, which
request what ``--pod-requests`` says.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ampscaler.cli import main as cli_main
from devstack.cadvisor import ContainerUsage, PodUsage, pod_series, sample_times
from devstack.prometheus import PrometheusServer
from tests.fixtures.prometheus import WriteSeries

pytestmark = pytest.mark.integration

STEP = 15
HISTORY_SECONDS = 1800
REPLAY_SECONDS = 1200


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``ampscaler ...`` in-process through cli.main.main; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli_main.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def cpu_rule(tmp_path: Path, namespace: str) -> str:
    path = tmp_path / "web.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "ampscaler/v1",
                "target": {"cluster": "prod", "namespace": namespace, "kind": "Deployment", "name": "web"},
                "minReplicas": 1,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 60},
                        },
                    }
                ],
            }
        )
    )
    return str(path)


def test_backtest_cpu_rule_spreads_usage_over_simulated_pods_with_requests(
    prometheus_server: PrometheusServer,
    write_series: WriteSeries,
    metric_name: str,
    run_cli: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
) -> None:
    namespace = metric_name.replace("_", "-").lower()[:63].strip("-")
    end = math.floor(time.time() / STEP) * STEP
    times = sample_times(end, HISTORY_SECONDS, STEP)
    history = []
    for pod, cores in (
        ("web-5d8f7c9b6d-abcde", 0.6),
        ("web-5d8f7c9b6d-fghij", 0.6),
        ("web-api-7c9b6d-zzzzz", 5.0),
    ):
        history += pod_series(PodUsage(namespace, pod, {"app": ContainerUsage(cores, 1e8)}), times)
    write_series(history)
    csv_path = tmp_path / "web.csv"

    code, out, err = run_cli(
        "backtest", cpu_rule(tmp_path, namespace), "--from", str(end - REPLAY_SECONDS), "--to", str(end),
        "--url", prometheus_server.url, "--pod-requests", "cpu=500m", "--csv", str(csv_path), "--output", "json",
    )  # fmt: skip

    assert code == 0, err
    summary = json.loads(out)["rules"][0]["summary"]
    # 1.2 cores over two pods requesting 500m is 120 % against 60 %: 2 -> ceil(2 x 2.0) = 4 at the
    # first step (the legacy limit max(2 x 2, 4) allows it), then 4 pods at 60 % hold.
    assert (summary["scaleUps"], summary["scaleDowns"], summary["peakReplicas"]) == (1, 0, 4)
    assert summary["metricErrorTicks"] == 0
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == REPLAY_SECONDS // STEP
    first, last = rows[0], rows[-1]
    # The other Deployment's pod (web-api-...) is not the target's: two pods observed.
    assert first["observed_replicas"] == "2"
    assert float(first["cpu_observed"]) == pytest.approx(120.0)
    assert (first["cpu_value"], first["cpu_target"], first["desired_replicas"]) == ("120", "60", "4")
    assert (last["current_replicas"], last["cpu_value"]) == ("4", "60")


def test_backtest_utilization_without_pod_requests_is_a_usage_error(
    run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    code, out, err = run_cli(
        "backtest", cpu_rule(tmp_path, "shop"), "--from", "-1h", "--url", "http://127.0.0.1:9"
    )

    assert (code, out) == (2, "")
    assert "give each simulated pod's request with --pod-requests cpu=QUANTITY (e.g. cpu=500m)" in err
    code, _, err = run_cli(
        "backtest",
        cpu_rule(tmp_path, "shop"),
        "--from",
        "-1h",
        "--url",
        "http://127.0.0.1:9",
        "--pod-requests",
        "gpu=1",
    )
    assert code == 2 and "--pod-requests: 'gpu=1' is not cpu=QUANTITY or memory=QUANTITY" in err
