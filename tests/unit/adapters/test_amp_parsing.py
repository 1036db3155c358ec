"""AmpMetricsSource without a network: result parsing, error messages, and retry timing on a fake clock."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from ampscaler.adapters.amp import (
    AmpMetricsSource,
    QueryTarget,
    amp_endpoint,
    describe_http_error,
    is_amp_query_host,
    observation_from_data,
    parse_success,
    range_series_from_data,
)
from ampscaler.adapters.bounded_http import strip_responses
from ampscaler.errors import MetricQueryError
from ampscaler.model import MetricSpec, MetricTarget, PrometheusSource, Rule, ScaleTargetRef


def spec(kind: str = "External", *, empty_as: float | None = None, pod_label: str = "pod") -> MetricSpec:
    return MetricSpec(
        name="m",
        type=kind,  # type: ignore[arg-type]
        query="q",
        target=MetricTarget(type="AverageValue", average_value=10),
        pod_label=pod_label,
        empty_as=empty_as,
    )


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {
        "resultType": "vector",
        "result": [{"metric": labels, "value": [1700000000.0, value]} for labels, value in series],
    }


# -- result handling -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultCase:
    name: str
    spec: MetricSpec
    data: dict[str, Any]
    value: float | None = None
    pod_values: dict[str, float] | None = None
    # Substrings the error must contain; empty means no error expected.
    error: tuple[str, ...] = ()


RESULT_CASES = [
    ResultCase("external one series is its value", spec(), vector(({}, "4.5")), value=4.5),
    ResultCase(
        "external sums every series",
        spec(),
        vector(({"queue": "a"}, "1"), ({"queue": "b"}, "2.5"), ({"queue": "c"}, "0.5")),
        value=4.0,
    ),
    ResultCase(
        "external scalar result is its value", spec(), {"resultType": "scalar", "result": [1, "7"]}, 7.0
    ),
    ResultCase("object one series is its value", spec("Object"), vector(({"svc": "x"}, "12")), value=12.0),
    ResultCase(
        "object two series is an error naming the count",
        spec("Object"),
        vector(({"svc": "x"}, "1"), ({"svc": "y"}, "2")),
        error=("exactly one series", "returned 2", 'svc="y"'),
    ),
    ResultCase(
        "pods keyed by pod label",
        spec("Pods"),
        vector(({"pod": "web-1"}, "3"), ({"pod": "web-2"}, "5")),
        pod_values={"web-1": 3.0, "web-2": 5.0},
    ),
    ResultCase(
        "pods keyed by custom pod label",
        spec("Pods", pod_label="kubernetes_pod_name"),
        vector(({"kubernetes_pod_name": "w-1"}, "1")),
        pod_values={"w-1": 1.0},
    ),
    ResultCase(
        "pods duplicate pod is an error naming the pod",
        spec("Pods"),
        vector(({"pod": "web-1", "c": "a"}, "3"), ({"pod": "web-1", "c": "b"}, "4")),
        error=("more than one series for pod 'web-1'", "sum by (pod)"),
    ),
    ResultCase(
        "pods series without the pod label is an error",
        spec("Pods"),
        vector(({"instance": "i-1"}, "3")),
        error=("has no 'pod' label", 'instance="i-1"', "podLabel"),
    ),
    ResultCase("empty is an error without emptyAs", spec(), vector(), error=("no series", "emptyAs")),
    ResultCase("empty object is an error naming zero", spec("Object"), vector(), error=("no series",)),
    ResultCase("empty with emptyAs is that value", spec(empty_as=0), vector(), value=0.0),
    ResultCase("empty object with emptyAs 2.5", spec("Object", empty_as=2.5), vector(), value=2.5),
    ResultCase(
        "empty pods with emptyAs has no pod values", spec("Pods", empty_as=0), vector(), pod_values={}
    ),
    ResultCase("NaN is an error", spec(), vector(({}, "NaN")), error=("NaN",)),
    ResultCase("+Inf is an error", spec("Object"), vector(({}, "+Inf")), error=("+Inf",)),
    ResultCase("-Inf is an error", spec(), vector(({}, "-Inf")), error=("-Inf",)),
    ResultCase(
        "NaN in one of many external series is an error",
        spec(),
        vector(({"q": "a"}, "1"), ({"q": "b"}, "NaN")),
        error=("NaN", 'q="b"'),
    ),
    ResultCase(
        "NaN for one pod names the pod", spec("Pods"), vector(({"pod": "p-2"}, "NaN")), error=("'p-2'",)
    ),
    ResultCase(
        "NaN scalar is an error", spec(), {"resultType": "scalar", "result": [1, "NaN"]}, error=("NaN",)
    ),
    ResultCase(
        "matrix is an error with a hint",
        spec(),
        {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "1"]]}]},
        error=("range vector", "rate()"),
    ),
    ResultCase(
        "string result is an error", spec(), {"resultType": "string", "result": [1, "x"]}, error=("string",)
    ),
    ResultCase("malformed sample is an error", spec(), vector(({}, "abc")), error=("malformed sample",)),
]


@pytest.mark.parametrize("case", RESULT_CASES, ids=lambda c: c.name)
def test_observation_from_data(case: ResultCase) -> None:
    observation = observation_from_data(case.spec, case.data)
    assert observation.name == "m"
    if case.error:
        assert observation.value is None and observation.pod_values is None
        assert observation.error is not None
        for part in case.error:
            assert part in observation.error
    else:
        assert observation.error is None
        assert observation.value == case.value
        assert (
            dict(observation.pod_values) if observation.pod_values is not None else None
        ) == case.pod_values


# -- response decoding ---------------------------------------------------------------------------


def test_parse_success_reads_samples_processed_and_warnings() -> None:
    body = json.dumps(
        {
            "status": "success",
            "warnings": ["partial"],
            "data": {**vector(({}, "1")), "stats": {"samples": {"totalQueryableSamples": 42}}},
        }
    ).encode()
    data, samples, warnings = parse_success(body)
    assert data["resultType"] == "vector"
    assert samples == 42
    assert warnings == ("partial",)


def test_parse_success_without_stats_reports_none() -> None:
    _, samples, _ = parse_success(json.dumps({"status": "success", "data": vector()}).encode())
    assert samples is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "not Prometheus JSON"),
        (b"\xff\xfe\x00garbage", "not Prometheus JSON"),
        (b"[1, 2]", "not a Prometheus API response"),
        (b'{"status": "success"}', "no data.resultType"),
        (b'{"status": "error", "errorType": "bad_data", "error": "x"}', "bad_data: x"),
    ],
    ids=["html", "binary", "json list", "no data", "status error"],
)
def test_parse_success_rejects(body: bytes, message: str) -> None:
    with pytest.raises(MetricQueryError, match=message):
        parse_success(body)


AMP = QueryTarget(
    url="https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1",
    sign_region="eu-west-1",
    workspace_id="ws-1",
)
SELF = QueryTarget(url="http://prom:9090", sign_region=None)


@pytest.mark.parametrize(
    ("status", "body", "target", "expected"),
    [
        (
            403,
            b'{"message": "The request signature we calculated does not match"}',
            AMP,
            (
                "HTTP 403",
                "signature we calculated",
                "aps:QueryMetrics",
                "workspace ws-1",
                "arn:aws:aps:eu-west-1:",
            ),
        ),
        (403, b"forbidden", SELF, ("Prometheus at http://prom:9090 answered HTTP 403",)),
        (
            400,
            b'{"status":"error","errorType":"bad_data","error":"1:5: parse error"}',
            AMP,
            ("HTTP 400", "bad_data: 1:5: parse error", "fix the metric's PromQL"),
        ),
        (422, b'{"status":"error","errorType":"execution","error":"too many samples"}', SELF, ("execution",)),
        (429, b'{"message": "Rate exceeded"}', AMP, ("HTTP 429", "Rate exceeded", "quota")),
        (503, b"", AMP, ("HTTP 503", "AMP workspace ws-1 (eu-west-1)")),
        (404, b"<html>not found</html>", SELF, ("HTTP 404", "<html>not found</html>")),
    ],
    ids=["403 amp", "403 self-managed", "400 bad_data", "422 execution", "429", "503", "404 html"],
)
def test_describe_http_error(
    status: int, body: bytes, target: QueryTarget, expected: tuple[str, ...]
) -> None:
    message = describe_http_error(status, body, target)
    for part in expected:
        assert part in message


def test_range_series_keeps_nan_points() -> None:
    data = {"resultType": "matrix", "result": [{"metric": {"a": "b"}, "values": [[1, "1"], [2, "NaN"]]}]}
    (series,) = range_series_from_data(data)
    assert series.labels == {"a": "b"}
    assert series.samples[0] == (1.0, 1.0)
    assert math.isnan(series.samples[1][1])


def test_range_series_rejects_vector() -> None:
    with pytest.raises(MetricQueryError, match="expected a matrix"):
        range_series_from_data(vector())


# -- target selection ----------------------------------------------------------------------------


def rule(prometheus: PrometheusSource | None = None) -> Rule:
    return Rule(
        name="r",
        target=ScaleTargetRef(cluster="c", namespace="n", kind="Deployment", name="d"),
        min_replicas=1,
        max_replicas=3,
        metrics=(spec(),),
        prometheus=prometheus,
    )


def test_target_defaults_to_stack_workspace_on_aws() -> None:
    source = AmpMetricsSource(workspace_id="ws-a", region="us-east-1", endpoint_url="")
    target = source.target_for(rule())
    assert target.url == "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-a"
    assert target.sign_region == "us-east-1"


def test_target_rule_workspace_and_region_override_stack() -> None:
    source = AmpMetricsSource(workspace_id="ws-a", region="us-east-1", endpoint_url="http://127.0.0.1:1")
    target = source.target_for(rule(PrometheusSource(workspace_id="ws-b", region="eu-central-1")))
    assert target.url == "http://127.0.0.1:1/workspaces/ws-b"
    assert (target.sign_region, target.workspace_id) == ("eu-central-1", "ws-b")


# -- where a rule's prometheus.url may send requests (no confused deputy) ---------------------------


@dataclass(frozen=True)
class UrlCase:
    name: str
    url: str
    sigv4: bool = False
    region: str | None = None
    # Accepted: (url, sign_region, workspace_id); rejected: substrings of the error.
    accepted: tuple[str, str | None, str | None] | None = None
    error: tuple[str, ...] = ()


ALLOW = ("https://prom.example.com/prometheus", "http://prom:9090")
AMP_URL = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-abc"
URL_CASES = [
    UrlCase(
        "AMP URL signed for the host's region",
        AMP_URL,
        sigv4=True,
        accepted=(AMP_URL, "eu-west-1", "ws-abc"),
    ),
    UrlCase(
        "AMP China URL signed",
        "https://aps-workspaces.cn-north-1.amazonaws.com.cn/workspaces/ws-c",
        sigv4=True,
        accepted=("https://aps-workspaces.cn-north-1.amazonaws.com.cn/workspaces/ws-c", "cn-north-1", "ws-c"),
    ),
    UrlCase(
        "AMP FIPS dual-stack URL signed",
        "https://aps-workspaces-fips.us-east-1.api.aws/workspaces/ws-f",
        sigv4=True,
        accepted=("https://aps-workspaces-fips.us-east-1.api.aws/workspaces/ws-f", "us-east-1", "ws-f"),
    ),
    UrlCase("AMP over plain http", AMP_URL.replace("https", "http"), sigv4=True, error=("must be https://",)),
    UrlCase(
        "AMP host other API path",
        AMP_URL + "/api/v1/remote_write",
        sigv4=True,
        error=("/workspaces/<ws-id>",),
    ),
    UrlCase("AMP region mismatch", AMP_URL, sigv4=True, region="us-east-1", error=("does not match",)),
    UrlCase(
        "look-alike host is not AMP",
        "https://aps-workspaces.us-east-1.amazonaws.com.evil.io/workspaces/ws-a",
        sigv4=True,
        error=("neither an AMP query endpoint", "ALLOWED_PROMETHEUS_URLS"),
    ),
    UrlCase("capture server signed", "https://capture.example.net", sigv4=True, error=("neither",)),
    UrlCase("capture server unsigned", "https://capture.example.net", error=("neither",)),
    UrlCase(
        "allow-listed https, unsigned",
        "https://prom.example.com/prometheus/",
        accepted=("https://prom.example.com/prometheus", None, None),
    ),
    UrlCase(
        "below an allow-listed prefix",
        "https://prom.example.com/prometheus/team-a",
        accepted=("https://prom.example.com/prometheus/team-a", None, None),
    ),
    UrlCase("prefix is a path boundary", "https://prom.example.com/prometheus-evil", error=("neither",)),
    UrlCase("host prefix is not a host", "https://prom.example.com.evil.io/prometheus", error=("neither",)),
    UrlCase(
        "allow-listed but signed", "https://prom.example.com/prometheus", sigv4=True, error=("signs only",)
    ),
    UrlCase("http where the entry is https", "http://prom.example.com/prometheus", error=("plain http",)),
    UrlCase("http where the entry is http", "http://prom:9090", accepted=("http://prom:9090", None, None)),
    UrlCase("other port", "http://prom:9091", error=("neither",)),
    UrlCase(
        "basic-auth password in the URL",
        "https://alice:hunter2@prom.example.com/prometheus",
        error=("carries credentials", "workspaceId", "ALLOWED_PROMETHEUS_URLS"),
    ),
    UrlCase(
        "query picks the path", "https://prom.example.com/prometheus?x=/admin", error=("query or fragment",)
    ),
    UrlCase("fragment picks the path", "https://prom.example.com/prometheus#", error=("query or fragment",)),
    UrlCase("dot segments climb out", "https://prom.example.com/prometheus/../admin", error=("'..'",)),
    UrlCase("encoded dot segments", "https://prom.example.com/prometheus/%2e%2e/admin", error=("'..'",)),
]


@pytest.mark.parametrize("case", URL_CASES, ids=lambda c: c.name)
def test_target_rule_url_policy(case: UrlCase) -> None:
    source = AmpMetricsSource(region="us-west-2", endpoint_url="", allowed_prometheus_urls=ALLOW)
    prometheus = PrometheusSource(url=case.url, sigv4=case.sigv4, region=case.region)
    if case.accepted is not None:
        target = source.target_for(rule(prometheus))
        assert (target.url, target.sign_region, target.workspace_id) == case.accepted
        return
    with pytest.raises(MetricQueryError) as caught:
        source.target_for(rule(prometheus))
    for part in case.error:
        assert part in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_target_rule_url_under_the_operator_endpoint_is_signed_even_over_http() -> None:
    source = AmpMetricsSource(region="us-west-2", endpoint_url="http://127.0.0.1:8080/")
    target = source.target_for(
        rule(PrometheusSource(url="http://127.0.0.1:8080/workspaces/ws-1", sigv4=True))
    )
    assert (target.url, target.sign_region) == ("http://127.0.0.1:8080/workspaces/ws-1", "us-west-2")


def test_rule_url_violation_is_an_observation_error_not_an_exception() -> None:
    source = AmpMetricsSource(region="us-west-2", endpoint_url="")
    rule_ = rule(PrometheusSource(url="https://u:p4ss@capture.example.net", sigv4=True))
    observation = source.observe(rule_, spec(), at=1.0, deadline=math.inf)
    assert (
        observation.error is not None
        and "credentials" in observation.error
        and "p4ss" not in observation.error
    )


def test_allow_list_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_PROMETHEUS_URLS", " https://a.example.com/p , http://b:9090,")
    source = AmpMetricsSource(region="us-west-2", endpoint_url="")
    assert source.allowed_prometheus_urls == ("https://a.example.com/p", "http://b:9090")
    monkeypatch.setenv("ALLOWED_PROMETHEUS_URLS", "https://user:pw@a.example.com")
    with pytest.raises(MetricQueryError, match="no credentials"):
        AmpMetricsSource(region="us-west-2", endpoint_url="")


def test_workspace_id_cannot_choose_the_signed_path() -> None:
    source = AmpMetricsSource(region="us-west-2", endpoint_url="")
    with pytest.raises(MetricQueryError, match="not an AMP workspace id"):
        source.target_for(rule(PrometheusSource(workspace_id="ws-a/../../x")))


# -- endpoints: partition, FIPS ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "fips", "dualstack", "expected"),
    [
        ("us-east-1", False, False, "https://aps-workspaces.us-east-1.amazonaws.com"),
        ("us-east-1", True, False, "https://aps-workspaces-fips.us-east-1.amazonaws.com"),
        ("cn-north-1", False, False, "https://aps-workspaces.cn-north-1.amazonaws.com.cn"),
        ("us-gov-west-1", True, False, "https://aps-workspaces-fips.us-gov-west-1.amazonaws.com"),
        ("eu-west-1", False, True, "https://aps-workspaces.eu-west-1.api.aws"),
        ("us-east-2", True, True, "https://aps-workspaces-fips.us-east-2.api.aws"),
    ],
)
def test_amp_endpoint_follows_the_partition_fips_and_dualstack(
    region: str, fips: bool, dualstack: bool, expected: str
) -> None:
    assert amp_endpoint(region, fips=fips, dualstack=dualstack) == expected
    # Every endpoint it builds is one the rule-URL policy recognizes as AMP (and signs for).
    assert is_amp_query_host(expected.removeprefix("https://")) == region


def test_default_target_honours_aws_use_fips_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    target = AmpMetricsSource(workspace_id="ws-a", region="us-east-1", endpoint_url="").target_for(rule())
    assert target.url == "https://aps-workspaces-fips.us-east-1.amazonaws.com/workspaces/ws-a"
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "false")
    target = AmpMetricsSource(workspace_id="ws-a", region="cn-north-1", endpoint_url="").target_for(rule())
    assert target.url == "https://aps-workspaces.cn-north-1.amazonaws.com.cn/workspaces/ws-a"
    monkeypatch.setenv("AWS_USE_DUALSTACK_ENDPOINT", "true")
    target = AmpMetricsSource(workspace_id="ws-a", region="eu-west-1", endpoint_url="").target_for(rule())
    assert target.url == "https://aps-workspaces.eu-west-1.api.aws/workspaces/ws-a"
    # A configured endpoint (VPC endpoint, AMP_ENDPOINT_URL) wins over both.
    configured = AmpMetricsSource(
        workspace_id="ws-a", region="eu-west-1", endpoint_url="https://vpce.example"
    )
    assert configured.target_for(rule()).url == "https://vpce.example/workspaces/ws-a"


def test_pool_holds_a_connection_per_tick_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAX_CONCURRENCY", raising=False)
    source = AmpMetricsSource(region="us-east-1")
    adapter = source._http_session().get_adapter("https://aps-workspaces.us-east-1.amazonaws.com")
    assert adapter._pool_maxsize >= 16  # type: ignore[attr-defined]
    monkeypatch.setenv("MAX_CONCURRENCY", "32")
    adapter = AmpMetricsSource(region="us-east-1")._http_session().get_adapter("http://x")
    assert adapter._pool_maxsize == 32  # type: ignore[attr-defined]


def test_observe_without_workspace_is_an_error_not_an_exception() -> None:
    observation = AmpMetricsSource(endpoint_url="").observe(rule(), spec(), at=1.0, deadline=math.inf)
    assert observation.error is not None and "AMP_WORKSPACE_ID" in observation.error


# -- retries on a fake clock ---------------------------------------------------------------------


@dataclass
class FakeResponse:
    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        pass


@dataclass
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


OK_BODY = json.dumps({"status": "success", "data": vector(({}, "3"))}).encode()


@dataclass
class FakeHttp:
    """Answers from a script; each call takes ``latency`` seconds of fake time."""

    clock: FakeClock
    script: list[FakeResponse | Exception]
    latency: float = 0.1
    timeouts: list[tuple[float, float]] = field(default_factory=list)

    def post(
        self, url: str, data: dict[str, str], auth: Any, timeout: tuple[float, float], **kwargs: Any
    ) -> FakeResponse:
        # Streamed and never redirected: what a capture server or a huge body cannot exploit.
        assert kwargs["stream"] is True and kwargs["allow_redirects"] is False
        self.timeouts.append(timeout)
        self.clock.now += self.latency
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item


def source_with(http: FakeHttp, clock: FakeClock, **kwargs: Any) -> AmpMetricsSource:
    return AmpMetricsSource(
        region="us-east-1",
        allowed_prometheus_urls=("http://prom:9090",),
        http=http,  # type: ignore[arg-type]
        clock=clock.time,
        sleep=clock.sleep,
        rng=lambda: 1.0,
        **kwargs,
    )


def unsigned_rule() -> Rule:
    return rule(PrometheusSource(url="http://prom:9090"))


def test_retry_429_then_success_counts_attempts() -> None:
    clock = FakeClock()
    http = FakeHttp(clock, [FakeResponse(429, b"{}"), FakeResponse(503, b""), FakeResponse(200, OK_BODY)])
    outcome = source_with(http, clock).observe_with_stats(unsigned_rule(), spec(), 1000.0, deadline=1010.0)
    assert outcome.observation.value == 3.0
    assert outcome.stats.attempts == 3
    # Full jitter with rng=1.0 gives the cap: base 0.2 then 0.4.
    assert clock.sleeps == pytest.approx([0.2, 0.4])


def test_retry_stops_before_sleeping_past_deadline() -> None:
    clock = FakeClock()
    http = FakeHttp(clock, [FakeResponse(500, b"boom")])
    outcome = source_with(http, clock, max_attempts=100).observe_with_stats(
        unsigned_rule(), spec(), 1000.0, deadline=1003.0
    )
    assert outcome.observation.error is not None
    assert "HTTP 500" in outcome.observation.error and "deadline" in outcome.observation.error
    assert clock.now <= 1003.0
    # Every attempt's timeouts fit in the time left.
    assert all(read <= 3.0 for _, read in http.timeouts)


def test_retry_honours_retry_after_when_it_fits() -> None:
    clock = FakeClock()
    http = FakeHttp(clock, [FakeResponse(429, b"", {"Retry-After": "2"}), FakeResponse(200, OK_BODY)])
    outcome = source_with(http, clock).observe_with_stats(unsigned_rule(), spec(), 1000.0, deadline=1010.0)
    assert outcome.observation.value == 3.0
    assert clock.sleeps == [2.0]


def test_retry_after_past_deadline_gives_up_without_sleeping() -> None:
    clock = FakeClock()
    http = FakeHttp(clock, [FakeResponse(429, b"", {"Retry-After": "30"}), FakeResponse(200, OK_BODY)])
    outcome = source_with(http, clock).observe_with_stats(unsigned_rule(), spec(), 1000.0, deadline=1005.0)
    assert outcome.observation.error is not None and "HTTP 429" in outcome.observation.error
    assert clock.sleeps == []


def test_no_retry_on_bad_query() -> None:
    clock = FakeClock()
    body = b'{"status":"error","errorType":"bad_data","error":"parse error"}'
    http = FakeHttp(clock, [FakeResponse(400, body), FakeResponse(200, OK_BODY)])
    outcome = source_with(http, clock).observe_with_stats(unsigned_rule(), spec(), 1000.0, deadline=1010.0)
    assert outcome.stats.attempts == 1
    assert outcome.observation.error is not None and "bad_data" in outcome.observation.error


def test_connection_errors_retried_read_timeout_not() -> None:
    clock = FakeClock()
    http = FakeHttp(clock, [requests.ConnectionError("refused"), FakeResponse(200, OK_BODY)])
    assert source_with(http, clock).observe(unsigned_rule(), spec(), 1000.0, deadline=1010.0).value == 3.0
    http = FakeHttp(clock, [requests.ReadTimeout("slow"), FakeResponse(200, OK_BODY)])
    observation = source_with(http, clock).observe(unsigned_rule(), spec(), 1000.0, deadline=clock.now + 10)
    assert observation.error is not None and "read timeout" in observation.error


def test_deadline_already_passed_makes_no_request() -> None:
    clock = FakeClock()
    http = FakeHttp(clock, [FakeResponse(200, OK_BODY)])
    observation = source_with(http, clock).observe(unsigned_rule(), spec(), 1000.0, deadline=999.0)
    assert observation.error is not None and "deadline passed" in observation.error
    assert http.timeouts == []


def test_unexpected_exception_becomes_error() -> None:
    clock = FakeClock()
    http = FakeHttp(clock, [RuntimeError("bug in transport")])
    observation = source_with(http, clock).observe(unsigned_rule(), spec(), 1000.0, deadline=1010.0)
    assert observation.error is not None and "bug in transport" in observation.error


# -- server text is bounded, redacted and kept out of Events ----------------------------------------


def test_error_body_is_bounded_redacted_and_marked_for_events() -> None:
    secret_body = (
        b'{"message": "denied for Authorization: AWS4-HMAC-SHA256 Credential=AKIAAMPSCALERTEST001/x, '
        b"Signature="
        + b"ab" * 32
        + b" token k8s-aws-v1.aHR0cHM6Ly9zdHM and https://u:pw@h/"
        + b"x" * 5000
        + b'"}'
    )
    message = describe_http_error(500, secret_body, SELF)
    assert len(message) < 500
    for secret in ("AKIAAMPSCALERTEST001", "ab" * 32, "aHR0cHM6Ly9zdHM", "u:pw@"):
        assert secret not in message
    # What an Event may carry: the message without any server text.
    event_text = strip_responses(message)
    assert "denied" not in event_text and "HTTP 500" in event_text and "see the scaler log" in event_text


def test_answer_over_the_series_cap_is_an_error() -> None:
    clock = FakeClock()
    many = json.dumps({"status": "success", "data": vector(*(({"pod": f"p{i}"}, "1") for i in range(11)))})
    http = FakeHttp(clock, [FakeResponse(200, many.encode())])
    observation = source_with(http, clock, max_series=10).observe(unsigned_rule(), spec(), 1000.0, 1010.0)
    assert observation.error is not None and "11 series, over the limit of 10" in observation.error


def test_redirect_is_not_followed_and_says_so() -> None:
    clock = FakeClock()
    http = FakeHttp(clock, [FakeResponse(307, b"", {"Location": "https://capture.example.net/"})])
    observation = source_with(http, clock).observe(unsigned_rule(), spec(), 1000.0, 1010.0)
    assert observation.error is not None and "HTTP 307" in observation.error
    assert "redirects are never followed" in observation.error
    assert len(http.timeouts) == 1


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("http://127.0.0.1:9", "server is running"),
        ("http://localhost:9", "server is running"),
        ("http://[::1]:9", "server is running"),
        ("http://prom:9090", "VPC endpoint or NAT"),
    ],
)
def test_connection_error_names_the_url_once_with_a_fitting_hint(url: str, hint: str) -> None:
    clock = FakeClock()
    http = FakeHttp(clock, [requests.ConnectionError("Connection refused")])
    source = AmpMetricsSource(
        region="us-east-1",
        allowed_prometheus_urls=(url,),
        http=http,  # type: ignore[arg-type]
        clock=clock.time,
        sleep=clock.sleep,
        rng=lambda: 1.0,
        max_attempts=1,
    )
    observation = source.observe(rule(PrometheusSource(url=url)), spec(), 1000.0, 1010.0)
    assert observation.error is not None
    assert " at " in observation.error and observation.error.count(" at ") == 1, observation.error
    assert hint in observation.error
    if hint == "server is running":
        assert "NAT" not in observation.error
