"""A CPU rule through functions/scaler/app.py, scaling exactly as the HPA does, and replaying byte for byte.

Rule in SSM (pasted from an HPA's ``type: Resource`` metric) -> the default cAdvisor query through the
SigV4 proxy into a real Prometheus fed cAdvisor-shaped series by remote write -> pods with requests,
start and Ready times listed from the Kubernetes API simulator over TLS -> the engine -> /scale
patched -> the decision log, whose every record replays through the decide contract.

The cases are upstream's (pkg/controller/podautoscaler/replica_calculator_test.go): two containers
per pod, each requesting 1 CPU and using the level given, against a 30 % utilization target.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ampscaler import contract
from ampscaler.importers import import_manifests, load_manifests
from devstack.cadvisor import ContainerUsage, PodUsage, pod_series, sample_times
from devstack.kube_sim import SimContainer, SimPod
from devstack.stack import CLUSTER, LocalStack
from tests.e2e.conftest import load_handler, log_records
from tests.e2e.test_scaler_handler import FAST, invoke, next_slot

pytestmark = pytest.mark.e2e

# Pods started an hour ago: past the HPA's 5-minute CPU initialization period.
POD_AGE_SECONDS = 3600
WINDOW_SECONDS = 60
CONTAINERS = (SimContainer("app", {"cpu": "1"}), SimContainer("sidecar", {"cpu": "1"}))


@dataclass(frozen=True)
class UpstreamCase:
    name: str
    # Per pod: CPU cores each of its two containers uses, and whether the pod is Ready.
    levels: Sequence[float]
    ready: Sequence[bool]
    expected_replicas: int
    expected_utilization: int
    # The raw per-pod average the HPA reports beside the utilization (cores).
    expected_average: float


CASES = [
    # TestReplicaCalcScaleUp: (600m + 1000m + 1400m) / 6 cores = 50 % against 30 % -> ceil(3 x 50/30) = 5.
    UpstreamCase("scale up", (0.3, 0.5, 0.7), (True, True, True), 5, 50, 1.0),
    # TestReplicaCalcScaleUpUnreadyLessScale: the never-ready pod's sample is dropped; over the two
    # ready pods (1000m + 1400m) / 4 cores = 60 %, and on scale up the unready pod counts as 0:
    # ceil(... ) with 3 pods at (2400m) / 6 cores = 40 % -> ceil(2 x 60/30) = 4.
    UpstreamCase(
        "scale up with an unready pod scales less", (0.3, 0.5, 0.7), (False, True, True), 4, 60, 1.2
    ),
]


def cpu_rule(namespace: str, name: str) -> dict[str, Any]:
    """An HPA's CPU metric pasted in as is, with a shorter rate window than the stack's."""
    return {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": CLUSTER, "namespace": namespace, "kind": "Deployment", "name": name},
        "minReplicas": 1,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 30}},
                "series": {"windowSeconds": WINDOW_SECONDS},
            }
        ],
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cpu_rule_scales_as_the_hpa_and_replays(
    case: UpstreamCase,
    local_stack: LocalStack,
    stack_env: Callable[..., dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack_env(**FAST)
    namespace = f"cpu-{uuid.uuid4().hex[:8]}"
    name = "web"
    now = time.time()
    local_stack.kube.add_deployment(namespace, name, replicas=len(case.levels), manage_pods=False)
    pods = [f"{name}-5d8f7c9b6d-{i:05d}" for i in range(len(case.levels))]
    local_stack.kube.set_pods(
        namespace,
        [
            SimPod(
                pod,
                {"app": name},
                ready=ready,
                containers=CONTAINERS,
                start_time=now - POD_AGE_SECONDS,
                # A never-ready pod's Ready condition has been False since just after it started.
                ready_transition_time=now - POD_AGE_SECONDS + 10,
            )
            for pod, ready in zip(pods, case.ready, strict=True)
        ],
    )
    series = []
    for pod, level in zip(pods, case.levels, strict=True):
        usage = {"app": ContainerUsage(level), "sidecar": ContainerUsage(level)}
        series += pod_series(PodUsage(namespace, pod, usage), sample_times(now, 2 * WINDOW_SECONDS, 5))
    local_stack.write_samples(series)
    local_stack.put_rule(f"{namespace}/{name}", cpu_rule(namespace, name))
    handler = load_handler("scaler")
    capsys.readouterr()

    next_slot()
    summary = invoke(handler)

    assert summary["ticks"][0]["evaluated"] == 1, summary
    assert (
        int(local_stack.kube.scale("deployments", namespace, name)["spec"]["replicas"])
        == case.expected_replicas
    )
    records = [r for r in log_records(capsys.readouterr().out) if r.get("event") == "decision"]
    (record,) = records
    (metric,) = record["output"]["metrics"]
    assert (metric["name"], metric["current"], metric["target"], metric["proposal"]) == (
        "cpu",
        case.expected_utilization,
        30,
        case.expected_replicas,
    )
    assert metric["averageValue"] == pytest.approx(case.expected_average)
    assert record["patched"] is True
    # The decide input carries what the HPA's CPU rules read: requests, start and Ready times,
    # and the samples' time and window.
    (observed,) = record["input"]["metrics"]
    assert observed["windowSeconds"] == WINDOW_SECONDS
    assert set(observed["podValues"]) == set(pods)
    assert {p["name"]: p["requests"] for p in record["input"]["pods"]} == {pod: {"cpu": 2.0} for pod in pods}
    # Byte for byte, as `ampscaler decide` replays it.
    assert contract.dumps(contract.decide_document(record["input"])) == contract.dumps(record["output"])


PHP_APACHE = Path(__file__).resolve().parents[1] / "unit" / "importers" / "fixtures" / "php-apache-hpa.yaml"


def test_the_docs_php_apache_cpu_hpa_imports_and_scales_as_the_hpa(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    # The HPA walkthrough of the Kubernetes docs: `kubectl autoscale deployment php-apache
    # --cpu-percent=50 --min=1 --max=10`, converted by `ampscaler import` and pushed unchanged.
    stack_env(**FAST)
    [imported] = import_manifests(load_manifests(PHP_APACHE.read_text()))
    assert imported.problems == [] and imported.document is not None
    namespace, name = "default", "php-apache"
    now = time.time()
    local_stack.kube.add_deployment(namespace, name, replicas=1, manage_pods=False)
    pod = f"{name}-7d8b9c6f5d-0a1b2"
    # The walkthrough's Deployment requests 200m; under the load generator its one pod uses
    # 610m, which `kubectl get hpa` shows as "cpu: 305%/50%".
    local_stack.kube.set_pods(
        namespace,
        [
            SimPod(
                pod,
                {"app": name},
                containers=(SimContainer(name, {"cpu": "200m"}),),
                start_time=now - POD_AGE_SECONDS,
                ready_transition_time=now - POD_AGE_SECONDS + 10,
            )
        ],
    )
    usage = PodUsage(namespace, pod, {name: ContainerUsage(0.61)})
    local_stack.write_samples(pod_series(usage, sample_times(now, 600, 5)))
    local_stack.put_rule(f"{namespace}/{name}", imported.document)
    handler = load_handler("scaler")
    capsys.readouterr()

    next_slot()
    summary = invoke(handler)

    assert summary["ticks"][0]["evaluated"] == 1, summary
    [record] = [r for r in log_records(capsys.readouterr().out) if r.get("event") == "decision"]
    [metric] = record["output"]["metrics"]
    # 305 % / 50 % proposes ceil(6.1 x 1) = 7. The HPA has no behavior, so the controller's
    # legacy scale-up limit max(2 x 1, 4) = 4 applies, as upstream's normalizeDesiredReplicas.
    assert (metric["current"], metric["target"], metric["proposal"]) == (305, 50, 7)
    assert metric["averageValue"] == pytest.approx(0.61)
    assert record["output"]["desiredReplicas"] == 4
    assert int(local_stack.kube.scale("deployments", namespace, name)["spec"]["replicas"]) == 4
    assert contract.dumps(contract.decide_document(record["input"])) == contract.dumps(record["output"])
