"""AmpMetricsSource against real Prometheus behind the SigV4-verifying AMP proxy.

Real: the Debian Prometheus binary, data written by remote write (and promtool backfill), the
botocore-based signature check, requests-aws4auth signing, sockets and timeouts. Simulated: AMP
itself (the proxy answers 403 like AMP and forwards to Prometheus) and faults it injects.
"""

from __future__ import annotations

import json
import math
import threading
import time
import tracemalloc
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from requests_aws4auth import AWS4Auth

from ampscaler.adapters.amp import AmpMetricsSource
from ampscaler.adapters.bounded_http import strip_responses
from ampscaler.errors import MetricQueryError
from ampscaler.model import MetricSpec, MetricTarget, MetricType, PrometheusSource, Rule, ScaleTargetRef
from devstack.backfill import backfill
from devstack.prometheus import free_port
from devstack.sigv4_proxy import Fault
from tests.fixtures.prometheus import AmpStack, WriteSeries

pytestmark = pytest.mark.integration


def make_spec(query: str, kind: MetricType = "External", empty_as: float | None = None) -> MetricSpec:
    return MetricSpec(
        name="m",
        type=kind,
        query=query,
        target=MetricTarget(type="AverageValue", average_value=10),
        empty_as=empty_as,
    )


def make_rule(prometheus: PrometheusSource | None = None) -> Rule:
    return Rule(
        name="web",
        target=ScaleTargetRef(cluster="c", namespace="default", kind="Deployment", name="web"),
        min_replicas=1,
        max_replicas=10,
        metrics=(),
        prometheus=prometheus,
    )


def make_source(stack: AmpStack, secret: str | None = None, **kwargs: Any) -> AmpMetricsSource:
    return AmpMetricsSource(
        workspace_id=stack.workspace_id,
        region=stack.region,
        session=stack.session(secret_access_key=secret),
        endpoint_url=stack.endpoint_url,
        **kwargs,
    )


# -- signing -------------------------------------------------------------------------------------


def test_amp_signed_post_with_special_characters_is_accepted(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str
) -> None:
    now = time.time()
    write_series([({"__name__": metric_name, "job": 'a b+c "q"'}, [(now - 5, 3.0)])])
    # `+`, spaces, quotes and braces all travel in the signed form body.
    query = f'sum({metric_name}{{job="a b+c \\"q\\""}}) + 1'
    outcome = make_source(amp_stack).observe_with_stats(make_rule(), make_spec(query), now, now + 5)

    assert outcome.observation.error is None
    assert outcome.observation.value == 4.0
    assert outcome.stats.samples_processed is not None and outcome.stats.samples_processed >= 1
    (request,) = amp_stack.proxy.requests
    assert request.outcome == "forwarded"
    assert request.method == "POST" and request.query == ""
    assert "sum%28" + metric_name in request.body.decode()
    assert "content-type" in request.headers["authorization"]


def test_amp_wrong_secret_is_rejected_with_iam_hint(amp_stack: AmpStack) -> None:
    now = time.time()
    observation = make_source(amp_stack, secret="wrong-secret").observe(
        make_rule(), make_spec("vector(1)"), now, now + 5
    )
    assert observation.error is not None
    assert "HTTP 403" in observation.error
    assert "signature we calculated does not match" in observation.error
    assert f"aps:QueryMetrics on workspace {amp_stack.workspace_id}" in observation.error
    # 403 is not retried: the signature will not get better.
    assert len(amp_stack.proxy.requests) == 1


def test_amp_unknown_access_key_is_rejected(amp_stack: AmpStack) -> None:
    now = time.time()
    source = AmpMetricsSource(
        workspace_id=amp_stack.workspace_id,
        region=amp_stack.region,
        session=amp_stack.session(access_key_id="AKIAUNKNOWNKEY000000"),
        endpoint_url=amp_stack.endpoint_url,
    )
    observation = source.observe(make_rule(), make_spec("vector(1)"), now, now + 5)
    assert observation.error is not None
    assert "security token included in the request is invalid" in observation.error


