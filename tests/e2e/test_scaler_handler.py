"""Whole ticks through functions/scaler/app.py: rule in SSM -> query through the SigV4 proxy into a real
Prometheus -> decision -> /scale patched on the simulator over TLS -> state in DynamoDB -> decision log
-> EMF lines. The only thing not real is the cluster (simulated) and AWS (moto server)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ampscaler import contract
from ampscaler.adapters.audit import FLEET_METRICS
from ampscaler.adapters.state_dynamodb import DynamoDbStateStore
from devstack.stack import CLUSTER, STATE_TABLE, LocalStack
from tests.e2e.conftest import LambdaContext, load_handler, log_records

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

# One evaluation slot per invocation, 2 s wide, so a test can run several ticks in seconds.
FAST = {
    "EVALUATION_INTERVAL_SECONDS": "2",
    "SCHEDULE_INTERVAL_SECONDS": "2",
    "DEADLINE_MARGIN_SECONDS": "0.5",
}


def rule_doc(namespace: str, name: str, metric: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": CLUSTER, "namespace": namespace, "kind": "Deployment", "name": name},
        "minReplicas": 2,
        "maxReplicas": 10,
        "metrics": [
            {
                "name": "rps",
                "type": "Pods",
                "query": f'sum by (pod) ({metric}{{namespace="{namespace}"}})',
                "podLabel": "pod",
                "target": {"type": "AverageValue", "averageValue": 10},
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 4}},
    }
    doc.update(extra)
    return doc


def write_per_pod(stack: LocalStack, metric: str, namespace: str, per_pod: float) -> list[str]:
    """Write ``per_pod`` for every ready pod of the namespace at the current time."""
    pods = stack.kube.ready_pods(namespace)
    now = time.time()
    stack.write_samples(
        [({"__name__": metric, "namespace": namespace, "pod": p}, [(now, per_pod)]) for p in pods]
    )
    return pods


# Why a slot may not run on a loaded machine although the test did nothing wrong: it reached
# the handler after its end (late) or the fence call missed the slot's deadline (stateStore).
# Nothing was done in either case, so running the next slot instead is what a test meant.
SLOW_MACHINE_DROPS = ("late", "stateStore")


def invoke(
    handler: Any, request_id: str | None = None, scheduled: float | None = None, interval: float = 2.0
) -> dict[str, Any]:
    """Invoke the handler with a schedule event for ``scheduled`` (default: the current slot).

    ``interval`` is the slot width the test set (``EVALUATION_INTERVAL_SECONDS``).

    Without ``scheduled`` the test means "the current slot, whichever it is": a slot the loaded
    machine reached too late to run is replaced by the next one (at most twice), so no test
    depends on the handler starting within a slot's first second.
    """
    for _ in range(3):
        at = time.time() if scheduled is None else scheduled
        event = {
            "shardIndex": 0,
            "scheduledTime": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
        }
        result: dict[str, Any] = handler.lambda_handler(event, LambdaContext(request_id or str(uuid.uuid4())))
        ticks = result.get("ticks") or []
        if scheduled is not None or not any(t.get("dropped") in SLOW_MACHINE_DROPS for t in ticks):
            return result
        next_slot(interval)
    return result


def next_slot(interval: float = 2.0) -> None:
    """Sleep into the next evaluation slot, so the next invocation is a new schedule slot."""
    time.sleep(interval - (time.time() % interval) + 0.05)


def check_sample(file_name: str, live: dict[str, Any]) -> dict[str, Any]:
    """``events/<file_name>``, which must have the fields of ``live`` (a record logged by this run).

    With ``AMPSCALER_WRITE_SAMPLES=1`` the sample is rewritten from ``live`` first: samples come from
    a real run, never by hand.
    """
    path = REPO / "events" / file_name
    if os.environ.get("AMPSCALER_WRITE_SAMPLES") == "1":
        path.write_text(json.dumps(live, indent=2) + "\n")
    sample: dict[str, Any] = json.loads(path.read_text())
    assert set(sample) == set(live), file_name
    return sample


def replicas(stack: LocalStack, namespace: str, name: str) -> int:
    return int(stack.kube.scale("deployments", namespace, name)["spec"]["replicas"])


def patches(stack: LocalStack, namespace: str, name: str) -> list[Any]:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"
    return [r for r in stack.kube.requests if r.method == "PATCH" and r.path == path and r.status == 200]


def test_handler_traffic_step_scales_up_then_down_after_stabilization(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    stack_env(**FAST, PER_RULE_METRICS="shop/frontend")
    ns, name, metric = "shop", "frontend", "e2e_step_rps"
    local_stack.kube.add_deployment(ns, name, replicas=2, labels={"app": name})
    local_stack.put_rule("shop/frontend", rule_doc(ns, name, metric))
    handler = load_handler("scaler")

    # Burst: 30 rps on each of 2 pods against a target of 10 -> ceil(60/10) = 6, and the default
    # scale-up policies allow max(+4 pods, +100%) = 6 in one step.
    write_per_pod(local_stack, metric, ns, 30.0)
    next_slot()
    summary = invoke(handler)
    assert summary["ticks"][0]["evaluated"] == 1, summary
    assert replicas(local_stack, ns, name) == 6

    # Load spread over 6 pods: 10 each is on target -> no change.
    write_per_pod(local_stack, metric, ns, 10.0)
    next_slot()
    invoke(handler)
    assert replicas(local_stack, ns, name) == 6

    # Traffic drops to 2 rps per pod -> raw recommendation ceil(12/10) = 2, held at 6 by the
    # 4 s scale-down stabilization window, then applied once the window has passed.
    write_per_pod(local_stack, metric, ns, 2.0)
    next_slot()
    invoke(handler)
    assert replicas(local_stack, ns, name) == 6
    deadline = time.time() + 20
    while replicas(local_stack, ns, name) != 2 and time.time() < deadline:
        write_per_pod(local_stack, metric, ns, 2.0)
        next_slot()
        invoke(handler)
    assert replicas(local_stack, ns, name) == 2
    assert len(patches(local_stack, ns, name)) == 2

    # State persisted in DynamoDB: the last decision and the engine history.
    record = DynamoDbStateStore(STATE_TABLE).get("shop/frontend")
    assert record is not None
    assert record.state.last_decision is not None
    assert record.state.last_decision["to"] == 2
    assert record.state.engine is not None and record.state.engine.scale_up_events

    # The HPA's events, visible to `kubectl describe`.
    rescales = local_stack.kube.events(ns, name, reason="SuccessfulRescale")
    assert [e["message"].split(";")[0] for e in rescales] == ["New size: 6", "New size: 2"]

    records = log_records(capsys.readouterr().out)
    decisions = [r for r in records if r.get("event") == "decision"]
    assert [d["applied"] for d in decisions if d["applied"] == "patched"] == ["patched", "patched"]
    first = decisions[0]
    assert first["rule"] == "shop/frontend" and first["parameterVersion"] == 1
    assert first["output"]["desiredReplicas"] == 6
    # Every logged decision replays byte-for-byte through the decide contract.
    for d in decisions:
        assert contract.dumps(contract.decide_document(d["input"])) == contract.dumps(d["output"])
    # The committed samples come from this run (AMPSCALER_WRITE_SAMPLES=1 rewrites them): the same
    # fields as a record logged now, and the sample replays to its own output.
    patched = next(d for d in decisions if d["applied"] == "patched")
    sample = check_sample("decision_log_record.json", patched)
    assert contract.dumps(contract.decide_document(sample["input"])) == contract.dumps(sample["output"])
    emf = [r for r in records if "_aws" in r]
    names = {m["Name"] for blob in emf for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    # The rule opted in to per-rule metrics (PER_RULE_METRICS), beside the fleet's fixed set.
    assert {"DesiredReplicas", "CurrentReplicas", "MetricValue", *FLEET_METRICS} <= names
    scale_events = [v for blob in emf if "ScaleEvents" in blob for v in blob["ScaleEvents"]]
    assert sum(scale_events) == 2


def test_handler_broken_rule_is_reported_and_other_rules_keep_scaling(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    stack_env(**FAST)
    ns, metric = "broken", "e2e_broken_rps"
    local_stack.kube.add_deployment(ns, "good", replicas=2, labels={"app": "good"})
    local_stack.put_rule("broken/good", rule_doc(ns, "good", metric))
    bad = rule_doc(ns, "bad", metric, maxReplica=3)  # typo: unknown field
    local_stack.put_rule("broken/bad", bad)
    handler = load_handler("scaler")

    write_per_pod(local_stack, metric, ns, 30.0)
    next_slot()
    summary = invoke(handler)

    assert replicas(local_stack, ns, "good") == 6
    assert summary["ticks"][0]["invalid"] == ["broken/bad"]
    records = log_records(capsys.readouterr().out)
    invalid = [r for r in records if r.get("event") == "ruleInvalid"]
    assert invalid and invalid[0]["parameter"] == "/ampscaler/rules/broken/bad"
    assert any("maxReplica" in e and "maxReplicas" in e for e in invalid[0]["errors"])


def test_handler_same_scheduled_event_delivered_twice_acts_once(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]]
) -> None:
    stack_env(**FAST)
    ns, name, metric = "dup", "api", "e2e_dup_rps"
    local_stack.kube.add_deployment(ns, name, replicas=2, labels={"app": name})
    local_stack.put_rule("dup/api", rule_doc(ns, name, metric))
    handler = load_handler("scaler")
    write_per_pod(local_stack, metric, ns, 30.0)
    next_slot()
    scheduled = time.time()

    first = invoke(handler, "invocation-1", scheduled)
    second = invoke(handler, "invocation-2", scheduled)

    assert first["ticks"][0]["evaluated"] == 1
    assert second["ticks"][0]["evaluated"] == 0
    assert len(patches(local_stack, ns, name)) == 1


def test_handler_prometheus_unreachable_never_scales_down(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    # AMP endpoint pointing at a closed port: every query fails.
    stack_env(**FAST, AMP_ENDPOINT_URL="http://127.0.0.1:9")
    ns, name = "down", "web"
    local_stack.kube.add_deployment(ns, name, replicas=5, labels={"app": name})
    local_stack.put_rule("down/web", rule_doc(ns, name, "e2e_down_rps"))
    handler = load_handler("scaler")

    for _ in range(3):
        next_slot()
        invoke(handler)

    assert replicas(local_stack, ns, name) == 5
    assert patches(local_stack, ns, name) == []
    records = log_records(capsys.readouterr().out)
    decisions = [r for r in records if r.get("event") == "decision"]
    assert decisions and all(d["output"]["desiredReplicas"] == 5 for d in decisions)
    assert all(not d["output"]["metrics"][0]["valid"] for d in decisions)
    warnings = local_stack.kube.events(ns, name, reason="FailedGetPodsMetric")
    assert warnings, "a failed metric is reported as an Event like the HPA does"


def test_rule_validator_reports_a_bad_edit_at_once(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    stack_env()
    doc = rule_doc("val", "web", "x")
    doc["metrics"][0]["target"]["averageValue"] = -3
    local_stack.put_rule("val/web", doc)
    handler = load_handler("rule_validator")
    event = json.loads(
        (Path(__file__).resolve().parents[2] / "events" / "parameter_store_change.json").read_text()
    )
    event["detail"]["name"] = "/ampscaler/rules/val/web"

    result = handler.lambda_handler(event, LambdaContext("validator-1"))

    assert result["status"] == "invalid"
    assert "metrics[0].target.averageValue: must be a positive number, got -3" in result["errors"][0]
    records = log_records(capsys.readouterr().out)
    assert any(r.get("event") == "ruleInvalid" for r in records)
    assert any("RuleInvalid" in r for r in records if "_aws" in r)


@pytest.mark.parametrize(
    ("parameter", "operation", "status"),
    [
        ("/ampscaler/rules/val/ok", "Update", "valid"),
        ("/ampscaler/rules/val/ok", "Delete", "deleted"),
        ("/other/app/setting", "Update", "ignored"),
    ],
)
def test_rule_validator_verdicts(
    local_stack: LocalStack,
    stack_env: Callable[..., dict[str, str]],
    parameter: str,
    operation: str,
    status: str,
) -> None:
    stack_env()
    local_stack.put_rule("val/ok", rule_doc("val", "ok", "x"))
    handler = load_handler("rule_validator")
    event = json.loads(
        (Path(__file__).resolve().parents[2] / "events" / "parameter_store_change.json").read_text()
    )
    event["detail"].update(name=parameter, operation=operation)

    result = handler.lambda_handler(event, LambdaContext("validator-2"))

    assert result["status"] == status
    assert result["errors"] == []
