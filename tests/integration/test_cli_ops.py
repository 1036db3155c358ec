"""``ampscaler push/get/describe`` against a moto server and ``explain`` against real Prometheus + kube simulator.

Real here: boto3 over HTTP to moto (SSM, DynamoDB) through ``AWS_ENDPOINT_URL``, the Prometheus
server behind the SigV4-verifying proxy, the kubernetes client over TLS with signed EKS tokens,
the engine. Simulated: AWS itself (moto) and the Kubernetes API server (devstack/kube_sim.py).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ampscaler import contract
from ampscaler.adapters.state_dynamodb import DynamoDbStateStore, create_table
from ampscaler.cli.main import main
from ampscaler.engine.types import EngineState, Recommendation
from ampscaler.ports import StoredState
from devstack.kube_sim import EksTokenValidator, KubeApiSimulator
from tests.fixtures.kube import KUBE_CLUSTER
from tests.fixtures.prometheus import AMP_ACCESS_KEY_ID, AMP_SECRET_ACCESS_KEY, AmpStack, WriteSeries

pytestmark = pytest.mark.integration

PREFIX = "/ampscaler/rules/"
TABLE = "ampscaler-state"

RULE_YAML = """\
apiVersion: ampscaler/v1
name: shop/web
target: {cluster: prod, namespace: shop, kind: Deployment, name: web}
minReplicas: 2
maxReplicas: 10
metrics:
  - name: rps
    type: Pods
    query: sum by (pod) (rate(http_requests_total{namespace="shop"}[2m]))
    target: {type: AverageValue, averageValue: 10}
"""

WORKER_JSON = {
    "apiVersion": "ampscaler/v1",
    "name": "jobs/worker",
    "target": {"cluster": "prod", "namespace": "jobs", "kind": "StatefulSet", "name": "worker"},
    "maxReplicas": 20,
    "dryRun": True,
    "metrics": [
        {
            "name": "backlog",
            "type": "External",
            "query": 'sum(queue_depth{queue="jobs"})',
            "target": {"type": "AverageValue", "averageValue": 40},
        },
        {
            "name": "rps",
            "type": "Pods",
            "query": "sum by (pod) (rate(worker_requests_total[2m]))",
            "target": {"type": "AverageValue", "averageValue": 5},
        },
    ],
}

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """``ampscaler ...`` in-process through cli.main.main; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def ssm(aws_env: dict[str, str]) -> Any:
    return boto3.client("ssm")


@pytest.fixture
def states(aws_env: dict[str, str]) -> DynamoDbStateStore:
    create_table(boto3.client("dynamodb"), TABLE)
    return DynamoDbStateStore(TABLE)


def write_rules(tmp_path: Path) -> tuple[Path, Path]:
    web = tmp_path / "web.yaml"
    web.write_text(RULE_YAML, encoding="utf-8")
    worker = tmp_path / "worker.json"
    worker.write_text(json.dumps(WORKER_JSON), encoding="utf-8")
    return web, worker


def parameter_names(ssm: Any) -> list[str]:
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=PREFIX, Recursive=True)
    return sorted(p["Name"] for page in pages for p in page["Parameters"])


def seed_state(
    store: DynamoDbStateStore,
    rule: str,
    *,
    engine: EngineState,
    decision: dict[str, Any],
    last_evaluated: float,
    last_scale_time: float | None,
    last_error: dict[str, Any] | None = None,
) -> None:
    """Write a state item the way a slot does: take the shard's fence, save under it."""
    n = next(_SEED_SLOTS)
    # Held until time 0: the next seed (or a real slot) can take the fence at once.
    fence = store.take_fence(0, f"{n:012d}", 0.0, "seed", float(n))
    store.save(
        rule,
        StoredState(
            engine=engine,
            parameter_version=1,
            last_evaluated=last_evaluated,
            last_scale_time=last_scale_time,
            last_decision=decision,
            last_error=last_error,
            slot=fence.slot,
            written_at=last_evaluated,
        ),
        fence,
    )


_SEED_SLOTS = itertools.count(1)


# -- push ------------------------------------------------------------------------------------