def test_amp_signature_for_another_region_is_rejected(amp_stack: AmpStack) -> None:
    now = time.time()
    rule = make_rule(PrometheusSource(workspace_id=amp_stack.workspace_id, region="eu-west-1"))
    observation = make_source(amp_stack).observe(rule, make_spec("vector(1)"), now, now + 5)
    assert observation.error is not None and "scoped to a valid region" in observation.error


def test_rule_url_unsigned_is_rejected_and_sigv4_true_is_accepted(amp_stack: AmpStack) -> None:
    now = time.time()
    url = amp_stack.proxy.workspace_url(amp_stack.workspace_id)
    source = make_source(amp_stack)
    unsigned = source.observe(make_rule(PrometheusSource(url=url)), make_spec("vector(2)"), now, now + 5)
    assert unsigned.error is not None and "Missing Authentication Token" in unsigned.error
    signed = source.observe(
        make_rule(PrometheusSource(url=url, sigv4=True)), make_spec("vector(2)"), now, now + 5
    )
    assert signed.value == 2.0


def test_rule_url_self_managed_prometheus_unsigned_only_when_allow_listed(amp_stack: AmpStack) -> None:
    now = time.time()
    rule = make_rule(PrometheusSource(url=amp_stack.prometheus.url))
    refused = make_source(amp_stack).observe(rule, make_spec("vector(5)"), now, now + 5)
    assert refused.error is not None and "ALLOWED_PROMETHEUS_URLS" in refused.error
    allowed = make_source(amp_stack, allowed_prometheus_urls=(amp_stack.prometheus.url,))
    assert allowed.observe(rule, make_spec("vector(5)"), now, now + 5).value == 5.0


# -- a rule cannot make the function a confused deputy -------------------------------------------


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes


