"""Reaction latency: threshold-crossing sample written to Prometheus -> PATCH arriving at the cluster.

The real scaler handler (``functions/scaler/app.py`` through ``devstack.lambda_runtime``) runs as in
Lambda: ``LocalSchedule`` fires every ``SCHEDULE_INTERVAL_SECONDS`` (60) with the scheduled time
EventBridge Scheduler would send, that invocation queues the later 15 s slots on the slot queue
(SQS message timers in moto), and ``SqsEventSource`` delivers each at its slot's start, one
invocation per slot. Four independent rules (each its own Deployment)
run trials in parallel: at a random moment a per-pod value of 30 (target 10) is written by remote
write; the latency is from that sample's timestamp (taken just before the write) to the simulator's
record of the PATCH on that Deployment's /scale (``RecordedRequest.at``, set when the simulator has
applied it). The Deployment and its series are then put back and the next trial waits a random
time again.

The floor is what a perfect periodic evaluator achieves with crossings at uniformly random moments:
wait for the next evaluation (uniform on [0, interval)) plus one query plus one PATCH, the latter
two measured in the same run with a minimal client. Its median is interval/2 + query + patch (the
figure the issue names) and its 95th percentile 0.95 x interval + query + patch.

Run alone: ``.venv/bin/python -m bench.reaction [--quick]``.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bench.common import Figure, RunContext, log, median, percentile, standalone_main

if TYPE_CHECKING:
    from devstack.stack import LocalStack

NAMESPACE = "reaction"
METRIC = "bench_reaction_rps"
PREFIX = "/ampscaler/reaction/"
STREAMS = 4


def rule_document(deployment: str) -> dict[str, Any]:
    """Per-pod rps, target 10; a 1 s scale-up period so back-to-back trials are not rate limited."""
    return {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "local", "namespace": NAMESPACE, "kind": "Deployment", "name": deployment},
        "minReplicas": 2,
        "maxReplicas": 10,
        "metrics": [
            {
                "name": "rps",
                "type": "Pods",
                "query": f'sum by (pod) ({METRIC}{{deployment="{deployment}"}})',
                "podLabel": "pod",
                "target": {"type": "AverageValue", "averageValue": 10},
            }
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "Percent", "value": 900, "periodSeconds": 1}],
            }
        },
    }


class Stream:
    """One rule/Deployment running trials one after another."""

    def __init__(
        self, stack: LocalStack, index: int, trials: int, interval: float, rng: random.Random
    ) -> None:
        self.stack = stack
        self.deployment = f"r{index}"
        self.trials = trials
        self.interval = interval
        self.rng = rng
        self.latencies: list[float] = []
        self.failures: list[str] = []
        stack.kube.add_deployment(NAMESPACE, self.deployment, replicas=2, labels={"app": self.deployment})
        self.pods = stack.kube.ready_pods(NAMESPACE, f"app={self.deployment}")
        self.path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{self.deployment}/scale"
        stack.client("ssm").put_parameter(
            Name=f"{PREFIX}{self.deployment}",
            Value=json.dumps(rule_document(self.deployment)),
            Type="String",
            Overwrite=True,
        )
        self.write(10.0)

    def write(self, per_pod: float) -> float:
        """Write ``per_pod`` for both original pods; returns the samples' timestamp."""
        at = time.time()
        self.stack.write_samples(
            [
                ({"__name__": METRIC, "deployment": self.deployment, "pod": p}, [(at, per_pod)])
                for p in self.pods
            ]
        )
        return at

    def patch_after(self, since: float, timeout: float) -> float | None:
        """``at`` of the first successful PATCH of this Deployment's scale after ``since``."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for r in self.stack.kube.requests:
                if r.method == "PATCH" and r.path == self.path and r.status == 200 and r.at > since:
                    return r.at
            time.sleep(0.02)
        return None

    def run(self) -> None:
        """Trials: random wait, crossing, wait for the PATCH, put back."""
        for _ in range(self.trials):
            time.sleep(self.rng.uniform(0, self.interval))
            written = self.write(30.0)
            patched_at = self.patch_after(written, timeout=3 * self.interval + 10)
            if patched_at is None:
                self.failures.append(f"{self.deployment}: no PATCH within {3 * self.interval + 10:.0f} s")
            else:
                self.latencies.append(patched_at - written)
            # Values back to target first, then replicas: a tick in between sees 6 replicas at or
            # below target, which the default 300 s scale-down window holds (no stray PATCH).
            self.write(10.0)
            self.stack.kube.set_replicas("deployments", NAMESPACE, self.deployment, 2)


def raw_query_and_patch(stack: LocalStack, samples: int = 15) -> tuple[float, float]:
    """Median seconds of one signed AMP query and one /scale PATCH issued by a minimal client."""
    import requests
    from requests_aws4auth import AWS4Auth

    from ampscaler.adapters.eks_token import EksTokenProvider

    env = stack.env()
    auth = AWS4Auth(
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
        env["AMP_REGION"],
        "aps",
        session_token=env.get("AWS_SESSION_TOKEN"),
    )
    url = f"{env['AMP_ENDPOINT_URL']}/workspaces/{env['AMP_WORKSPACE_ID']}/api/v1/query"
    token = EksTokenProvider(env["AMP_REGION"], credentials=stack.boto3_session().get_credentials()).token(
        "local"
    )
    stack.kube.add_deployment(NAMESPACE, "raw", replicas=2, labels={"app": "raw"})
    scale_url = f"{stack.kube.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/raw/scale"
    http = requests.Session()
    query_times: list[float] = []
    patch_times: list[float] = []
    for i in range(samples + 1):
        started = time.perf_counter()
        http.post(
            url,
            data={
                "query": f'sum by (pod) ({METRIC}{{deployment="r0"}})',
                "time": f"{time.time():.3f}",
                "stats": "all",
            },
            auth=auth,
            timeout=10,
        ).json()
        query_time = time.perf_counter() - started
        body = {"spec": {"replicas": 2 + (i % 2)}}
        started = time.perf_counter()
        http.patch(
            scale_url, data=json.dumps(body), verify=stack.kube.ca_path, timeout=10,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/strategic-merge-patch+json"},
        ).json()  # fmt: skip
        patch_time = time.perf_counter() - started
        if i:  # the first pair opens the connections
            query_times.append(query_time)
            patch_times.append(patch_time)
    return median(query_times), median(patch_times)


def run(ctx: RunContext) -> list[Figure]:
    """p50/p95 reaction latency at the default 15 s interval (3 s in quick mode) vs the floor."""
    from devstack.lambda_runtime import (
        LineCapture,
        LocalFunction,
        LocalSchedule,
        SqsEventSource,
        load_handler,
    )

    interval, schedule = (3, 12) if ctx.quick else (15, 60)
    trials_per_stream = 2 if ctx.quick else 6
    stack = ctx.stack()
    rng = random.Random(20240615)
    streams = [Stream(stack, i, trials_per_stream, interval, rng) for i in range(STREAMS)]
    query_s, patch_s = raw_query_and_patch(stack)
    overrides = {
        "RULE_PREFIX": PREFIX,
        "EVALUATION_INTERVAL_SECONDS": str(interval),
        "SCHEDULE_INTERVAL_SECONDS": str(schedule),
    }
    sink = LineCapture()
    # EMF blobs are written to sys.stdout looked up per call: keep them out of the bench output.
    with stack.environment(**overrides) as env, contextlib.redirect_stdout(sink):
        # As in AWS: the schedule fires every `schedule` seconds and queues the later slots on the
        # slot queue; the event source delivers each at its slot's start. One invocation per slot.
        function = LocalFunction(load_handler("scaler", stream=sink))
        # Firing for the current minute at once, as the InvocationLoop did: trials start right away.
        schedule_loop = LocalSchedule(function.invoke, schedule, start_now=True)
        poller = SqsEventSource(stack.client("sqs"), env["SLOT_QUEUE_URL"], function.invoke)
        schedule_loop.start()
        poller.start()
        stack.kube.clear_requests()
        threads = [threading.Thread(target=s.run, name=f"trials-{i}") for i, s in enumerate(streams)]
        log(f"reaction: {STREAMS * trials_per_stream} trials at a {interval} s interval")
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            schedule_loop.stop()
            poller.stop()
    latencies = [x for s in streams for x in s.latencies]
    failures = [x for s in streams for x in s.failures] + [repr(e) for e in function.errors]
    if not latencies:
        raise RuntimeError(f"no reaction measured: {failures}")
    p50, p95 = median(latencies), percentile(latencies, 95)
    floor_p50 = interval / 2 + query_s + patch_s
    floor_p95 = 0.95 * interval + query_s + patch_s
    ctx.facts["reaction"] = {
        "interval_s": interval,
        "latencies_s": sorted(latencies),
        "failures": failures,
        "raw_query_s": query_s,
        "raw_patch_s": patch_s,
        "invocations": function.invocations,
        "billed_ms": function.billed_ms,
        "p95_vs_issue_floor": p95 / floor_p50,
    }
    log(
        f"reaction: p50 {p50:.2f} s p95 {p95:.2f} s over {len(latencies)} trials; floor p50 {floor_p50:.2f} s"
    )
    how = (
        f"real handler, one invocation per slot (schedule {schedule} s, slots {interval} s through the SQS "
        "slot queue and the local event source), "
        f"{len(latencies)} trials on {STREAMS} rules at random moments; sample timestamp -> simulator's PATCH record; "
        f"query {query_s * 1000:.1f} ms and PATCH {patch_s * 1000:.1f} ms measured raw"
    )
    issue_ratio = p95 / floor_p50
    return [
        ctx.figure(
            key="reaction.p50",
            figure=f"Reaction latency p50 at {interval} s interval",
            value=p50,
            unit="s",
            baseline=floor_p50,
            baseline_label="interval/2 + query + patch",
            how=how,
        ),
        ctx.figure(
            key="reaction.p95",
            figure=f"Reaction latency p95 at {interval} s interval",
            value=p95,
            unit="s",
            baseline=floor_p95,
            baseline_label="0.95 × interval + query + patch (the floor's own p95)",
            how=how,
            # The issue's target compares p95 with interval/2 + query + patch; the random arrival
            # alone puts a perfect evaluator's p95 at 1.9x of that, so both are shown.
            target=(
                f"≤ 1.5x of interval/2 + query + patch: {issue_ratio:.2f}x"
                + (" met" if issue_ratio <= 1.5 else " MISSED")
            ),
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the reaction benchmark alone and print its figures as JSON lines."""
    return standalone_main(run, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