def test_push_dry_run_shows_the_diff_and_writes_nothing(tmp_path: Path, ssm: Any, run_cli: Run) -> None:
    web, worker = write_rules(tmp_path)

    code, out, err = run_cli("push", "--dry-run", str(web), str(worker))

    assert (code, err) == (0, "")
    assert parameter_names(ssm) == []
    assert "--- /dev/null\n+++ /ampscaler/rules/shop/web (to write)\n" in out
    # Canonical form: defaults spelled out, so SSM shows what the scaler runs.
    assert '+  "minReplicas": 2,' in out
    assert '+  "cooldownPeriodSeconds": 300' in out
    assert "/ampscaler/rules/shop/web: would create\n" in out
    assert "/ampscaler/rules/jobs/worker: would create\n" in out
    assert out.endswith("dry run: 2 of 2 rule(s) would change; nothing written\n")


def test_push_writes_canonical_json_with_tags_then_skips_unchanged(
    tmp_path: Path, ssm: Any, run_cli: Run
) -> None:
    web, worker = write_rules(tmp_path)

    code, out, _ = run_cli("push", str(web), str(worker))

    assert code == 0
    assert "/ampscaler/rules/shop/web: created (version 1)" in out
    stored = ssm.get_parameter(Name=PREFIX + "shop/web")["Parameter"]
    document = json.loads(stored["Value"])
    assert document["name"] == "shop/web"
    assert document["metrics"][0]["podLabel"] == "pod"
    assert stored["Value"] == json.dumps(document, indent=2) + "\n"
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=PREFIX + "shop/web")["TagList"]
    assert {t["Key"]: t["Value"] for t in tags} == {"target": "Deployment/shop/web", "cluster": "prod"}

    # The same files again, one of them as YAML re-ordered: nothing to write.
    code, out, _ = run_cli("push", str(web), str(worker))
    assert code == 0
    assert out.splitlines() == [
        "/ampscaler/rules/shop/web: unchanged",
        "/ampscaler/rules/jobs/worker: unchanged",
    ]
    assert ssm.get_parameter(Name=PREFIX + "shop/web")["Parameter"]["Version"] == 1