class CaptureServer:
    """A host a rule author controls: records what arrives and answers with a chosen error body."""

    def __init__(self, status: int = 500, body: bytes = b"") -> None:
        self.received: list[Captured] = []
        self.status = status
        self.body = body
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                capture.received.append(
                    Captured(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                    )
                )
                self.send_response(capture.status)
                self.send_header("Content-Length", str(len(capture.body)))
                self.end_headers()
                self.wfile.write(capture.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> CaptureServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def test_rule_url_to_a_capture_server_never_receives_a_signed_request(amp_stack: AmpStack) -> None:
    now = time.time()
    with CaptureServer(status=200, body=_ok([{"metric": {}, "value": [1, "999"]}]).encode()) as capture:
        source = AmpMetricsSource(
            workspace_id=amp_stack.workspace_id,
            region=amp_stack.region,
            session=boto3.Session(
                aws_access_key_id=amp_stack.access_key_id,
                aws_secret_access_key=amp_stack.secret_access_key,
                aws_session_token="SESSION-TOKEN-SECRET",
                region_name=amp_stack.region,
            ),
            endpoint_url=amp_stack.endpoint_url,
        )
        for url in (capture.url, capture.url + "/workspaces/ws-x", capture.url + "?/x#"):
            rule = make_rule(PrometheusSource(url=url, sigv4=True, region=amp_stack.region))
            observation = source.observe(rule, make_spec("vector(1)"), now, now + 5)
            # An observation error, never an answer acted on and never an exception.
            assert observation.value is None and observation.error is not None
        assert capture.received == []


def test_allow_listed_url_gets_unsigned_requests_and_its_error_body_is_bounded_and_redacted(
    amp_stack: AmpStack,
) -> None:
    now = time.time()
    leak = (
        b"upstream said: Authorization: AWS4-HMAC-SHA256 Credential=AKIAAMPSCALERTEST001/20260101/x, "
        b"Signature=" + b"0f" * 32 + b" " + b"A" * 100_000
    )
    with CaptureServer(status=500, body=leak) as capture:
        source = make_source(amp_stack, allowed_prometheus_urls=(capture.url,), max_attempts=1)
        signed = source.observe(
            make_rule(PrometheusSource(url=capture.url, sigv4=True)), make_spec("vector(1)"), now, now + 5
        )
        assert signed.error is not None and "signs only" in signed.error
        assert capture.received == []
        observation = source.observe(
            make_rule(PrometheusSource(url=capture.url)), make_spec("x"), now, now + 5
        )
        (request,) = capture.received
        assert "authorization" not in request.headers and "x-amz-security-token" not in request.headers
    assert observation.error is not None and "HTTP 500" in observation.error
    assert len(observation.error) < 600
    assert "AKIAAMPSCALERTEST001" not in observation.error and "0f" * 32 not in observation.error
    assert "server response omitted" in strip_responses(observation.error)
    assert "upstream said" not in strip_responses(observation.error)


def test_redirect_to_a_capture_server_is_not_followed(amp_stack: AmpStack) -> None:
    now = time.time()
    with CaptureServer(status=200, body=_ok([{"metric": {}, "value": [1, "999"]}]).encode()) as capture:
        amp_stack.proxy.inject(Fault(status=307, headers={"Location": capture.url + "/api/v1/query"}))
        observation = make_source(amp_stack).observe(make_rule(), make_spec("vector(1)"), now, now + 5)
        assert capture.received == []
    assert (
        observation.error is not None
        and "HTTP 307" in observation.error
        and "never followed" in observation.error
    )


@dataclass(frozen=True)
class Tamper:
    name: str
    drop_content_hash: bool


@pytest.mark.parametrize(
    "tamper",
    [Tamper("body changed after signing", False), Tamper("body changed and hash header dropped", True)],
    ids=lambda t: t.name,
)
def test_proxy_rejects_body_changed_after_signing(amp_stack: AmpStack, tamper: Tamper) -> None:
    """Proves the proxy checks the body: a request signed for one query cannot carry another."""
    auth = AWS4Auth(amp_stack.access_key_id, amp_stack.secret_access_key, amp_stack.region, "aps")

    def sign_then_swap(request: requests.PreparedRequest) -> requests.PreparedRequest:
        signed: requests.PreparedRequest = auth(request)
        signed.body = "query=vector(666)"
        signed.headers["Content-Length"] = str(len(signed.body))
        if tamper.drop_content_hash:
            del signed.headers["x-amz-content-sha256"]
        return signed

    url = amp_stack.proxy.workspace_url(amp_stack.workspace_id) + "/api/v1/query"
    response = requests.post(url, data={"query": "vector(1)"}, auth=sign_then_swap, timeout=5)
    assert response.status_code == 403
    assert (
        "x-amz-content-sha256" in response.json()["message"] or "does not match" in response.json()["message"]
    )


# -- results from real series --------------------------------------------------------------------


def test_pods_values_keyed_by_pod_label(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str
) -> None:
    now = time.time()
    write_series([({"__name__": metric_name, "pod": f"web-{i}"}, [(now - 5, float(i))]) for i in range(3)])
    observation = make_source(amp_stack).observe(make_rule(), make_spec(metric_name, "Pods"), now, now + 5)
    assert observation.pod_values == {"web-0": 0.0, "web-1": 1.0, "web-2": 2.0}


def test_pods_duplicate_pod_series_is_an_error(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str
) -> None:
    now = time.time()
    write_series(
        [
            ({"__name__": metric_name, "pod": "web-0", "container": c}, [(now - 5, 1.0)])
            for c in ("app", "sidecar")
        ]
    )
    observation = make_source(amp_stack).observe(make_rule(), make_spec(metric_name, "Pods"), now, now + 5)
    assert observation.error is not None and "more than one series for pod 'web-0'" in observation.error


def test_object_exactly_one_series(amp_stack: AmpStack, write_series: WriteSeries, metric_name: str) -> None:
    now = time.time()
    write_series([({"__name__": metric_name, "svc": s}, [(now - 5, 7.0)]) for s in ("a", "b")])
    source = make_source(amp_stack)
    one = source.observe(make_rule(), make_spec(f'{metric_name}{{svc="a"}}', "Object"), now, now + 5)
    assert one.value == 7.0
    two = source.observe(make_rule(), make_spec(metric_name, "Object"), now, now + 5)
    assert two.error is not None and "returned 2" in two.error


def test_external_sums_series(amp_stack: AmpStack, write_series: WriteSeries, metric_name: str) -> None:
    now = time.time()
    write_series(
        [({"__name__": metric_name, "queue": q}, [(now - 5, v)]) for q, v in (("a", 1.5), ("b", 2.5))]
    )
    observation = make_source(amp_stack).observe(make_rule(), make_spec(metric_name), now, now + 5)
    assert observation.value == 4.0


def test_query_time_is_the_tick_time_not_now(
    amp_stack: AmpStack, write_series: WriteSeries, metric_name: str
) -> None:
    now = time.time()
    # Old samples arrive after newer ones: the out-of-order window accepts them.
    write_series([({"__name__": metric_name}, [(now - 5, 9.0)])])
    write_series([({"__name__": metric_name}, [(now - 3600, 1.0)])])
    source = make_source(amp_stack)
    assert source.observe(make_rule(), make_spec(metric_name), now - 3599, now + 5).value == 1.0
    assert source.observe(make_rule(), make_spec(metric_name), now, now + 5).value == 9.0


def test_empty_result_is_an_error_unless_empty_as(amp_stack: AmpStack, metric_name: str) -> None:
    now = time.time()
    source = make_source(amp_stack)
    empty = source.observe(make_rule(), make_spec(metric_name), now, now + 5)
    assert empty.error is not None and "no series" in empty.error
    zero = source.observe(make_rule(), make_spec(metric_name, empty_as=0), now, now + 5)
    assert (zero.value, zero.error) == (0.0, None)


def test_nan_sample_is_an_error(amp_stack: AmpStack, write_series: WriteSeries, metric_name: str) -> None:
    now = time.time()
    write_series([({"__name__": metric_name}, [(now - 5, math.nan)])])
    source = make_source(amp_stack)
    written = source.observe(make_rule(), make_spec(metric_name), now, now + 5)
    assert written.error is not None and "NaN" in written.error
    division = source.observe(make_rule(), make_spec("0/0"), now, now + 5)
    assert division.error is not None and "NaN" in division.error
    infinite = source.observe(make_rule(), make_spec("vector(1)/0", "Object"), now, now + 5)
    assert infinite.error is not None and "+Inf" in infinite.error


def test_bad_promql_reports_bad_data(amp_stack: AmpStack) -> None:
    now = time.time()
    observation = make_source(amp_stack).observe(make_rule(), make_spec("sum(rate(x[5m]"), now, now + 5)
    assert observation.error is not None
    assert (
        "HTTP 400" in observation.error
        and "bad_data" in observation.error
        and "parse error" in observation.error
    )


def test_query_range_returns_matrix_over_backfilled_day(amp_stack: AmpStack, metric_name: str) -> None:
    now = time.time()
    day = 86400
    points = [(now - day + i * 60, float(i % 10)) for i in range(day // 60)]
    backfill(amp_stack.prometheus, [({"__name__": metric_name, "pod": "web-0"}, points)])
    result = make_source(amp_stack).query_range_with_stats(metric_name, now - day, now - 60, 300)
    (series,) = result.series
    assert series.labels == {"__name__": metric_name, "pod": "web-0"}
    assert len(series.samples) == (day - 60) // 300 + 1
    assert result.stats.samples_processed is not None and result.stats.samples_processed > 0


# -- faults: a KEDA-style status/body/expected table ---------------------------------------------


@dataclass(frozen=True)
class FaultCase:
    name: str
    status: int
    body: str
    # Exact value expected, or substrings the error must contain.
    value: float | None = None
    error: tuple[str, ...] = ()


def _ok(result: list[Any], kind: str = "vector") -> str:
    return json.dumps({"status": "success", "data": {"resultType": kind, "result": result}})


FAULT_CASES = [
    FaultCase("valid vector", 200, _ok([{"metric": {}, "value": [1, "12.5"]}]), value=12.5),
    FaultCase("valid scalar", 200, _ok([1, "3"], "scalar"), value=3.0),
    FaultCase("empty vector", 200, _ok([]), error=("no series", "emptyAs")),
    FaultCase("NaN value", 200, _ok([{"metric": {}, "value": [1, "NaN"]}]), error=("NaN",)),
    FaultCase("matrix", 200, _ok([{"metric": {}, "values": [[1, "1"]]}], "matrix"), error=("range vector",)),
    FaultCase("garbage body", 200, "\x00\x01 not json at all", error=("HTTP 200", "not Prometheus JSON")),
    FaultCase("html body", 200, "<html><body>proxy</body></html>", error=("not Prometheus JSON", "<html>")),
    FaultCase("truncated json", 200, '{"status": "success", "data": {', error=("not Prometheus JSON",)),
    FaultCase(
        "status error in 200",
        200,
        json.dumps({"status": "error", "errorType": "internal", "error": "boom"}),
        error=("internal: boom",),
    ),
    FaultCase(
        "422 execution error",
        422,
        json.dumps(
            {
                "status": "error",
                "errorType": "execution",
                "error": "query processing would load too many samples",
            }
        ),
        error=("HTTP 422", "execution: query processing would load too many samples"),
    ),
    FaultCase(
        "403 access denied",
        403,
        json.dumps({"message": "User is not authorized to perform: aps:QueryMetrics"}),
        error=("HTTP 403", "not authorized", "aps:QueryMetrics on workspace"),
    ),
    FaultCase(
        "404", 404, json.dumps({"message": "Workspace not found"}), error=("HTTP 404", "Workspace not found")
    ),
]


@pytest.mark.parametrize("case", FAULT_CASES, ids=lambda c: c.name)
def test_amp_answer_table(amp_stack: AmpStack, case: FaultCase) -> None:
    amp_stack.proxy.inject(Fault(status=case.status, body=case.body))
    now = time.time()
    observation = make_source(amp_stack).observe(make_rule(), make_spec("up"), now, now + 5)
    if case.error:
        assert observation.value is None and observation.error is not None
        for part in case.error:
            assert part in observation.error
    else:
        assert observation.error is None and observation.value == case.value


def test_429_then_success_within_deadline(amp_stack: AmpStack) -> None:
    amp_stack.proxy.inject(Fault(status=429, body='{"message": "Rate exceeded"}'), times=2)
    now = time.time()
    source = make_source(amp_stack, backoff_base_seconds=0.05)
    outcome = source.observe_with_stats(make_rule(), make_spec("vector(3)"), now, now + 5)
    assert outcome.observation.value == 3.0
    assert outcome.stats.attempts == 3
    assert [r.outcome for r in amp_stack.proxy.requests] == ["fault", "fault", "forwarded"]


def test_5xx_until_deadline_is_an_error_and_never_runs_past_deadline(amp_stack: AmpStack) -> None:
    amp_stack.proxy.inject(Fault(status=503, body='{"message": "Service Unavailable"}'), times=None)
    start = time.time()
    deadline = start + 1.0
    source = make_source(amp_stack, max_attempts=1000, backoff_base_seconds=0.05, backoff_max_seconds=0.2)
    observation = source.observe(make_rule(), make_spec("vector(1)"), start, deadline)
    finished = time.time()
    # Whichever way the last attempt ends (a 503, no time left to retry, or cut off by the
    # deadline on a loaded machine), the error names the backend's failure and the deadline.
    assert (
        observation.error is not None and "HTTP 503" in observation.error and "deadline" in observation.error
    )
    # Every socket timeout is clamped to the deadline; the slack is scheduling, not a margin to hit.
    assert finished <= deadline + 0.5
    assert len(amp_stack.proxy.requests) >= 2


def test_retry_cut_off_by_deadline_reports_the_earlier_failure(amp_stack: AmpStack) -> None:
    # Two quick 503s, then one that answers only after the deadline: the third attempt is cut
    # off by the deadline, and the error must still say what the backend did (the old flake).
    amp_stack.proxy.inject(Fault(status=503, body='{"message": "Service Unavailable"}'), times=2)
    amp_stack.proxy.inject(Fault(status=503, delay_seconds=5.0), times=1)
    start = time.time()
    source = make_source(amp_stack, max_attempts=10, backoff_base_seconds=0.01, backoff_max_seconds=0.01)
    outcome = source.observe_with_stats(make_rule(), make_spec("vector(1)"), start, start + 1.5)
    error = outcome.observation.error
    assert error is not None and "HTTP 503" in error and "the last was cut off" in error
    assert outcome.stats.attempts == 3


def test_transport_failure_after_an_answer_keeps_the_answer_in_the_error(amp_stack: AmpStack) -> None:
    # A 503, then a dropped connection (what an idle keep-alive connection closed by the server
    # looks like): the error leads with what the backend answered.
    amp_stack.proxy.inject(Fault(status=503, body='{"message": "Service Unavailable"}'), times=1)
    amp_stack.proxy.inject(Fault(close=True), times=1)
    now = time.time()
    source = make_source(amp_stack, max_attempts=2, backoff_base_seconds=0.01, backoff_max_seconds=0.01)
    error = source.observe(make_rule(), make_spec("vector(1)"), now, now + 10).error
    assert error is not None and error.startswith("AMP workspace") and "HTTP 503" in error
    assert "; then cannot reach" in error and "gave up after 2 attempts" in error


def test_slow_answer_past_read_timeout(amp_stack: AmpStack) -> None:
    amp_stack.proxy.inject(Fault(delay_seconds=2.0))
    start = time.time()
    source = make_source(amp_stack, read_timeout_seconds=0.3)
    observation = source.observe(make_rule(), make_spec("vector(1)"), start, start + 5)
    assert observation.error is not None and "read timeout" in observation.error
    assert time.time() - start < 1.0


def test_read_timeout_is_clamped_to_the_deadline(amp_stack: AmpStack) -> None:
    amp_stack.proxy.latency_seconds = 2.0
    start = time.time()
    observation = make_source(amp_stack).observe(make_rule(), make_spec("vector(1)"), start, start + 0.4)
    assert observation.error is not None and "did not answer before the deadline" in observation.error
    assert time.time() - start < 0.6


def test_dropped_connection_is_retried(amp_stack: AmpStack) -> None:
    amp_stack.proxy.inject(Fault(close=True))
    now = time.time()
    outcome = make_source(amp_stack, backoff_base_seconds=0.05).observe_with_stats(
        make_rule(), make_spec("vector(4)"), now, now + 5
    )
    assert outcome.observation.value == 4.0 and outcome.stats.attempts == 2


def test_prometheus_down_connection_refused(amp_stack: AmpStack) -> None:
    start = time.time()
    source = AmpMetricsSource(
        workspace_id=amp_stack.workspace_id,
        region=amp_stack.region,
        session=amp_stack.session(),
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        backoff_base_seconds=0.05,
    )
    outcome = source.observe_with_stats(make_rule(), make_spec("vector(1)"), start, start + 2)
    error = outcome.observation.error
    assert error is not None and "cannot reach" in error and "Connection refused" in error
    assert outcome.stats.attempts == 3 and outcome.stats.status is None
    assert time.time() - start < 2.0


# -- bounded answers: bytes, series, one deadline for the whole request ---------------------------


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_150_mb_answer_is_cut_off_at_the_byte_cap_without_holding_it(
    amp_stack: AmpStack, declare_length: bool
) -> None:
    body = _ok([{"metric": {}, "value": [1, "1"]}])
    amp_stack.proxy.inject(
        Fault(status=200, body=body, pad_bytes=150 * 1024 * 1024, declare_length=declare_length)
    )
    now = time.time()
    tracemalloc.start()
    try:
        observation = make_source(amp_stack).observe(make_rule(), make_spec("up"), now, now + 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert observation.error is not None and "over the 4194304-byte limit" in observation.error
    # The cap holds while reading: far below the 150 MB (and the 256 MB function).
    assert peak < 32 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_15_mb_of_valid_series_is_over_the_byte_cap(amp_stack: AmpStack) -> None:
    series = [
        {"metric": {"pod": f"web-{i:07d}", "namespace": "shop"}, "value": [1, "1"]} for i in range(200_000)
    ]
    body = _ok(series)
    assert len(body) > 15_000_000
    amp_stack.proxy.inject(Fault(status=200, body=body))
    now = time.time()
    observation = make_source(amp_stack).observe(make_rule(), make_spec("up", "Pods"), now, now + 30)
    assert (
        observation.error is not None
        and "-byte limit" in observation.error
        and "aggregate" in observation.error
    )


def test_answer_over_the_series_cap_is_an_error(amp_stack: AmpStack) -> None:
    series = [{"metric": {"pod": f"p{i}"}, "value": [1, "1"]} for i in range(10_001)]
    amp_stack.proxy.inject(Fault(status=200, body=_ok(series)))
    now = time.time()
    observation = make_source(amp_stack).observe(make_rule(), make_spec("up", "Pods"), now, now + 30)
    assert observation.error is not None and "10001 series, over the limit of 10000" in observation.error


def test_byte_cap_is_settable(amp_stack: AmpStack) -> None:
    amp_stack.proxy.inject(Fault(status=200, body=_ok([{"metric": {}, "value": [1, "2"]}]), pad_bytes=2000))
    now = time.time()
    observation = make_source(amp_stack, max_response_bytes=1000).observe(
        make_rule(), make_spec("up"), now, now + 5
    )
    assert observation.error is not None and "over the 1000-byte limit" in observation.error


@dataclass(frozen=True)
class Drip:
    name: str
    seconds: float
    size: int
    declare_length: bool


DRIPS = [
    # One byte every 0.5 s (status line and headers too): every read returns well inside the 5 s
    # read timeout, so only a deadline over the whole request ends it.
    Drip("byte by byte", 0.5, 1, True),
    # Headers at once, then 100 bytes every 2 s of a body delimited by the close: cut off, it
    # ends early and looks complete, and must still count as no answer.
    Drip("body until close", 2.0, 100, False),
]


@pytest.mark.parametrize("drip", DRIPS, ids=lambda d: d.name)
def test_slow_drip_is_cut_off_at_the_deadline(amp_stack: AmpStack, drip: Drip) -> None:
    body = _ok([{"metric": {"pod": f"web-{i}"}, "value": [1, "1"]} for i in range(20)])
    fault = Fault(
        status=200,
        body=body,
        drip_seconds=drip.seconds,
        drip_bytes=drip.size,
        declare_length=drip.declare_length,
    )
    amp_stack.proxy.inject(fault)
    start = time.time()
    observation = make_source(amp_stack).observe(make_rule(), make_spec("up"), start, start + 2.0)
    elapsed = time.time() - start
    assert observation.error is not None and "did not answer before the deadline" in observation.error
    # Generous for a loaded machine: the whole answer would take 20 s (by 100 B) to minutes.
    assert elapsed < 10.0


def test_range_queries_have_their_own_byte_cap(amp_stack: AmpStack, metric_name: str) -> None:
    # Backtests read far more than a tick: a range answer over the instant cap still succeeds,
    # and is cut off at the range cap.
    matrix = {"metric": {"pod": "p"}, "values": [[1, "1"]]}
    body = _ok([matrix], "matrix")
    amp_stack.proxy.inject(Fault(status=200, body=body, pad_bytes=8 * 1024 * 1024))
    now = time.time()
    source = make_source(amp_stack)
    (series,) = source.query_range(metric_name, now - 60, now, 15)
    assert series.samples == ((1.0, 1.0),)
    amp_stack.proxy.inject(Fault(status=200, body=body, pad_bytes=2000))
    small = make_source(amp_stack, max_range_response_bytes=1000)
    with pytest.raises(
        MetricQueryError, match=r"over the 1000-byte limit \(QUERY_MAX_RANGE_RESPONSE_BYTES\)"
    ):
        small.query_range(metric_name, now - 60, now, 15)


def test_unsigned_request_never_picks_up_netrc_credentials(
    amp_stack: AmpStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Proxies and CA bundles from the environment still apply; a password for the rule-chosen
    # host found in ~/.netrc must not.
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login alice password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    now = time.time()
    with CaptureServer(status=200, body=_ok([{"metric": {}, "value": [1, "1"]}]).encode()) as capture:
        source = make_source(amp_stack, allowed_prometheus_urls=(capture.url,))
        observation = source.observe(
            make_rule(PrometheusSource(url=capture.url)), make_spec("x"), now, now + 5
        )
        (request,) = capture.received
    assert observation.value == 1.0
    assert "authorization" not in request.headers
