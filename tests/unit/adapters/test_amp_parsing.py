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
    describe_http_error,
    observation_from_data,
    parse_success,
    range_series_from_data,
)
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


def test_target_self_managed_url_is_unsigned_unless_sigv4() -> None:
    source = AmpMetricsSource(region="us-east-1")
    assert source.target_for(rule(PrometheusSource(url="http://prom:9090/"))).sign_region is None
    signed = source.target_for(rule(PrometheusSource(url="http://prom:9090", sigv4=True)))
    assert (signed.url, signed.sign_region) == ("http://prom:9090", "us-east-1")


def test_observe_without_workspace_is_an_error_not_an_exception() -> None:
    observation = AmpMetricsSource(endpoint_url="").observe(rule(), spec(), at=1.0, deadline=math.inf)
    assert observation.error is not None and "AMP_WORKSPACE_ID" in observation.error


# -- retries on a fake clock ---------------------------------------------------------------------


@dataclass
class FakeResponse:
    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)


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

    def post(self, url: str, data: dict[str, str], auth: Any, timeout: tuple[float, float]) -> FakeResponse:
        self.timeouts.append(timeout)
        self.clock.now += self.latency
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item


def source_with(http: FakeHttp, clock: FakeClock, **kwargs: Any) -> AmpMetricsSource:
    return AmpMetricsSource(
        region="us-east-1",
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