def test_push_change_shows_only_the_changed_lines_and_bumps_the_version(
    tmp_path: Path, ssm: Any, run_cli: Run
) -> None:
    web, _ = write_rules(tmp_path)
    assert run_cli("push", str(web))[0] == 0
    web.write_text(RULE_YAML.replace("maxReplicas: 10", "maxReplicas: 12"), encoding="utf-8")

    code, out, _ = run_cli("push", str(web))

    assert code == 0
    changed = [line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert changed == ['-  "maxReplicas": 10,', '+  "maxReplicas": 12,']
    assert out.splitlines()[-1] == "/ampscaler/rules/shop/web: updated (version 2)"
    assert json.loads(ssm.get_parameter(Name=PREFIX + "shop/web")["Parameter"]["Value"])["maxReplicas"] == 12


def test_push_with_invalid_files_writes_nothing_and_lists_every_error(
    tmp_path: Path, ssm: Any, run_cli: Run
) -> None:
    web, worker = write_rules(tmp_path)
    bounds = tmp_path / "bounds.yaml"
    bounds.write_text(
        RULE_YAML.replace("name: shop/web", "name: shop/a").replace("minReplicas: 2", "minReplicas: 20")
    )
    grouping = tmp_path / "grouping.yaml"
    grouping.write_text(
        RULE_YAML.replace("name: shop/web", "name: shop/b").replace("sum by (pod) (rate(", "sum(rate(")
    )

    code, out, err = run_cli("push", str(web), str(bounds), str(worker), str(grouping))

    assert code == 1
    assert out == ""
    assert parameter_names(ssm) == []
    lines = err.splitlines()
    assert lines[-1] == "ampscaler push: error: 2 validation error(s); nothing was written"
    assert (
        lines[0]
        == f"  error: {bounds}: maxReplicas: must be greater than or equal to minReplicas (20), got 10"
    )
    assert lines[1].startswith(f"  error: {grouping}: metrics[0].query: ") and "by (pod)" in lines[1], lines


def test_push_json_output_lists_each_rule_with_its_result(tmp_path: Path, ssm: Any, run_cli: Run) -> None:
    web, _ = write_rules(tmp_path)

    code, out, _ = run_cli("push", "--output", "json", str(web))

    assert code == 0
    [item] = json.loads(out)
    assert item["rule"] == "shop/web"
    assert item["parameter"] == PREFIX + "shop/web"
    assert (item["action"], item["result"], item["version"]) == ("create", "created", 1)
    assert item["diff"].startswith("--- /dev/null\n")


# -- get -------------------------------------------------------------------------------------


def _decision(
    now: float, *, current: float | None, to: int, patched: bool, error: str | None = None
) -> dict[str, Any]:
    metric: dict[str, Any] = {
        "name": "rps",
        "current": current,
        "target": 10.0,
        "proposal": to,
        "valid": error is None,
    }
    if error:
        metric["error"] = error
    active = (
        {
            "type": "ScalingActive",
            "status": False,
            "reason": "FailedGetPodsMetric",
            "message": f"the HPA was unable to compute the replica count: {error}",
        }
        if error
        else {
            "type": "ScalingActive",
            "status": True,
            "reason": "ValidMetricFound",
            "message": "the HPA was able to successfully calculate a replica count from pods metric rps",
        }
    )
    return {
        "time": now,
        "from": 3,
        "to": to,
        "action": "scale" if to != 3 else "none",
        "mode": "active",
        "patched": patched,
        "reason": "pods metric rps above target" if to > 3 else "recommended size matches current size",
        "metrics": [metric],
        "conditions": [
            {"type": "AbleToScale", "status": True, "reason": "ReadyForNewScale", "message": "recommended size matches current size"},
            active,
            {"type": "ScalingLimited", "status": False, "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"},
        ],
    }  # fmt: skip


def test_get_joins_rules_with_state_like_kubectl_get_hpa(
    tmp_path: Path, states: DynamoDbStateStore, run_cli: Run
) -> None:
    web, worker = write_rules(tmp_path)
    assert run_cli("push", str(web), str(worker))[0] == 0
    now = time.time()
    seed_state(
        states,
        "shop/web",
        engine=EngineState(recommendations=(Recommendation(now - 15, 4),)),
        decision=_decision(now - 15, current=12.5, to=4, patched=True),
        last_evaluated=now - 15,
        last_scale_time=now - 3 * 3600 - 10,
    )

    code, out, err = run_cli("get")

    assert (code, err) == (0, "")
    assert _columns(out) == [
        ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "LAST SCALE", "STATUS"],
        [
            "jobs/worker",
            "StatefulSet/worker",
            "<unknown>/40 (avg), <unknown>/5",
            "1",
            "20",
            "<unknown>",
            "<none>",
            "dry-run",
        ],
        ["shop/web", "Deployment/web", "12.5/10", "2", "10", "4", "3h", "ok"],
    ]


def _columns(table: str) -> list[list[str]]:
    """Split a kubectl-style table on runs of 3+ spaces (cells never hold more than one space)."""
    return [re.split(r" {3,}", line.strip()) for line in table.splitlines()]


