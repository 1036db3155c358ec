"""EksScaleTarget through the official kubernetes client, over real TLS, against the API simulator.

Real here: the kubernetes client, urllib3, TLS verification against a generated CA, IAM tokens signed by
botocore and verified by signature in the simulator. Simulated: the API server (devstack/kube_sim.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import boto3
import pytest
import urllib3
from botocore.credentials import Credentials

from ampscaler.adapters.amp import AmpMetricsSource
from ampscaler.adapters.bounded_http import quote_response
from ampscaler.adapters.eks_token import EksClusterInfo, EksTokenProvider
from ampscaler.adapters.kube import EksScaleTarget
from ampscaler.adapters.logging_guard import PINNED_LOGGERS, REDACTED_LOGGERS, guard_library_loggers
from ampscaler.engine.types import ContainerInfo, PodInfo
from ampscaler.errors import ConflictError, ScaleTargetError
from ampscaler.model import MetricSpec, MetricTarget, Rule, ScaleTargetRef
from devstack.kube_sim import (
    KubeApiSimulator,
    SelectorError,
    SimContainer,
    SimPod,
    format_label_selector,
    parse_selector,
    selector_matches,
)
from tests.fixtures.kube import (
    KUBE_ACCESS_KEY,
    KUBE_PRINCIPAL,
    KUBE_REGION,
    KUBE_SECRET_KEY,
    sim_cluster_resolver,
)
from tests.fixtures.prometheus import AmpStack

pytestmark = pytest.mark.integration

FRONTEND = ScaleTargetRef("prod", "shop", "Deployment", "frontend")
DB = ScaleTargetRef("prod", "shop", "StatefulSet", "db")
ROLLOUT = ScaleTargetRef("prod", "shop", "Rollout", "canary", "argoproj.io/v1alpha1")


def add_all_kinds(sim: KubeApiSimulator) -> None:
    sim.add_deployment("shop", "frontend", 3, {"app": "frontend", "tier": "web"})
    sim.add_statefulset("shop", "db", 2)
    sim.add_workload("argoproj.io", "v1alpha1", "rollouts", "Rollout", "shop", "canary", 4)


# -- read_scale --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadCase:
    name: str
    target: ScaleTargetRef
    spec_replicas: int
    selector: str
    path: str


READ_CASES = [
    ReadCase(
        "deployment reads apps/v1 deployments scale",
        FRONTEND,
        3,
        "app=frontend,tier=web",
        "/apis/apps/v1/namespaces/shop/deployments/frontend/scale",
    ),
    ReadCase(
        "statefulset reads apps/v1 statefulsets scale",
        DB,
        2,
        "app=db",
        "/apis/apps/v1/namespaces/shop/statefulsets/db/scale",
    ),
    ReadCase(
        "custom kind reads group/version/plural scale",
        ROLLOUT,
        4,
        "app=canary",
        "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/canary/scale",
    ),
]


@pytest.mark.parametrize("case", READ_CASES, ids=lambda c: c.name)
def test_read_scale_returns_replicas_selector_and_resource_version(
    case: ReadCase, kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    add_all_kinds(kube_sim)

    reading = kube_target.read_scale(case.target)

    assert reading.scale.spec_replicas == case.spec_replicas
    assert reading.scale.status_replicas == case.spec_replicas
    assert reading.selector == case.selector
    assert (
        reading.resource_version
        == kube_sim.scale(case.path.split("/")[-3], "shop", case.target.name, case.path.split("/")[2])[
            "metadata"
        ]["resourceVersion"]
    )
    assert [(r.method, r.path, r.status) for r in kube_sim.requests] == [("GET", case.path, 200)]


def test_read_scale_serializes_match_expressions_as_the_api_server_does(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    kube_sim.add_deployment(
        "shop",
        "frontend",
        1,
        {"app": "frontend"},
        match_expressions=[
            {"key": "track", "operator": "In", "values": ["stable", "canary"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
        pod_labels={"track": "stable"},
    )

    reading = kube_target.read_scale(FRONTEND)

    assert reading.selector == "app=frontend,!legacy,track in (canary,stable)"
    assert [p.name for p in kube_target.list_pods(FRONTEND, reading.selector)] != []


def test_custom_kind_uses_the_configured_plural(
    kube_sim: KubeApiSimulator, eks_tokens: EksTokenProvider
) -> None:
    kube_sim.add_workload("example.com", "v1", "cacti", "Cactus", "shop", "spiky", 2)
    target = EksScaleTarget(
        eks_tokens, sim_cluster_resolver(kube_sim), plurals={("example.com/v1", "Cactus"): "cacti"}
    )
    ref = ScaleTargetRef("prod", "shop", "Cactus", "spiky", "example.com/v1")

    assert target.read_scale(ref).scale.spec_replicas == 2
    assert kube_sim.requests[-1].path == "/apis/example.com/v1/namespaces/shop/cacti/spiky/scale"


def test_clusters_share_one_client_and_resolve_once(
    kube_sim: KubeApiSimulator, eks_tokens: EksTokenProvider
) -> None:
    add_all_kinds(kube_sim)
    calls: list[str] = []
    resolve = sim_cluster_resolver(kube_sim)

    def counting(name: str) -> EksClusterInfo:
        calls.append(name)
        return resolve(name)

    target = EksScaleTarget(eks_tokens, counting)
    for ref in (FRONTEND, DB, ROLLOUT, FRONTEND):
        target.read_scale(ref)

    assert calls == ["prod"]
    assert eks_tokens.generated == {"prod": 1}


# -- list_pods ---------------------------------------------------------------------------------

SELECTOR_PODS = [
    SimPod("web-a", {"app": "web", "track": "stable"}),
    SimPod("web-b", {"app": "web", "track": "canary"}),
    SimPod("web-c", {"app": "web", "track": "canary", "legacy": "true"}),
    SimPod("web-d", {"app": "web"}),
    SimPod("api-a", {"app": "api", "track": "stable"}),
]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["web-a", "web-b", "web-c", "web-d"]),
        ("app==web,track!=canary", ["web-a", "web-d"]),
        ("app in (web,api),track in (stable)", ["api-a", "web-a"]),
        ("app=web,track notin (canary)", ["web-a", "web-d"]),
        ("app=web,track", ["web-a", "web-b", "web-c"]),
        ("app=web,!track", ["web-d"]),
        ("app=web,track,!legacy", ["web-a", "web-b"]),
        ("app = web , track in ( canary )", ["web-b", "web-c"]),
    ],
)
def test_list_pods_applies_equality_and_set_based_selectors(
    selector: str, expected: list[str], kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    kube_sim.set_pods("shop", SELECTOR_PODS)

    pods = kube_target.list_pods(FRONTEND, selector)

    assert sorted(p.name for p in pods) == expected
    assert kube_sim.requests[-1].query["labelSelector"] == [selector]


def test_list_pods_reports_phase_readiness_and_deletion(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    kube_sim.set_pods(
        "shop",
        [
            SimPod("p-running", {"app": "x"}),
            SimPod("p-unready", {"app": "x"}, ready=False),
            SimPod("p-pending", {"app": "x"}, phase="Pending", ready=False),
            SimPod("p-failed", {"app": "x"}, phase="Failed", ready=False),
            SimPod("p-deleting", {"app": "x"}, deleting=True),
        ],
    )

    pods = {
        p.name: PodInfo(p.name, p.phase, p.ready, p.deleting)
        for p in kube_target.list_pods(FRONTEND, "app=x")
    }

    assert pods == {
        "p-running": PodInfo("p-running", "Running", True, False),
        "p-unready": PodInfo("p-unready", "Running", False, False),
        "p-pending": PodInfo("p-pending", "Pending", False, False),
        "p-failed": PodInfo("p-failed", "Failed", False, False),
        "p-deleting": PodInfo("p-deleting", "Running", True, True),
    }


@dataclass(frozen=True)
class RequestsCase:
    name: str
    containers: tuple[SimContainer, ...]
    requests: dict[str, float]
    containers_seen: tuple[ContainerInfo, ...]


REQUESTS_CASES = [
    RequestsCase(
        "requests summed over containers exactly",
        (
            SimContainer("app", {"cpu": "100m", "memory": "256Mi"}),
            SimContainer("proxy", {"cpu": "200m", "memory": "64Mi"}),
        ),
        {"cpu": 0.3, "memory": 320 * 1024 * 1024},
        (
            ContainerInfo("app", {"cpu": 0.1, "memory": 256 * 1024 * 1024}),
            ContainerInfo("proxy", {"cpu": 0.2, "memory": 64 * 1024 * 1024}),
        ),
    ),
    RequestsCase(
        "a container without a cpu request leaves the pod's cpu out",
        (SimContainer("app", {"cpu": "1", "memory": "1Gi"}), SimContainer("log", {"memory": "1G"})),
        {"memory": 1024**3 + 10**9},
        (ContainerInfo("app", {"cpu": 1.0, "memory": 1024.0**3}), ContainerInfo("log", {"memory": 1e9})),
    ),
    RequestsCase(
        "restartable init containers count, as upstream calculatePodRequests counts sidecars",
        (SimContainer("app", {"cpu": "250m"}), SimContainer("mesh", {"cpu": "0.5"}, sidecar=True)),
        {"cpu": 0.75},
        (ContainerInfo("app", {"cpu": 0.25}), ContainerInfo("mesh", {"cpu": 0.5})),
    ),
    RequestsCase(
        "no requests at all: BestEffort pod",
        (SimContainer("app"),),
        {},
        (ContainerInfo("app", {}),),
    ),
]


@pytest.mark.parametrize("case", REQUESTS_CASES, ids=lambda c: c.name)
def test_list_pods_reads_container_requests(
    case: RequestsCase, kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    kube_sim.set_pods("shop", [SimPod("p-1", {"app": "x"}, containers=case.containers)])

    (pod,) = kube_target.list_pods(FRONTEND, "app=x")

    assert dict(pod.requests) == case.requests
    assert pod.containers == case.containers_seen


def test_list_pods_reads_start_time_and_ready_transition_time(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    kube_sim.set_pods(
        "shop",
        [
            SimPod("p-old", {"app": "x"}, start_time=1_700_000_000, ready_transition_time=1_700_000_042),
            SimPod("p-unacknowledged", {"app": "x"}, phase="Pending", ready=False, start_time=0),
        ],
    )

    pods = {p.name: p for p in kube_target.list_pods(FRONTEND, "app=x")}

    assert (pods["p-old"].start_time, pods["p-old"].ready_transition_time) == (1_700_000_000, 1_700_000_042)
    # No status.startTime: None, which the HPA's CPU rules treat as unready.
    assert pods["p-unacknowledged"].start_time is None
    assert pods["p-unacknowledged"].ready_transition_time is not None


def test_managed_pods_turn_ready_at_their_ready_transition_time(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    kube_sim.add_deployment(
        "shop",
        "frontend",
        1,
        ready_delay_seconds=0,
        containers=(SimContainer("app", {"cpu": "500m"}),),
    )

    (pod,) = kube_target.list_pods(FRONTEND, "app=frontend")
    (raw,) = kube_sim.pods("shop", "app=frontend")

    assert pod.ready and pod.requests == {"cpu": 0.5}
    assert raw["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "500m"}}
    assert raw["status"]["qosClass"] == "Burstable"
    ready = next(c for c in raw["status"]["conditions"] if c["type"] == "Ready")
    assert pod.start_time == datetime.fromisoformat(raw["status"]["startTime"]).timestamp()
    assert pod.ready_transition_time == datetime.fromisoformat(ready["lastTransitionTime"]).timestamp()
    assert pod.start_time is not None and pod.ready_transition_time is not None
    assert pod.ready_transition_time >= pod.start_time


def test_list_pods_follows_continue_tokens(kube_sim: KubeApiSimulator, kube_target: EksScaleTarget) -> None:
    kube_sim.set_pods("shop", [SimPod(f"p-{i:04d}", {"app": "big"}) for i in range(1201)])

    pods = kube_target.list_pods(FRONTEND, "app=big")

    assert len(pods) == 1201
    assert len({p.name for p in pods}) == 1201
    # 100 pods a page keeps each response far below the byte cap.
    assert [r.query.get("limit") for r in kube_sim.requests] == [["100"]] * 13


def test_list_pods_with_an_empty_selector_is_refused_without_a_request(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    with pytest.raises(ScaleTargetError, match=r"no status\.selector"):
        kube_target.list_pods(ROLLOUT, "")
    assert kube_sim.requests == []


def test_pods_become_ready_after_the_workload_ready_delay(eks_tokens: EksTokenProvider) -> None:
    now = [100.0]
    with KubeApiSimulator(clock=lambda: now[0], default_ready_delay_seconds=3.0) as sim:
        sim.add_deployment("shop", "frontend", 2)
        target = EksScaleTarget(eks_tokens, sim_cluster_resolver(sim))
        selector = target.read_scale(FRONTEND).selector

        assert {(p.phase, p.ready) for p in target.list_pods(FRONTEND, selector)} == {("Pending", False)}
        now[0] += 3.0
        assert {(p.phase, p.ready) for p in target.list_pods(FRONTEND, selector)} == {("Running", True)}
        assert len(sim.ready_pods("shop", selector)) == 2


# -- patch_replicas ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "plural", "group", "content_type"),
    [
        (FRONTEND, "deployments", "apps", "application/strategic-merge-patch+json"),
        (DB, "statefulsets", "apps", "application/strategic-merge-patch+json"),
        (ROLLOUT, "rollouts", "argoproj.io", "application/merge-patch+json"),
    ],
    ids=["deployment", "statefulset", "custom"],
)
def test_patch_replicas_sets_spec_with_resource_version_precondition(
    target: ScaleTargetRef,
    plural: str,
    group: str,
    content_type: str,
    kube_sim: KubeApiSimulator,
    kube_target: EksScaleTarget,
) -> None:
    add_all_kinds(kube_sim)
    before = kube_target.read_scale(target)

    after = kube_target.patch_replicas(target, 6, before.resource_version)

    assert after.scale == kube_target.read_scale(target).scale
    assert after.scale.spec_replicas == 6
    assert after.scale.status_replicas == 6
    assert after.resource_version != before.resource_version
    patch = next(r for r in kube_sim.requests if r.method == "PATCH")
    assert patch.content_type == content_type
    assert patch.body == {"metadata": {"resourceVersion": before.resource_version}, "spec": {"replicas": 6}}
    assert len(kube_target.list_pods(target, after.selector)) == 6


def test_patch_with_a_stale_resource_version_raises_conflict_and_changes_nothing(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    add_all_kinds(kube_sim)
    stale = kube_target.read_scale(FRONTEND)
    kube_sim.touch("deployments", "shop", "frontend")

    with pytest.raises(ConflictError) as caught:
        kube_target.patch_replicas(FRONTEND, 9, stale.resource_version)

    assert caught.value.status == 409
    assert "Deployment shop/frontend in cluster prod changed since it was read" in str(caught.value)
    assert (
        'Operation cannot be fulfilled on deployments.apps "frontend": the object has been modified'
        in str(caught.value)
    )
    assert kube_target.read_scale(FRONTEND).scale.spec_replicas == 3


def test_scale_down_removes_pods_and_status_follows(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    add_all_kinds(kube_sim)
    reading = kube_target.read_scale(DB)

    after = kube_target.patch_replicas(DB, 1, reading.resource_version)

    assert after.scale.status_replicas == 1
    assert [p.name for p in kube_target.list_pods(DB, after.selector)] == ["db-0"]


# -- errors ------------------------------------------------------------------------------------


def test_401_is_retried_once_with_a_freshly_signed_token(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget, eks_tokens: EksTokenProvider
) -> None:
    add_all_kinds(kube_sim)
    kube_target.read_scale(FRONTEND)
    kube_sim.clear_requests()
    kube_sim.inject(401, path=r"/scale$")

    reading = kube_target.read_scale(FRONTEND)

    assert reading.scale.spec_replicas == 3
    assert [r.status for r in kube_sim.requests] == [401, 200]
    assert eks_tokens.generated == {"prod": 2}


def test_token_signed_for_another_cluster_fails_with_access_entry_hint(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget, eks_tokens: EksTokenProvider
) -> None:
    add_all_kinds(kube_sim)
    staging = ScaleTargetRef("staging", "shop", "Deployment", "frontend")

    with pytest.raises(ScaleTargetError) as caught:
        kube_target.read_scale(staging)

    assert caught.value.status == 401
    message = str(caught.value)
    assert message.startswith("unauthorized: the cluster staging rejected the IAM token")
    assert f"check the EKS access entry for {KUBE_PRINCIPAL}" in message
    assert [r.status for r in kube_sim.requests] == [401, 401]
    assert all("signature mismatch" in (r.auth_error or "") for r in kube_sim.requests)
    assert eks_tokens.generated == {"staging": 2}


def test_403_names_the_access_entry_policy_and_rbac(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    add_all_kinds(kube_sim)
    reading = kube_target.read_scale(FRONTEND)
    kube_sim.deny("patch", "deployments/scale", "shop")

    with pytest.raises(ScaleTargetError) as caught:
        kube_target.patch_replicas(FRONTEND, 5, reading.resource_version)

    message = str(caught.value)
    assert caught.value.status == 403
    assert not isinstance(caught.value, ConflictError)
    assert message.startswith(
        f"forbidden: {KUBE_PRINCIPAL} may not patch deployments/scale for Deployment shop/frontend"
    )
    assert "AccessMode=rbac" in message and "namespace shop" in message
    assert "AccessMode=access-policy add namespace shop to the AmazonEKSEditPolicy access scope" in message
    assert (
        'deployments.apps "frontend" is forbidden: User "arn:aws:sts::111122223333:assumed-role/'
        'ampscaler-scaler/AKIAKUBESIMEXAMPLE01" cannot patch resource "deployments/scale" '
        'in API group "apps" in the namespace "shop"'
    ) in message


def test_403_on_pod_list_names_pods(kube_sim: KubeApiSimulator, kube_target: EksScaleTarget) -> None:
    kube_sim.deny("list", "pods")

    with pytest.raises(ScaleTargetError, match="may not list pods for Deployment shop/frontend") as caught:
        kube_target.list_pods(FRONTEND, "app=frontend")

    assert 'pods is forbidden: User "' in str(caught.value)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            ScaleTargetRef("prod", "shop", "Deployment", "ghost"),
            'Deployment shop/ghost not found in cluster prod. API server: deployments.apps "ghost" not found',
        ),
        (
            ScaleTargetRef("prod", "shop", "StatefulSet", "ghost"),
            "StatefulSet shop/ghost not found in cluster prod. "
            'API server: statefulsets.apps "ghost" not found',
        ),
        (
            ScaleTargetRef("prod", "shop", "Widget", "w", "example.com/v1"),
            "Widget shop/w not found in cluster prod (check apiVersion example.com/v1, the plural 'widgets'",
        ),
    ],
    ids=["deployment", "statefulset", "unknown-custom-kind"],
)
def test_404_names_the_missing_target(
    target: ScaleTargetRef, expected: str, kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    add_all_kinds(kube_sim)

    with pytest.raises(ScaleTargetError) as caught:
        kube_target.read_scale(target)

    assert caught.value.status == 404
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("status", "reason"), [(500, "InternalError"), (503, "ServiceUnavailable"), (429, "TooManyRequests")]
)
def test_5xx_and_429_are_transient(
    status: int, reason: str, kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    add_all_kinds(kube_sim)
    kube_sim.inject(status, method="GET", path="deployments/frontend/scale")

    with pytest.raises(ScaleTargetError) as caught:
        kube_target.read_scale(FRONTEND)

    assert caught.value.status == status
    assert str(caught.value).startswith(
        f"transient: the Kubernetes API of cluster prod answered {status} {reason}"
    )
    assert kube_target.read_scale(FRONTEND).scale.spec_replicas == 3


def test_injected_409_on_patch_is_a_conflict(kube_sim: KubeApiSimulator, kube_target: EksScaleTarget) -> None:
    add_all_kinds(kube_sim)
    reading = kube_target.read_scale(DB)
    kube_sim.inject(409, method="PATCH")

    with pytest.raises(ConflictError, match=r'statefulsets\.apps "db": the object has been modified'):
        kube_target.patch_replicas(DB, 4, reading.resource_version)


def test_slow_api_server_hits_the_read_timeout(
    kube_sim: KubeApiSimulator, eks_tokens: EksTokenProvider
) -> None:
    add_all_kinds(kube_sim)
    target = EksScaleTarget(eks_tokens, sim_cluster_resolver(kube_sim), read_timeout_seconds=0.3)
    kube_sim.inject(None, latency_seconds=1.5, path="/scale$")

    started = time.monotonic()
    with pytest.raises(
        ScaleTargetError, match="transient: get Deployment shop/frontend in cluster prod timed out"
    ):
        target.read_scale(FRONTEND)

    assert time.monotonic() - started < 1.2


def test_unreachable_endpoint_is_a_transient_error(
    eks_tokens: EksTokenProvider, kube_sim: KubeApiSimulator
) -> None:
    info = EksClusterInfo("prod", "https://127.0.0.1:1", kube_sim.ca_data)
    target = EksScaleTarget(eks_tokens, lambda name: info, connect_timeout_seconds=0.5)

    with pytest.raises(ScaleTargetError, match="transient: cannot reach the Kubernetes API of cluster prod"):
        target.read_scale(FRONTEND)


def test_tls_verification_fails_against_a_different_ca(
    kube_sim: KubeApiSimulator, eks_tokens: EksTokenProvider
) -> None:
    add_all_kinds(kube_sim)
    with KubeApiSimulator() as other:
        wrong_ca = EksClusterInfo("prod", kube_sim.url, other.ca_data)
        target = EksScaleTarget(eks_tokens, lambda name: wrong_ca)

        with pytest.raises(ScaleTargetError, match="TLS verification of the Kubernetes API of cluster prod"):
            target.read_scale(FRONTEND)

    # The handshake failed before any request, so the token never left the process.
    assert kube_sim.requests == []


# -- events ------------------------------------------------------------------------------------


def test_record_event_creates_a_core_v1_event_on_the_target(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    add_all_kinds(kube_sim)
    kube_target.read_scale(FRONTEND)

    kube_target.record_event(
        FRONTEND, "Normal", "SuccessfulRescale", "New size: 5; reason: pods metric rps above target"
    )

    [event] = kube_sim.events("shop", name="frontend")
    assert event["reason"] == "SuccessfulRescale"
    assert event["type"] == "Normal"
    assert event["message"] == "New size: 5; reason: pods metric rps above target"
    assert event["source"] == {"component": "ampscaler"}
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "frontend",
        "namespace": "shop",
        "uid": kube_sim.scale("deployments", "shop", "frontend")["metadata"]["uid"],
    }
    assert event["metadata"]["name"].startswith("frontend.")
    assert event["count"] == 1
    assert kube_sim.requests[-1].path == "/api/v1/namespaces/shop/events"


def test_record_event_warning_on_custom_kind(kube_sim: KubeApiSimulator, kube_target: EksScaleTarget) -> None:
    add_all_kinds(kube_sim)

    kube_target.record_event(ROLLOUT, "Warning", "FailedGetExternalMetric", "query failed: HTTP 503")

    [event] = kube_sim.events("shop", reason="FailedGetExternalMetric")
    assert event["type"] == "Warning"
    assert event["involvedObject"]["apiVersion"] == "argoproj.io/v1alpha1"
    assert event["involvedObject"]["kind"] == "Rollout"


def test_record_event_failure_is_logged_not_raised(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget, caplog: pytest.LogCaptureFixture
) -> None:
    kube_sim.deny("create", "events")

    kube_target.record_event(FRONTEND, "Normal", "SuccessfulRescale", "New size: 2")

    assert kube_sim.events() == []
    assert (
        "could not record event SuccessfulRescale on Deployment shop/frontend in cluster prod" in caplog.text
    )
    assert "forbidden" in caplog.text


def test_record_event_survives_an_unreachable_cluster(eks_tokens: EksTokenProvider) -> None:
    def broken(name: str) -> EksClusterInfo:
        raise ScaleTargetError("EKS cluster prod not found in region eu-west-1")

    EksScaleTarget(eks_tokens, broken).record_event(FRONTEND, "Normal", "SuccessfulRescale", "x")


# -- secrets stay secret -----------------------------------------------------------------------


class RecordingTokens:
    """Wraps the provider to remember every token handed out (to search logs for all of them)."""

    def __init__(self, provider: EksTokenProvider) -> None:
        self.provider = provider
        self.seen: set[str] = set()

    def token(self, cluster: str) -> str:
        token = self.provider.token(cluster)
        self.seen.add(token)
        return token

    def invalidate(self, cluster: str) -> None:
        self.provider.invalidate(cluster)


def test_token_never_appears_in_logs_or_errors(
    kube_sim: KubeApiSimulator, eks_tokens: EksTokenProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_all_kinds(kube_sim)
    tokens = RecordingTokens(eks_tokens)
    target = EksScaleTarget(tokens, sim_cluster_resolver(kube_sim))
    errors: list[str] = []
    reading = target.read_scale(FRONTEND)
    target.list_pods(FRONTEND, reading.selector)
    kube_sim.inject(401, count=1)
    target.patch_replicas(FRONTEND, 4, reading.resource_version)
    kube_sim.inject(401, count=2)
    kube_sim.deny("create", "events")
    actions: list[Callable[[], object]] = [
        lambda: target.read_scale(FRONTEND),
        lambda: target.patch_replicas(FRONTEND, 5, "1"),
    ]
    for action in actions:
        with pytest.raises(ScaleTargetError) as caught:
            action()
        errors.append(str(caught.value))
    target.record_event(FRONTEND, "Normal", "SuccessfulRescale", "x")

    logged = caplog.text + "\n".join(errors)
    assert "retrying with a fresh token" in logged
    assert "could not record event" in logged
    # Re-signed in the same second, a token is byte-identical, so count generations instead.
    assert eks_tokens.generated["prod"] >= 3
    for token in tokens.seen:
        assert token not in logged
        assert token[len("k8s-aws-v1.") :][:32] not in logged
    assert "X-Amz-Signature" not in logged


# -- the simulator itself ----------------------------------------------------------------------


def raw_request(
    sim: KubeApiSimulator,
    method: str,
    path: str,
    token: str | None,
    content_type: str | None = None,
    body: object = None,
) -> tuple[int, dict[str, object]]:
    """One request with a plain urllib3 client (to reach what the kubernetes client never sends)."""
    http = urllib3.PoolManager(ca_certs=sim.ca_path, cert_reqs="CERT_REQUIRED")
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    response = http.request(method, sim.url + path, headers=headers, body=data)
    return response.status, json.loads(response.data)


def test_sim_rejects_requests_without_a_token_with_a_status_object(kube_sim: KubeApiSimulator) -> None:
    status, body = raw_request(kube_sim, "GET", "/api/v1/namespaces/shop/pods", None)

    assert status == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_sim_refuses_strategic_merge_on_custom_resources(
    kube_sim: KubeApiSimulator, eks_tokens: EksTokenProvider
) -> None:
    add_all_kinds(kube_sim)
    status, body = raw_request(
        kube_sim,
        "PATCH",
        "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/canary/scale",
        eks_tokens.token("prod"),
        "application/strategic-merge-patch+json",
        {"spec": {"replicas": 1}},
    )

    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"


def test_sim_rejects_negative_replicas_as_invalid(
    kube_sim: KubeApiSimulator, eks_tokens: EksTokenProvider
) -> None:
    add_all_kinds(kube_sim)
    status, body = raw_request(
        kube_sim,
        "PATCH",
        "/apis/apps/v1/namespaces/shop/deployments/frontend/scale",
        eks_tokens.token("prod"),
        "application/merge-patch+json",
        {"spec": {"replicas": -1}},
    )

    assert status == 422
    assert str(body["message"]).startswith(
        'Scale.autoscaling "frontend" is invalid: spec.replicas: Invalid value: -1'
    )


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("", {}, True),
        ("a=1", {"a": "1"}, True),
        ("a!=1", {}, True),
        ("a notin (1,2)", {}, True),
        ("a in (1,2)", {}, False),
        ("!a", {"a": ""}, False),
        ("a", {"a": ""}, True),
        ("x in (foo,,baz),y,z notin ()", {"x": "", "y": "1"}, True),
        ("example.com/tier in (web)", {"example.com/tier": "web"}, True),
    ],
)
def test_sim_selector_semantics_follow_upstream(text: str, labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(parse_selector(text), labels) is matches


@pytest.mark.parametrize("text", ["a in b", "a,", "!a=b", "=b", "a in (b", "-bad-=1"])
def test_sim_selector_grammar_rejects_malformed_input(text: str) -> None:
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        parse_selector(text)


def test_sim_answers_400_for_a_malformed_selector(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    with pytest.raises(ScaleTargetError, match="HTTP 400 BadRequest: unable to parse requirement"):
        kube_target.list_pods(FRONTEND, "app in web")


def test_format_label_selector_round_trips_through_the_parser() -> None:
    text = format_label_selector(
        {"b": "2", "a": "1"},
        [{"key": "c", "operator": "NotIn", "values": ["z", "y"]}, {"key": "d", "operator": "Exists"}],
    )

    assert text == "a=1,b=2,c notin (y,z),d"
    assert ",".join(str(r) for r in parse_selector(text)) == text


def test_concurrent_patches_from_one_read_let_exactly_one_win(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    add_all_kinds(kube_sim)
    reading = kube_target.read_scale(FRONTEND)
    outcomes: list[str] = []
    lock = threading.Lock()

    def patch(replicas: int) -> None:
        try:
            kube_target.patch_replicas(FRONTEND, replicas, reading.resource_version)
            result = "patched"
        except ConflictError:
            result = "conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=patch, args=(4 + i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["conflict"] * 7 + ["patched"]
    assert kube_target.read_scale(FRONTEND).scale.spec_replicas in range(4, 12)


def test_sim_keeps_terminating_pods_until_their_grace_period_ends(eks_tokens: EksTokenProvider) -> None:
    now = [0.0]
    with KubeApiSimulator(clock=lambda: now[0], terminate_delay_seconds=5.0) as sim:
        sim.add_deployment("shop", "frontend", 3)
        target = EksScaleTarget(eks_tokens, sim_cluster_resolver(sim))
        reading = target.patch_replicas(FRONTEND, 1, target.read_scale(FRONTEND).resource_version)

        assert reading.scale.status_replicas == 1
        assert sorted(p.deleting for p in target.list_pods(FRONTEND, reading.selector)) == [False, True, True]
        now[0] += 5.0
        assert [p.deleting for p in target.list_pods(FRONTEND, reading.selector)] == [False]


def test_sim_accepts_json_patch_and_put_with_preconditions(
    kube_sim: KubeApiSimulator, eks_tokens: EksTokenProvider
) -> None:
    add_all_kinds(kube_sim)
    path = "/apis/apps/v1/namespaces/shop/deployments/frontend/scale"
    token = eks_tokens.token("prod")
    rv = kube_sim.scale("deployments", "shop", "frontend")["metadata"]["resourceVersion"]

    status, body = raw_request(
        kube_sim,
        "PATCH",
        path,
        token,
        "application/json-patch+json",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "replace", "path": "/spec/replicas", "value": 5},
        ],
    )
    assert (status, body["spec"]) == (200, {"replicas": 5})

    stale = {"metadata": {"name": "frontend", "resourceVersion": rv}, "spec": {"replicas": 2}}
    status, body = raw_request(kube_sim, "PUT", path, token, "application/json", stale)
    assert (status, body["reason"]) == (409, "Conflict")


def test_sim_stores_events_k8s_io_v1_events(kube_sim: KubeApiSimulator, eks_tokens: EksTokenProvider) -> None:
    event = {
        "metadata": {"name": "frontend.1", "namespace": "shop"},
        "regarding": {"kind": "Deployment", "name": "frontend", "namespace": "shop"},
        "reason": "SuccessfulRescale",
        "note": "New size: 3",
        "type": "Normal",
        "action": "Scale",
        "reportingController": "ampscaler",
        "reportingInstance": "ampscaler-1",
        "eventTime": "2026-01-01T00:00:00.000000Z",
    }

    status, body = raw_request(
        kube_sim,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/shop/events",
        eks_tokens.token("prod"),
        "application/json",
        event,
    )

    assert status == 201
    assert body["apiVersion"] == "events.k8s.io/v1"
    assert [e["note"] for e in kube_sim.events("shop", name="frontend")] == ["New size: 3"]


# -- bounded responses, one deadline per request, what Events may say ----------------------------


@pytest.mark.parametrize("status", [None, 500], ids=["150 MB scale", "150 MB error body"])
def test_huge_answer_is_cut_off_at_the_byte_cap_without_holding_it(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget, status: int | None
) -> None:
    # The error case is read by the kubernetes client itself (ApiException reads the body): the
    # cap holds there too, because it is enforced on the connection.
    add_all_kinds(kube_sim)
    kube_sim.inject(status, path="/scale$", pad_bytes=150 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(ScaleTargetError, match="over the 4194304-byte limit") as caught:
            kube_target.read_scale(FRONTEND)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "reads at most 4194304 bytes per response" in str(caught.value)
    assert peak < 32 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    # The cut-off connection is not reused mid-body: the next call works.
    assert kube_target.read_scale(FRONTEND).scale.spec_replicas == 3


@pytest.mark.parametrize(
    ("seconds", "size", "declare_length"),
    # A byte every 0.3 s (headers too) never trips the 2 s read timeout; or headers at once, then
    # 25 bytes every 0.5 s of a body delimited by the close, which looks complete when cut off.
    # Both gaps are far below the read timeout, so only the request's deadline can end them,
    # however loaded the machine.
    [(0.3, 1, True), (0.5, 25, False)],
    ids=["byte by byte", "body until close"],
)
def test_slow_drip_is_cut_off_at_the_request_deadline(
    kube_sim: KubeApiSimulator, eks_tokens: EksTokenProvider, seconds: float, size: int, declare_length: bool
) -> None:
    add_all_kinds(kube_sim)
    target = EksScaleTarget(
        eks_tokens, sim_cluster_resolver(kube_sim), connect_timeout_seconds=1.0, read_timeout_seconds=2.0
    )
    kube_sim.inject(
        None, path="/scale$", drip_seconds=seconds, drip_bytes=size, declare_length=declare_length
    )
    started = time.monotonic()
    with pytest.raises(ScaleTargetError, match="did not finish before its deadline"):
        target.read_scale(FRONTEND)
    # The whole request is bounded by 1 s + 2 s; generous slack for a loaded machine (the answer
    # takes about 8 s in 25-byte steps, minutes byte by byte).
    assert time.monotonic() - started < 15
    target.close()


def test_event_message_drops_server_text_and_secrets(
    kube_sim: KubeApiSimulator, kube_target: EksScaleTarget
) -> None:
    add_all_kinds(kube_sim)
    error = (
        "Prometheus at https://alice:hunter2@prom.example.com answered HTTP 500: "
        + quote_response(b"internal layout: db=10.0.0.5 user=admin " + b"x" * 3000)
        + "; token k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdz and Bearer abc.def"
    )
    kube_target.record_event(FRONTEND, "Warning", "FailedGetExternalMetric", error)
    [event] = kube_sim.events("shop", reason="FailedGetExternalMetric")
    message = event["message"]
    assert "HTTP 500" in message and "server response omitted" in message
    for leaked in ("10.0.0.5", "admin", "aHR0cHM6Ly9zdHMuYW1hem9uYXdz", "abc.def", "xxx", "hunter2"):
        assert leaked not in message


def test_unreachable_endpoint_message_names_the_endpoint_once(
    eks_tokens: EksTokenProvider, kube_sim: KubeApiSimulator
) -> None:
    info = EksClusterInfo("prod", "https://127.0.0.1:1", kube_sim.ca_data)
    target = EksScaleTarget(eks_tokens, lambda name: info, connect_timeout_seconds=0.5)
    with pytest.raises(ScaleTargetError) as caught:
        target.read_scale(FRONTEND)
    message = str(caught.value)
    assert message.count(" at ") == 1, message
    assert "object at 0x" not in message and "Connection refused" in message


# -- credentials never reach the logs, whatever the root level -----------------------------------


@pytest.fixture
def guarded_loggers() -> Iterator[None]:
    """guard_library_loggers() for one test, with every touched logger restored afterwards."""
    names = set(PINNED_LOGGERS) | set(REDACTED_LOGGERS)
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).filters)) for name in names}
    guard_library_loggers()
    yield
    for name, (level, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.filters[:] = filters


def test_no_credential_reaches_the_logs_at_root_debug(
    amp_stack: AmpStack,
    kube_sim: KubeApiSimulator,
    caplog: pytest.LogCaptureFixture,
    guarded_loggers: None,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    amp_session_token = "AMP-SESSION-TOKEN-0123456789abcdef"
    kube_session_token = "KUBE-SESSION-TOKEN-0123456789abcdef"
    now = time.time()
    source = AmpMetricsSource(
        workspace_id=amp_stack.workspace_id,
        region=amp_stack.region,
        session=boto3.Session(
            aws_access_key_id=amp_stack.access_key_id,
            aws_secret_access_key=amp_stack.secret_access_key,
            aws_session_token=amp_session_token,
            region_name=amp_stack.region,
        ),
        endpoint_url=amp_stack.endpoint_url,
    )
    spec = MetricSpec("m", "External", "vector(1)", MetricTarget(type="AverageValue", average_value=1))
    rule = Rule("r", FRONTEND, 1, 3, (spec,))
    assert source.observe(rule, spec, now, now + 10).value == 1.0
    add_all_kinds(kube_sim)
    tokens = RecordingTokens(
        EksTokenProvider(
            KUBE_REGION, credentials=Credentials(KUBE_ACCESS_KEY, KUBE_SECRET_KEY, kube_session_token)
        )
    )
    target = EksScaleTarget(tokens, sim_cluster_resolver(kube_sim))
    reading = target.read_scale(FRONTEND)
    target.patch_replicas(FRONTEND, 4, reading.resource_version)
    target.close()

    logged = caplog.text
    # Something was logged at DEBUG (the guard silences libraries, not the application).
    assert caplog.records
    signature = amp_stack.proxy.requests[0].headers["authorization"].rsplit("Signature=", 1)[1]
    secrets = [
        amp_stack.secret_access_key,
        amp_session_token,
        kube_session_token,
        KUBE_SECRET_KEY,
        signature,
        *tokens.seen,
        *(token[len("k8s-aws-v1.") :][:32] for token in tokens.seen),
    ]
    for secret in secrets:
        assert secret not in logged
    assert "X-Amz-Signature=" not in logged or "X-Amz-Signature=<redacted>" in logged


def test_redaction_holds_when_a_library_logger_is_set_back_to_debug(
    caplog: pytest.LogCaptureFixture, guarded_loggers: None
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    logging.getLogger("botocore.auth").setLevel(logging.DEBUG)
    session_token = "SESSION-TOKEN-SET-BACK-TO-DEBUG-42"
    provider = EksTokenProvider(
        KUBE_REGION, credentials=Credentials(KUBE_ACCESS_KEY, KUBE_SECRET_KEY, session_token)
    )
    token = provider.token("prod")
    # botocore.auth did log the canonical request it signed, with the token masked.
    assert "CanonicalRequest" in caplog.text
    assert session_token not in caplog.text and token[11:43] not in caplog.text