def test_get_one_rule_as_json_and_status_invalid_paused_fallback(
    tmp_path: Path, ssm: Any, states: DynamoDbStateStore, run_cli: Run
) -> None:
    web, _ = write_rules(tmp_path)
    assert run_cli("push", str(web))[0] == 0
    paused = json.loads(json.dumps(WORKER_JSON))
    paused.update(name="jobs/paused", paused=True, fallback={"failureThreshold": 3, "replicas": 6})
    ssm.put_parameter(Name=PREFIX + "jobs/paused", Value=json.dumps(paused), Type="String")
    # A valid version 1, then an invalid version 2: the scaler keeps running version 1.
    ssm.put_parameter(
        Name=PREFIX + "shop/web", Value='{"apiVersion": "ampscaler/v1"}', Type="String", Overwrite=True
    )
    now = time.time()
    seed_state(
        states,
        "jobs/paused",
        engine=EngineState(consecutive_failures=5),
        decision=_decision(now, current=None, to=6, patched=False, error="query failed"),
        last_evaluated=now,
        last_scale_time=None,
    )

    code, out, _ = run_cli("get", "--output", "json")
    assert code == 0
    by_name = {item["name"]: item for item in json.loads(out)}
    assert by_name["shop/web"]["status"] == "invalid"
    assert by_name["shop/web"]["reference"] == "Deployment/web", "the last valid version still shows"
    assert by_name["shop/web"]["errors"], "the current version's validation errors are listed"
    # Fallback outranks paused: the engine ran on its fallback in the last evaluation.
    assert by_name["jobs/paused"]["status"] == "fallback"
    assert by_name["jobs/paused"]["targets"] == [
        {"metric": "backlog", "current": None, "target": 40.0, "average": True},
        {"metric": "rps", "current": None, "target": 5.0, "average": False},
    ]

    code, out, _ = run_cli("get", "shop/web")
    assert code == 0
    assert _columns(out)[1][-1] == "invalid"

    code, out, err = run_cli("get", "nope/missing")
    assert (code, out) == (1, "")
    assert (
        err
        == "ampscaler get: error: rule 'nope/missing' not found (/ampscaler/rules/nope/missing does not exist)\n"
    )


def test_get_without_state_table_warns_and_still_lists_rules(tmp_path: Path, ssm: Any, run_cli: Run) -> None:
    web, _ = write_rules(tmp_path)
    assert run_cli("push", str(web))[0] == 0

    code, out, err = run_cli("get", "--table", "no-such-table")

    assert code == 0
    assert _columns(out)[1] == [
        "shop/web",
        "Deployment/web",
        "<unknown>/10",
        "2",
        "10",
        "<unknown>",
        "<none>",
        "ok",
    ]
    assert err.startswith("ampscaler get: warning: state not shown: ")
    assert "no-such-table" in err


# -- describe --------------------------------------------------------------------------------


def test_describe_shows_conditions_last_decision_errors_and_invalid_versions(
    tmp_path: Path, ssm: Any, states: DynamoDbStateStore, run_cli: Run
) -> None:
    web, _ = write_rules(tmp_path)
    assert run_cli("push", str(web))[0] == 0
    ssm.put_parameter(
        Name=PREFIX + "shop/web", Value='{"apiVersion": "ampscaler/v1"}', Type="String", Overwrite=True
    )
    now = time.time()
    seed_state(
        states,
        "shop/web",
        engine=EngineState(
            recommendations=(Recommendation(now - 30, 3), Recommendation(now - 15, 3)), consecutive_failures=2
        ),
        decision=_decision(
            now - 15, current=None, to=3, patched=False, error="HTTP 503 from AMP workspace ws-1"
        ),
        last_evaluated=now - 15,
        last_scale_time=None,
        last_error={"time": 1700000000.0, "message": "Deployment shop/web not found in cluster prod"},
    )

    code, out, err = run_cli("describe", "shop/web")

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "Status:             invalid" in lines
    assert "Running:            version 1" in lines
    assert "Reference:          Deployment/web (apps/v1)" in lines
    assert '  "rps" (Pods metric, average value):  <unknown> / 10' in lines
    assert "Min replicas:       2" in lines
    conditions = _columns("\n".join(lines[lines.index("Conditions:") + 1 : lines.index("Conditions:") + 6]))
    assert conditions[0] == ["Type", "Status", "Reason", "Message"]
    assert conditions[3][:3] == ["ScalingActive", "False", "FailedGetPodsMetric"]
    assert "  Reason:  recommended size matches current size" in lines
    errors = lines[lines.index("Recent errors:") + 1 : lines.index("Recent errors:") + 5]
    assert errors[:3] == [
        "  metric rps: HTTP 503 from AMP workspace ws-1",
        "  ScalingActive FailedGetPodsMetric: the HPA was unable to compute the replica count: HTTP 503 from AMP workspace ws-1",
        "  every metric failed in the last 2 evaluation(s)",
    ]
    # An evaluation that failed before deciding (here a missing target) is recorded by the tick.
    assert errors[3].endswith(": evaluation failed: Deployment shop/web not found in cluster prod")
    invalid = lines[lines.index("Invalid versions (newest first):") + 1 :]
    assert invalid[0] == "  version 2:"
    assert any("target" in line for line in invalid[1:]), invalid


def test_describe_json_and_a_missing_rule(
    tmp_path: Path, ssm: Any, states: DynamoDbStateStore, run_cli: Run
) -> None:
    web, _ = write_rules(tmp_path)
    assert run_cli("push", str(web))[0] == 0

    code, out, _ = run_cli("describe", "shop/web", "-o", "json")

    assert code == 0
    doc = json.loads(out)
    assert (doc["name"], doc["version"], doc["status"], doc["runningVersion"]) == ("shop/web", 1, "ok", 1)
    assert doc["lastDecision"] is None
    assert doc["invalidVersions"] == []
    assert doc["rule"]["maxReplicas"] == 10
    code, _, err = run_cli("describe", "shop/none")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("ampscaler describe: error: rule 'shop/none' not found")


# -- explain ---------------------------------------------------------------------------------


@pytest.fixture
def explain_env(
    aws_env: dict[str, str],
    amp_env: AmpStack,
    kube_sim: KubeApiSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[KubeApiSimulator]:
    """One credential chain for every component, as an operator's shell has one.

    moto accepts any keys, so the process signs with the AMP test keys, and the cluster
    simulator is told to verify tokens signed with those same keys.
    """
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AMP_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AMP_SECRET_ACCESS_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    kube_sim.authenticator = EksTokenValidator(
        KUBE_CLUSTER, secret_keys={AMP_ACCESS_KEY_ID: AMP_SECRET_ACCESS_KEY}
    )
    ca = base64.b64encode(kube_sim.ca_pem).decode("ascii")
    monkeypatch.setenv(
        "CLUSTER_ENDPOINTS", json.dumps({KUBE_CLUSTER: {"endpoint": kube_sim.url, "caData": ca}})
    )
    create_table(boto3.client("dynamodb"), TABLE)
    yield kube_sim


def _explain_rule(metric: str) -> str:
    return (
        RULE_YAML.replace('http_requests_total{namespace="shop"}', f'{metric}{{namespace="shop"}}')
        .replace("rate(", "max_over_time(")
        .replace("[2m]))", "[5m]))")
        + "behavior:\n  scaleDown: {stabilizationWindowSeconds: 300}\n"
    )


def test_explain_evaluates_once_read_only_with_state_from_the_table(
    tmp_path: Path,
    explain_env: KubeApiSimulator,
    write_series: WriteSeries,
    metric_name: str,
    run_cli: Run,
) -> None:
    sim = explain_env
    sim.add_deployment("shop", "web", 4)
    pods = sim.ready_pods("shop", "app=web")
    assert len(pods) == 4
    now = time.time()
    # 5 requests/s per pod against a target of 10: the metrics alone would halve the count to 2.
    write_series(
        [({"__name__": metric_name, "namespace": "shop", "pod": pod}, [(now - 5, 5.0)]) for pod in pods]
    )
    rule_file = tmp_path / "web.yaml"
    rule_file.write_text(_explain_rule(metric_name), encoding="utf-8")
    assert run_cli("push", str(rule_file))[0] == 0
    # A recommendation of 3 a minute ago: the 300 s scale-down window holds the count at 3.
    seed_state(
        DynamoDbStateStore(TABLE),
        "shop/web",
        engine=EngineState(recommendations=(Recommendation(now - 60, 3),)),
        decision=_decision(now - 60, current=7.5, to=3, patched=False),
        last_evaluated=now - 60,
        last_scale_time=None,
    )
    sim.clear_requests()

    code, out, err = run_cli("explain", "shop/web", "--output", "json", "--input-json")

    assert (code, err) == (0, "")
    doc = json.loads(out)
    [metric] = doc["metrics"]
    assert metric["query"] == f'sum by (pod) (max_over_time({metric_name}{{namespace="shop"}}[5m]))'
    assert metric["observed"] == {pod: 5.0 for pod in pods}
    assert (metric["value"], metric["target"], metric["proposal"]) == (
        5.0,
        {"type": "AverageValue", "value": 10.0},
        2,
    )
    steps = doc["steps"]
    assert (steps["currentReplicas"], steps["metricDesiredReplicas"], steps["stabilizedReplicas"]) == (
        4,
        2,
        3,
    )
    assert steps["ableToScale"]["reason"] == "ScaleDownStabilized"
    assert (doc["decision"]["desiredReplicas"], doc["decision"]["action"]) == (3, "scale")
    assert doc["state"].startswith(f"from {TABLE}")
    assert doc["patched"] is False
    # The documents replay through the decide contract to the same output.
    assert contract.decide_document(doc["input"]) == doc["output"] == doc["decision"]
    assert doc["input"]["state"]["recommendations"] == [{"time": now - 60, "replicas": 3}]

    methods = [(r.method, r.path) for r in sim.requests]
    assert ("GET", "/apis/apps/v1/namespaces/shop/deployments/web/scale") in methods
    assert not [m for m in methods if m[0] != "GET"], f"explain must only read: {methods}"
    assert sim.scale("deployments", "shop", "web")["spec"]["replicas"] == 4
    assert sim.events(namespace="shop") == []
    assert DynamoDbStateStore(TABLE).get("shop/web").state.last_evaluated == pytest.approx(now - 60)  # type: ignore[union-attr]


def test_explain_table_from_a_file_without_state(
    tmp_path: Path,
    explain_env: KubeApiSimulator,
    write_series: WriteSeries,
    metric_name: str,
    run_cli: Run,
) -> None:
    sim = explain_env
    sim.add_deployment("shop", "web", 2)
    pods = sim.ready_pods("shop", "app=web")
    now = time.time()
    write_series(
        [({"__name__": metric_name, "namespace": "shop", "pod": pod}, [(now - 5, 25.0)]) for pod in pods]
    )
    rule_file = tmp_path / "web.yaml"
    rule_file.write_text(_explain_rule(metric_name), encoding="utf-8")

    code, out, err = run_cli("explain", str(rule_file), "--input-json")

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"Rule:        shop/web (file {rule_file})"
    assert "Pods:        2 (2 ready) matching app=web" in lines
    state = "State:       none: no item for shop/web in ampscaler-state (evaluated as a first evaluation)"
    assert state in lines
    assert "    value:     25 per pod, target 10 (AverageValue)" in lines
    assert "    proposal:  5 replicas" in lines
    assert "Decision:    2 -> 5 (action scale, mode active)" in lines
    assert "Nothing was patched and no state was written (explain is read-only)." in lines
    replay_input = json.loads(lines[lines.index("Decide output:") - 1])
    assert contract.dumps(contract.decide_document(replay_input)) == lines[lines.index("Decide output:") + 1]
    assert not [r for r in sim.requests if r.method != "GET"]


def test_explain_unreachable_target_exits_1_with_one_line_reason(
    tmp_path: Path, explain_env: KubeApiSimulator, metric_name: str, run_cli: Run
) -> None:
    rule_file = tmp_path / "web.yaml"
    rule_file.write_text(_explain_rule(metric_name), encoding="utf-8")

    code, out, err = run_cli("explain", str(rule_file))

    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("ampscaler explain: error: ") and "web" in err and "not found" in err.lower()


def test_explain_fills_an_empty_pods_answer_with_empty_as_like_the_tick(
    tmp_path: Path,
    explain_env: KubeApiSimulator,
    metric_name: str,
    run_cli: Run,
) -> None:
    # No series at all for the metric: with emptyAs 0 the tick treats every pod as 0 (and scales
    # down); explain used to report "did not receive metrics" instead.
    explain_env.add_deployment("shop", "web", 4)
    pods = explain_env.ready_pods("shop", "app=web")
    rule_file = tmp_path / "web.yaml"
    rule_file.write_text(
        _explain_rule(metric_name).replace("averageValue: 10}", "averageValue: 10}\n    emptyAs: 0"),
        encoding="utf-8",
    )

    code, out, err = run_cli("explain", str(rule_file), "--output", "json", "--input-json")

    assert (code, err) == (0, ""), out
    doc = json.loads(out)
    [metric] = doc["input"]["metrics"]
    assert metric["podValues"] == {pod: 0.0 for pod in pods}
    assert doc["output"]["metrics"][0]["proposal"] == 0
