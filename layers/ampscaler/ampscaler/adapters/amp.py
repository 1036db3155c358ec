"""AmpMetricsSource: PromQL instant (and range) queries against AMP over SigV4, results as MetricObservations.

Upstream analogues: the HPA's ``metricsclient`` (external/custom metrics fetch) and KEDA's
``prometheus_scaler.go`` (``ExecutePromQuery``). Unlike KEDA, an empty result is an error unless the
metric sets ``emptyAs``, and the query time is the tick time passed in, never the clock.

Requests are ``POST {workspace}/api/v1/query`` with a form body signed by requests-aws4auth
(service ``aps``): PromQL never goes in the query string, where aws4auth and AMP canonicalize ``+``
and spaces differently. Retries (429, 5xx, connection errors) use capped exponential backoff with
full jitter and never run past the caller's deadline; each attempt's timeouts are clamped to it too.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import os
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from botocore.loaders import create_loader
from botocore.regions import EndpointResolver
from requests.auth import AuthBase
from requests_aws4auth import AWS4Auth

from ampscaler.adapters.bounded_http import (
    BoundedAdapter,
    RequestBounds,
    ResponseTooLarge,
    quote_response,
    redact_text,
    redact_url,
)
from ampscaler.engine.types import MetricObservation, PodInfo
from ampscaler.errors import MetricQueryError
from ampscaler.model import MetricSpec, Rule
from ampscaler.resource_queries import STACK_DEFAULT_SERIES, ResolvedSeries, ResourceQuery, resource_query

if TYPE_CHECKING:
    import boto3

SERVICE = "aps"
# The operator's AMP endpoint (a VPC endpoint, or the devstack's local SigV4 proxy); requests to
# URLs under it are signed like AMP's own.
ENDPOINT_URL_ENV = "AMP_ENDPOINT_URL"
# Comma-separated URL prefixes a rule's prometheus.url may point at besides AMP.
ALLOWED_URLS_ENV = "ALLOWED_PROMETHEUS_URLS"
MAX_RESPONSE_BYTES_ENV = "QUERY_MAX_RESPONSE_BYTES"
MAX_SERIES_ENV = "QUERY_MAX_SERIES"
MAX_RANGE_RESPONSE_BYTES_ENV = "QUERY_MAX_RANGE_RESPONSE_BYTES"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# 4 MiB of JSON is ~40 MB of Python objects: room for the rest of a 256 MB function's work.
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_SERIES = 10_000
# Range queries serve backtests (a laptop or CI, not the 256 MB function): one chunk of 11,000
# points for a few hundred pods is tens of MB.
DEFAULT_MAX_RANGE_RESPONSE_BYTES = 256 * 1024 * 1024
# The tick's default worker count (settings.max_concurrency); one pooled connection per worker.
DEFAULT_POOL_MAXSIZE = 16
# AMP's query (data-plane) hosts: aps-workspaces[-fips].<region>.<partition DNS suffix>, the
# suffixes (IPv4 and dual-stack) coming from botocore's partition data
# (docs.aws.amazon.com/general/latest/gr/prometheus-service.html lists the hosts).
_AMP_HOST = re.compile(
    r"^aps-workspaces(?:-fips)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.(?P<suffix>[a-z0-9.-]+)$"
)
_WORKSPACE_PATH = re.compile(r"^/workspaces/(?P<workspace>ws-[0-9A-Za-z-]+)/?$")
_WORKSPACE_ID = re.compile(r"^ws-[0-9A-Za-z-]+$")
_CREDENTIALS_HINT = (
    "credentials never go in a rule: query AMP (prometheus.workspaceId, signed with the "
    "function's IAM role), or ask the operator to allow-list (ALLOWED_PROMETHEUS_URLS) an "
    "endpoint that needs none, e.g. an authenticating proxy inside the VPC"
)


@functools.cache
def _endpoint_resolver() -> EndpointResolver:
    # botocore's partition data (endpoints.json), as its own clients resolve endpoints from it.
    return EndpointResolver(create_loader().load_data("endpoints"))


def _partition_dns_suffix(region: str, *, dualstack: bool = False) -> str:
    """The DNS suffix of ``region``'s partition (amazonaws.com, amazonaws.com.cn, api.aws, ...) from botocore."""
    try:
        resolver = _endpoint_resolver()
        partition = resolver.get_partition_for_region(region)
        suffix = resolver.get_partition_dns_suffix(partition, ["dualstack"] if dualstack else None)
        if suffix:
            return str(suffix)
    except Exception:  # unknown region or botocore internals changed: the commercial suffixes
        pass
    if dualstack:
        return "api.amazonwebservices.com.cn" if region.startswith("cn-") else "api.aws"
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


@functools.cache
def _all_dns_suffixes() -> frozenset[str]:
    """Every partition's DNS suffixes, IPv4 and dual-stack, as botocore knows them."""
    suffixes = {"amazonaws.com", "amazonaws.com.cn", "api.aws"}
    try:
        resolver = _endpoint_resolver()
        for partition in resolver.get_available_partitions():
            for tags in (None, ["fips"], ["dualstack"], ["dualstack", "fips"]):
                suffix = resolver.get_partition_dns_suffix(partition, tags)
                if suffix:
                    suffixes.add(str(suffix))
    except Exception:  # botocore internals changed: the commercial, China and dual-stack ones
        pass
    return frozenset(suffixes)


def _botocore_flag(variable: str, env: str) -> bool:
    """A boolean endpoint setting (env or ~/.aws/config) as botocore resolves it."""
    try:
        import botocore.session

        return bool(botocore.session.get_session().get_config_variable(variable))
    except Exception:
        return os.environ.get(env, "").strip().lower() == "true"


def amp_endpoint(region: str, *, fips: bool = False, dualstack: bool = False) -> str:
    """The AMP query endpoint of ``region`` (workspace URLs are ``{endpoint}/workspaces/{id}``).

    The DNS suffix is the region's partition's (``amazonaws.com.cn`` in China, the dual-stack
    ``api.aws`` with ``dualstack``); ``fips`` picks the ``aps-workspaces-fips`` host.
    """
    host = "aps-workspaces-fips" if fips else "aps-workspaces"
    return f"https://{host}.{region}.{_partition_dns_suffix(region, dualstack=dualstack)}"


def is_amp_query_host(host: str) -> str | None:
    """The region of an AMP query host (``aps-workspaces[-fips].<region>.<suffix>``), else None."""
    match = _AMP_HOST.match(host.lower())
    if match is None or match["suffix"] not in _all_dns_suffixes():
        return None
    return match["region"]


def _is_loopback(url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _under(url: urllib.parse.SplitResult, prefix: urllib.parse.SplitResult) -> bool:
    """Whether ``url`` is ``prefix`` or below it: same scheme, host and port, path at a ``/`` boundary."""
    if url.scheme != prefix.scheme or (url.hostname or "") != (prefix.hostname or ""):
        return False
    if (url.port or _default_port(url.scheme)) != (prefix.port or _default_port(prefix.scheme)):
        return False
    base = prefix.path.rstrip("/")
    return not base or url.path == base or url.path.rstrip("/") == base or url.path.startswith(base + "/")


def parse_allowed_urls(raw: str | None) -> tuple[str, ...]:
    """``ALLOWED_PROMETHEUS_URLS`` -> URL prefixes (comma-separated, blanks dropped).

    Raises
    ------
    MetricQueryError
        When an entry is not an http(s) URL without credentials, query or fragment.
    """
    entries = tuple(part.strip() for part in (raw or "").split(",") if part.strip())
    for entry in entries:
        parts = urllib.parse.urlsplit(entry)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MetricQueryError(f"{ALLOWED_URLS_ENV}: {redact_url(entry)!r} is not an http(s) URL")
        if "@" in parts.netloc or parts.query or parts.fragment or "?" in entry or "#" in entry:
            raise MetricQueryError(
                f"{ALLOWED_URLS_ENV}: {redact_url(entry)!r} must have no credentials, query or fragment"
            )
    return entries


@dataclass(frozen=True)
class QueryTarget:
    """Where one query goes and how it is signed."""

    # Base URL; ``/api/v1/query`` is appended.
    url: str
    # Signing region; None sends the request unsigned.
    sign_region: str | None
    # Set for AMP workspaces, so 403 messages can name the workspace.
    workspace_id: str | None = None

    @property
    def description(self) -> str:
        """How messages name the backend (never with credentials, query or fragment)."""
        if self.workspace_id:
            return f"AMP workspace {self.workspace_id} ({self.sign_region})"
        return f"Prometheus at {redact_url(self.url)}"

    def where(self, url: str) -> str:
        """The backend and the exact URL of a request to it, naming the URL once."""
        if self.workspace_id:
            return f"{self.description} at {redact_url(url)}"
        return f"Prometheus at {redact_url(url)}"


@dataclass(frozen=True)
class QueryStats:
    """Cost and timing of one query, for the audit (``QuerySamplesProcessed``) and logs."""

    # data.stats.samples.totalQueryableSamples from ``stats=all``: what AMP bills; None when the
    # backend did not report it (or the query failed).
    samples_processed: int | None
    duration_seconds: float
    attempts: int
    # HTTP status of the last answer; None when no answer arrived.
    status: int | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueryOutcome:
    """An observation together with what producing it cost."""

    observation: MetricObservation
    stats: QueryStats


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: its labels and ``(unix_seconds, value)`` samples.

    Same shape as ``ampscaler.backtest.fetch.RangeSeries`` so this adapter can serve backtests.
    """

    labels: Mapping[str, str]
    samples: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class RangeResult:
    """A range query's series and its cost."""

    series: tuple[RangeSeries, ...]
    stats: QueryStats


@dataclass(frozen=True)
class _Answer:
    data: Mapping[str, Any]
    stats: QueryStats


class _QueryFailed(MetricQueryError):
    """Carries the stats of a failed query along with the message."""

    def __init__(self, message: str, stats: QueryStats) -> None:
        super().__init__(message)
        self.stats = stats


# -- pure response handling (unit-tested in tests/unit/adapters/test_amp_parsing.py) -------------


def _snippet(body: bytes | str) -> str:
    # Server text: bounded, redacted and marked, so Kubernetes Events never carry it.
    return quote_response(body)


def describe_http_error(status: int, body: bytes, target: QueryTarget) -> str:
    """An actionable message for a non-200 answer.

    Parameters
    ----------
    status
        HTTP status code.
    body
        Response body; Prometheus error JSON (``errorType``/``error``) or AMP's ``{"message": ...}``.
    target
        Where the query went (names the workspace in 403 hints).

    Returns
    -------
    str
        ``"<backend> answered HTTP <status>: <detail>; <what to do>"``.
    """
    detail = _snippet(body)
    with_prometheus_error = False
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        if payload.get("errorType") or payload.get("error"):
            detail = _snippet(f"{payload.get('errorType', 'error')}: {payload.get('error', '')}")
            with_prometheus_error = True
        elif isinstance(payload.get("message"), str):
            detail = _snippet(payload["message"].rstrip("."))
    head = f"{target.description} answered HTTP {status}: {detail}"
    if status == 403:
        if target.workspace_id:
            return (
                f"{head}; the function's role needs aps:QueryMetrics on workspace {target.workspace_id} "
                f"(arn:aws:aps:{target.sign_region}:<account>:workspace/{target.workspace_id}) and must "
                f"sign for region {target.sign_region}"
            )
        return f"{head}; the Prometheus at {redact_url(target.url)} refused the request"
    if status == 429:
        return f"{head}; throttled: lower the rule's query rate or raise the workspace's query quota"
    if status in (400, 422) and with_prometheus_error:
        return f"{head}; fix the metric's PromQL query"
    if status >= 500:
        return f"{head}; the backend failed, retried while the deadline allowed"
    if 300 <= status < 400:
        return f"{head}; redirects are never followed: point the rule at the final URL"
    return head


def parse_success(body: bytes) -> tuple[Mapping[str, Any], int | None, tuple[str, ...]]:
    """Decode a 200 answer into ``(data, samples_processed, warnings)``.

    Raises
    ------
    MetricQueryError
        When the body is not Prometheus API JSON or its status is not ``success``.
    """
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise MetricQueryError(f"answer is not Prometheus JSON ({exc}): {_snippet(body)}") from exc
    if not isinstance(payload, dict) or payload.get("status") not in ("success", "error"):
        raise MetricQueryError(f"answer is not a Prometheus API response: {_snippet(body)}")
    if payload["status"] == "error":
        kind, detail = payload.get("errorType", "error"), payload.get("error", "")
        raise MetricQueryError(f"query failed: {_snippet(f'{kind}: {detail}')}")
    data = payload.get("data")
    if not isinstance(data, dict) or "resultType" not in data or "result" not in data:
        raise MetricQueryError(f"answer has no data.resultType/data.result: {_snippet(body)}")
    samples: int | None = None
    stats = data.get("stats")
    if isinstance(stats, dict):
        count = (stats.get("samples") or {}).get("totalQueryableSamples")
        if isinstance(count, int):
            samples = count
    warnings = tuple(str(w) for w in payload.get("warnings") or ())
    return data, samples, warnings


def _sample_value(raw: Any, where: str) -> float:
    # The API encodes sample values as strings: "1.5", "NaN", "+Inf", "-Inf".
    try:
        value = float(raw[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise MetricQueryError(f"malformed sample {raw!r} {where}") from exc
    if math.isnan(value):
        raise MetricQueryError(
            f"query returned NaN {where} (often a division by zero, e.g. rate over no traffic); "
            "guard the query, e.g. with `or vector(0)` / `> 0`"
        )
    if math.isinf(value):
        raise MetricQueryError(f"query returned {raw[1]} {where}; guard the query against division by zero")
    return value


def _labels(series: Any) -> dict[str, str]:
    metric = series.get("metric") if isinstance(series, dict) else None
    return dict(metric) if isinstance(metric, dict) else {}


def _render(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def observation_from_data(spec: MetricSpec, data: Mapping[str, Any]) -> MetricObservation:
    """Turn an instant query's ``data`` into the metric's observation; problems become ``error``.

    Pods: one value per ``spec.pod_label`` (a series without it or a second series for the same
    pod is an error). Object: exactly one series. External: the sum of all series. A scalar result
    counts as one series. Empty is an error unless ``spec.empty_as`` is set; NaN/±Inf are errors.
    """
    try:
        return _observation(spec, data)
    except MetricQueryError as exc:
        return MetricObservation(name=spec.name, error=str(exc))


def _observation(spec: MetricSpec, data: Mapping[str, Any]) -> MetricObservation:
    result_type = data.get("resultType")
    result = data.get("result")
    series: list[tuple[dict[str, str], Any]]
    if result_type == "scalar":
        series = [({}, result)]
    elif result_type == "vector" and isinstance(result, list):
        series = [(_labels(item), item.get("value") if isinstance(item, dict) else None) for item in result]
    elif result_type == "matrix":
        raise MetricQueryError(
            "query returned a range vector (matrix); wrap the selector in a function such as rate() or "
            "avg_over_time() so it returns an instant vector"
        )
    else:
        raise MetricQueryError(
            f"unsupported result type {result_type!r}; the query must return a vector or scalar"
        )

    if not series:
        if spec.empty_as is None:
            raise MetricQueryError(
                "query returned no series; check the metric name and label matchers, or set emptyAs "
                "on the metric to treat no data as a number"
            )
        if spec.type == "Pods":
            # No per-pod data at all: the engine applies emptyAs to the pods it lists.
            return MetricObservation(name=spec.name, pod_values={})
        return MetricObservation(name=spec.name, value=float(spec.empty_as))

    if spec.type == "Pods":
        pods: dict[str, float] = {}
        for labels, sample in series:
            pod = labels.get(spec.pod_label)
            if not pod:
                raise MetricQueryError(
                    f"series {_render(labels)} has no {spec.pod_label!r} label; aggregate with "
                    f"`sum by ({spec.pod_label})` or set podLabel to the label naming the pod"
                )
            if pod in pods:
                raise MetricQueryError(
                    f"query returned more than one series for pod {pod!r} (e.g. {_render(labels)}); "
                    f"aggregate with `sum by ({spec.pod_label})`"
                )
            pods[pod] = _sample_value(sample, f"for pod {pod!r}")
        return MetricObservation(name=spec.name, pod_values=pods)

    if spec.type == "Object":
        if len(series) != 1:
            shown = ", ".join(_render(labels) for labels, _ in series[:3])
            raise MetricQueryError(
                f"Object metric needs exactly one series, query returned {len(series)} ({shown}); "
                "aggregate it, e.g. with sum() or max()"
            )
        labels, sample = series[0]
        return MetricObservation(name=spec.name, value=_sample_value(sample, f"for {_render(labels)}"))

    # External: like KEDA's sum over a multi-series result, but NaN anywhere is still an error.
    total = 0.0
    for labels, sample in series:
        total += _sample_value(sample, f"for {_render(labels)}")
    return MetricObservation(name=spec.name, value=total)


def resource_observation_from_data(
    spec: MetricSpec, data: Mapping[str, Any], query: ResourceQuery, pods: Sequence[str] | None
) -> MetricObservation:
    """A Resource/ContainerResource answer -> per-pod usage with the samples' time and window.

    One series per pod (labelled ``query.pod_label``); series of pods not in ``pods`` are dropped
    (the namespace-wide form of the query, or a rule's own query, may return them). ``timestamp``
    is the earliest sample time (an instant query's evaluation time) and ``window_seconds`` the
    rate window, as the HPA takes a PodMetric's Timestamp and Window. No series for the listed
    pods is an error, as the resource metrics API's empty answer is ("no metrics returned").
    Problems become ``error``.
    """
    try:
        return _resource_observation(spec, data, query, pods)
    except MetricQueryError as exc:
        return MetricObservation(name=spec.name, error=str(exc))


def _resource_observation(
    spec: MetricSpec, data: Mapping[str, Any], query: ResourceQuery, pods: Sequence[str] | None
) -> MetricObservation:
    result = data.get("result")
    if data.get("resultType") != "vector" or not isinstance(result, list):
        raise MetricQueryError(
            f"query returned {data.get('resultType')!r}; a {spec.type} metric's query must return an "
            f"instant vector with one series per pod (label {query.pod_label!r})"
        )
    listed = None if pods is None else frozenset(pods)
    values: dict[str, float] = {}
    timestamp: float | None = None
    for item in result:
        labels = _labels(item)
        sample = item.get("value") if isinstance(item, dict) else None
        pod = labels.get(query.pod_label)
        if not pod:
            raise MetricQueryError(
                f"series {_render(labels)} has no {query.pod_label!r} label; the query must keep the pod "
                f"label (`sum by ({query.pod_label})`), or set series.podLabel / RESOURCE_POD_LABEL to the "
                "label naming the pod"
            )
        if listed is not None and pod not in listed:
            continue
        if pod in values:
            raise MetricQueryError(
                f"query returned more than one series for pod {pod!r} (e.g. {_render(labels)}); "
                f"aggregate with `sum by ({query.pod_label})`"
            )
        values[pod] = _sample_value(sample, f"for pod {pod!r}")
        try:
            at = float(sample[0])  # type: ignore[index]  # _sample_value checked its shape
        except (TypeError, ValueError, IndexError) as exc:
            raise MetricQueryError(f"malformed sample {sample!r} for pod {pod!r}") from exc
        timestamp = at if timestamp is None else min(timestamp, at)
    if not values:
        where = "for the target's pods" if listed is not None else "in the target's namespace"
        raise MetricQueryError(
            f"no {spec.resource} usage series {where} (no metrics returned); check that the cAdvisor "
            "series reach the workspace and that the series and label names match the collector's "
            "(series.* in the rule, RESOURCE_* on the stack; docs/rules.md#default-queries-of-resource-metrics)"
        )
    return MetricObservation(
        name=spec.name,
        pod_values=values,
        timestamp=timestamp,
        window_seconds=None if query.window_seconds is None else float(query.window_seconds),
    )


def range_series_from_data(data: Mapping[str, Any]) -> tuple[RangeSeries, ...]:
    """Turn a range query's ``data`` (a matrix) into series; NaN/±Inf points are kept as floats.

    Raises
    ------
    MetricQueryError
        When the result is not a matrix or a point is malformed.
    """
    if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise MetricQueryError(f"range query returned {data.get('resultType')!r}, expected a matrix")
    out: list[RangeSeries] = []
    for item in data["result"]:
        try:
            samples = tuple((float(ts), float(value)) for ts, value in item.get("values", ()))
        except (TypeError, ValueError, AttributeError) as exc:
            raise MetricQueryError(f"malformed range series {_snippet(json.dumps(item).encode())}") from exc
        out.append(RangeSeries(labels=_labels(item), samples=samples))
    return tuple(out)


# -- the adapter ---------------------------------------------------------------------------------


class AmpMetricsSource:
    """ports.MetricsSource over AMP (or any Prometheus HTTP API).

    Parameters
    ----------
    workspace_id, region
        The stack's default AMP workspace; a rule's ``prometheus`` block overrides them.
    session
        boto3 Session whose (refreshable) credentials sign requests; created lazily when None.
    endpoint_url
        Replaces ``https://aps-workspaces.<region>.<partition suffix>`` (a VPC endpoint; tests point
        it at the local SigV4 proxy). Defaults to the ``AMP_ENDPOINT_URL`` environment variable,
        else AWS. Rule URLs under it are signed like AMP's own, even over http: the operator set it.
    allowed_prometheus_urls
        URL prefixes a rule's ``prometheus.url`` may point at besides AMP query endpoints (never
        signed); default: ``ALLOWED_PROMETHEUS_URLS`` (comma-separated). http only where the entry
        itself is http.
    use_fips_endpoint, use_dualstack_endpoint
        Use ``aps-workspaces-fips`` / the dual-stack suffix; default: botocore's
        ``AWS_USE_FIPS_ENDPOINT`` / ``AWS_USE_DUALSTACK_ENDPOINT`` (or the config file).
    max_response_bytes, max_series
        Caps on one answer: body bytes (read by streaming, so the cap holds before the body is in
        memory; default ``QUERY_MAX_RESPONSE_BYTES`` or 4 MiB) and series in its result (default
        ``QUERY_MAX_SERIES`` or 10,000).
    max_range_response_bytes
        Body cap of range queries (backtests, not ticks): default
        ``QUERY_MAX_RANGE_RESPONSE_BYTES`` or 256 MiB.
    pool_maxsize
        Connections kept per host; default ``MAX_CONCURRENCY`` (the tick's workers), at least 16.
    connect_timeout_seconds, read_timeout_seconds
        Per-attempt socket timeouts, clamped to the time left before the deadline.
    max_attempts
        Attempts per query including the first; the deadline usually stops retries earlier.
    backoff_base_seconds, backoff_max_seconds
        Retry delay before attempt n+1 is ``random() * min(max, base * 2**(n-1))`` (full jitter),
        at least the server's ``Retry-After`` when it sends one.
    stats
        Ask for ``stats=all`` (samples processed); AMP and Prometheus >= 2.35 support it.
    resource_series
        The stack's cAdvisor series/label names and CPU window for Resource/ContainerResource
        metrics' default queries (``Settings.resource_series``); a rule's ``series`` overrides it.
    http
        requests Session to send with (connection pooling); created when None.
    clock, sleep, rng
        Injectable for tests: unix time, sleep and a [0, 1) random source.
    """

    def __init__(
        self,
        *,
        workspace_id: str | None = None,
        region: str | None = None,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        allowed_prometheus_urls: Sequence[str] | None = None,
        use_fips_endpoint: bool | None = None,
        use_dualstack_endpoint: bool | None = None,
        max_response_bytes: int | None = None,
        max_series: int | None = None,
        max_range_response_bytes: int | None = None,
        pool_maxsize: int | None = None,
        connect_timeout_seconds: float = 2.0,
        read_timeout_seconds: float = 5.0,
        max_attempts: int = 3,
        backoff_base_seconds: float = 0.2,
        backoff_max_seconds: float = 2.0,
        stats: bool = True,
        resource_series: ResolvedSeries = STACK_DEFAULT_SERIES,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.workspace_id = workspace_id
        self.region = region
        self._session = session
        env_endpoint = os.environ.get(ENDPOINT_URL_ENV) or None
        self.endpoint_url = (endpoint_url if endpoint_url is not None else env_endpoint) or None
        if allowed_prometheus_urls is None:
            self.allowed_prometheus_urls = parse_allowed_urls(os.environ.get(ALLOWED_URLS_ENV))
        else:
            self.allowed_prometheus_urls = parse_allowed_urls(",".join(allowed_prometheus_urls))
        if use_fips_endpoint is None:
            use_fips_endpoint = _botocore_flag("use_fips_endpoint", "AWS_USE_FIPS_ENDPOINT")
        if use_dualstack_endpoint is None:
            use_dualstack_endpoint = _botocore_flag("use_dualstack_endpoint", "AWS_USE_DUALSTACK_ENDPOINT")
        self.use_fips_endpoint = use_fips_endpoint
        self.use_dualstack_endpoint = use_dualstack_endpoint
        self.max_response_bytes = max_response_bytes or _env_int(
            MAX_RESPONSE_BYTES_ENV, DEFAULT_MAX_RESPONSE_BYTES
        )
        self.max_series = max_series or _env_int(MAX_SERIES_ENV, DEFAULT_MAX_SERIES)
        self.max_range_response_bytes = max_range_response_bytes or _env_int(
            MAX_RANGE_RESPONSE_BYTES_ENV, DEFAULT_MAX_RANGE_RESPONSE_BYTES
        )
        self.pool_maxsize = pool_maxsize or max(
            DEFAULT_POOL_MAXSIZE, _env_int("MAX_CONCURRENCY", DEFAULT_POOL_MAXSIZE)
        )
        self.connect_timeout_seconds = connect_timeout_seconds
        self.read_timeout_seconds = read_timeout_seconds
        self.max_attempts = max(1, max_attempts)
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.stats = stats
        self.resource_series = resource_series
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._rng = rng

    # -- ports.MetricsSource ---------------------------------------------------------------------

    def observe(
        self,
        rule: Rule,
        spec: MetricSpec,
        at: float,
        deadline: float,
        *,
        pods: Sequence[PodInfo] | None = None,
    ) -> MetricObservation:
        """Evaluate the metric's query at unix time ``at``; failures come back as ``error``, never raised."""
        return self.observe_with_stats(rule, spec, at, deadline, pods=pods).observation

    def observe_with_stats(
        self,
        rule: Rule,
        spec: MetricSpec,
        at: float,
        deadline: float,
        *,
        pods: Sequence[PodInfo] | None = None,
    ) -> QueryOutcome:
        """Like ``observe``, plus the query's cost (samples processed), duration and attempts.

        Parameters
        ----------
        rule
            The rule, whose ``prometheus`` block may pick another workspace or URL.
        spec
            The metric; its type decides how the result is read.
        at
            Query evaluation time (the tick time), unix seconds.
        deadline
            Unix time after which no attempt starts and no retry sleeps.
        pods
            The target's pods as the tick listed them: a Resource/ContainerResource metric's
            default query names them and its answer keeps only theirs. None: the whole namespace.

        Returns
        -------
        QueryOutcome
            The observation (value, pod_values or error) and its QueryStats.
        """
        started = self._clock()
        names = None if pods is None else [p.name for p in pods]
        resource: ResourceQuery | None = None
        try:
            query = spec.query
            if spec.type in ("Resource", "ContainerResource"):
                if names is not None and not names:
                    raise MetricQueryError(
                        f"no pods to read {spec.resource} usage of: the target's selector matches no pods"
                    )
                resource = resource_query(spec, rule.target.namespace, names, self.resource_series)
                query = resource.query
            target = self.target_for(rule)
            answer = self._post(target, "query", {"query": query, "time": _format_time(at)}, deadline)
        except _QueryFailed as exc:
            return QueryOutcome(MetricObservation(name=spec.name, error=str(exc)), exc.stats)
        except MetricQueryError as exc:
            stats = QueryStats(None, self._clock() - started, attempts=0)
            return QueryOutcome(MetricObservation(name=spec.name, error=str(exc)), stats)
        except Exception as exc:  # observe must never raise; the message says what broke
            stats = QueryStats(None, self._clock() - started, attempts=0)
            error = f"unexpected error querying metric: {type(exc).__name__}: {exc}"
            return QueryOutcome(MetricObservation(name=spec.name, error=error), stats)
        if resource is not None:
            return QueryOutcome(
                resource_observation_from_data(spec, answer.data, resource, names), answer.stats
            )
        return QueryOutcome(observation_from_data(spec, answer.data), answer.stats)

    def query_range(
        self,
        query: str,
        start: float,
        end: float,
        step: float,
        *,
        rule: Rule | None = None,
        deadline: float | None = None,
    ) -> list[RangeSeries]:
        """Fetch ``query`` as a matrix over ``[start, end]`` every ``step`` seconds (for backtests).

        The positional signature matches ``ampscaler.backtest.fetch.RangeClient``. Same target
        selection, signing, timeouts and retries as ``observe``; ``deadline`` None bounds the call
        only by attempts and timeouts. NaN/±Inf samples are returned as floats.

        Raises
        ------
        MetricQueryError
            With the same actionable messages ``observe`` puts in ``error``.
        """
        return list(self.query_range_with_stats(query, start, end, step, rule=rule, deadline=deadline).series)

    def query_range_with_stats(
        self,
        query: str,
        start: float,
        end: float,
        step: float,
        *,
        rule: Rule | None = None,
        deadline: float | None = None,
    ) -> RangeResult:
        """``query_range`` plus the query's QueryStats (samples processed, attempts)."""
        target = self.target_for(rule)
        form = {"query": query, "start": _format_time(start), "end": _format_time(end), "step": f"{step:g}"}
        limit = deadline if deadline is not None else math.inf
        answer = self._post(target, "query_range", form, limit, max_bytes=self.max_range_response_bytes)
        return RangeResult(range_series_from_data(answer.data), answer.stats)

    # -- target selection ------------------------------------------------------------------------

    def target_for(self, rule: Rule | None) -> QueryTarget:
        """Resolve where ``rule``'s queries go: its own URL/workspace, else the stack default.

        Raises
        ------
        MetricQueryError
            When no workspace or region is configured anywhere.
        """
        source = rule.prometheus if rule is not None else None
        if source is not None and source.url:
            return self._url_target(source.url, source.region, source.sigv4)
        workspace = (source.workspace_id if source else None) or self.workspace_id
        region = (source.region if source else None) or self.region
        if not workspace:
            raise MetricQueryError(
                "no AMP workspace: set AMP_WORKSPACE_ID on the function or prometheus.workspaceId in the rule"
            )
        if not _WORKSPACE_ID.match(workspace):
            # It becomes part of the signed request's path: nothing but an id may choose that path.
            raise MetricQueryError(
                f"prometheus.workspaceId {workspace[:64]!r} is not an AMP workspace id (ws-...)"
            )
        if not region:
            raise MetricQueryError(
                "no AMP region: set AMP_REGION on the function or prometheus.region in the rule"
            )
        default = amp_endpoint(region, fips=self.use_fips_endpoint, dualstack=self.use_dualstack_endpoint)
        base = (self.endpoint_url or default).rstrip("/")
        return QueryTarget(url=f"{base}/workspaces/{workspace}", sign_region=region, workspace_id=workspace)

    def _url_target(self, url: str, region: str | None, sigv4: bool) -> QueryTarget:
        """Check a rule's ``prometheus.url`` against the signing and allow-list policy.

        A rule is untrusted: its URL must not turn the function's signature into a credential for
        another host (a confused deputy), carry credentials, or pick the path with ``?``/``#``.
        """
        shown = redact_url(url)
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise MetricQueryError(f"prometheus.url {shown!r} is not a valid URL ({exc})") from None
        if "@" in parts.netloc:
            raise MetricQueryError(
                f"prometheus.url {shown!r} carries credentials (user:password@); {_CREDENTIALS_HINT}"
            )
        if "?" in url or "#" in url:
            raise MetricQueryError(
                f"prometheus.url {shown!r} has a query or fragment ('?' or '#'); give the base URL only "
                "(ampscaler appends /api/v1/query)"
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MetricQueryError(f"prometheus.url {shown!r} must be an http(s) URL with a host")
        segments = [urllib.parse.unquote(segment) for segment in parts.path.split("/")]
        if any(segment in (".", "..") or "/" in segment for segment in segments):
            raise MetricQueryError(f"prometheus.url {shown!r} has '.', '..' or encoded '/' path segments")
        base = url.rstrip("/")
        amp_region = is_amp_query_host(parts.hostname)
        if amp_region is not None:
            workspace = _WORKSPACE_PATH.match(parts.path)
            if parts.scheme != "https" or workspace is None or parts.port not in (None, 443):
                raise MetricQueryError(
                    f"prometheus.url {shown!r}: an AMP URL must be https://{parts.hostname}/workspaces/<ws-id>; "
                    "or use prometheus.workspaceId"
                )
            if region and region != amp_region:
                raise MetricQueryError(
                    f"prometheus.region {region} does not match the AMP host's region {amp_region}"
                )
            return QueryTarget(
                url=base.rstrip("/"),
                sign_region=amp_region if sigv4 else None,
                workspace_id=workspace["workspace"],
            )
        if self.endpoint_url and _under(parts, urllib.parse.urlsplit(self.endpoint_url.rstrip("/"))):
            sign_region = region or self.region
            if sigv4 and not sign_region:
                raise MetricQueryError(
                    "prometheus.sigv4 is true but no region is known; set prometheus.region in the rule"
                )
            return QueryTarget(url=base, sign_region=sign_region if sigv4 else None)
        allowed = [
            entry for entry in self.allowed_prometheus_urls if _under(parts, urllib.parse.urlsplit(entry))
        ]
        if not allowed:
            if parts.scheme == "http" and any(
                _under(parts._replace(scheme="https"), urllib.parse.urlsplit(entry))
                for entry in self.allowed_prometheus_urls
            ):
                raise MetricQueryError(
                    f"prometheus.url {shown!r} is plain http; the allow-listed URL is https: use https"
                )
            listed = ", ".join(redact_url(entry) for entry in self.allowed_prometheus_urls) or "none"
            raise MetricQueryError(
                f"prometheus.url {shown!r} is neither an AMP query endpoint (https://aps-workspaces.<region>."
                f"amazonaws.com/workspaces/<ws-id>) nor under a URL the operator allows in "
                f"{ALLOWED_URLS_ENV} (allowed: {listed}); ask the operator to add it, or use an AMP workspace"
            )
        if sigv4:
            raise MetricQueryError(
                f"prometheus.sigv4 is true but {shown!r} is not an AMP query endpoint: the function signs "
                "only requests to AMP (aps-workspaces.<region>...) and the operator's AMP_ENDPOINT_URL; "
                "drop sigv4 for a self-managed Prometheus"
            )
        return QueryTarget(url=base, sign_region=None)

    # -- HTTP ------------------------------------------------------------------------------------

    def _http_session(self) -> requests.Session:
        if self._http is None:
            http = requests.Session()
            # One pooled connection per tick worker; connections that honour RequestBounds.
            adapter = BoundedAdapter(pool_connections=4, pool_maxsize=self.pool_maxsize, max_retries=0)
            http.mount("https://", adapter)
            http.mount("http://", adapter)
            self._http = http
        return self._http

    def _auth(self, region: str) -> AWS4Auth:
        if self._session is None:
            import boto3  # Lazy: only signed queries need it, and the import is slow.

            self._session = boto3.Session()
        credentials = self._session.get_credentials()
        if credentials is None:
            raise MetricQueryError(
                "no AWS credentials to sign the AMP query: give the function a role (or set AWS_* variables)"
            )
        # A fresh auth per request: AWS4Auth refreshes its key in place, so sharing one across the
        # tick's worker threads would race; deriving a signing key is four HMACs.
        return AWS4Auth(region=region, service=SERVICE, refreshable_credentials=credentials)

    def _post(
        self,
        target: QueryTarget,
        endpoint: str,
        form: dict[str, str],
        deadline: float,
        *,
        max_bytes: int | None = None,
    ) -> _Answer:
        """POST ``form`` to ``{target.url}/api/v1/{endpoint}`` with retries bounded by ``deadline``."""
        if self.stats:
            form = {**form, "stats": "all"}
        url = f"{target.url}/api/v1/{endpoint}"
        # Unsigned requests carry an explicit no-op auth: with none, requests would look the
        # (rule-chosen) host up in ~/.netrc and send whatever password it finds there.
        auth: AuthBase = self._auth(target.sign_region) if target.sign_region else _NO_AUTH
        started = self._clock()
        attempt = 0
        status: int | None = None
        failure = ""

        # The last answer the server gave (e.g. "HTTP 503 ..."): when a later attempt only fails in
        # transport (a dropped keep-alive connection, a timeout), that answer is the news.
        answered = ""

        def failed(message: str) -> _QueryFailed:
            if answered and not message.startswith(answered):
                message = f"{answered}; then {message}"
            return _QueryFailed(message, QueryStats(None, self._clock() - started, attempt, status))

        def cut_off() -> _QueryFailed:
            # The deadline shut the connection down mid-request.
            if failure:
                return failed(
                    f"{failure} (deadline reached after {attempt} attempt(s); the last was cut off)"
                )
            return failed(
                f"{target.description} did not answer before the deadline (one deadline bounds the whole "
                "request: connect, send and every read); the tick ran out of time, or the backend is too slow"
            )

        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                if attempt == 0:
                    raise failed(f"deadline passed before querying {target.description}")
                raise failed(f"{failure} (deadline reached after {attempt} attempt(s))")
            attempt += 1
            retry_after: float | None = None
            byte_cap = max_bytes or self.max_response_bytes
            bounds = RequestBounds(deadline, byte_cap, clock=self._clock)
            try:
                with bounds:
                    response = self._http_session().post(
                        url,
                        data=form,
                        auth=auth,
                        timeout=(
                            min(self.connect_timeout_seconds, remaining),
                            min(self.read_timeout_seconds, remaining),
                        ),
                        # Streamed, so the byte cap holds before the body is in memory; never
                        # redirected (a redirect would choose where the signed request goes);
                        # uncompressed, so the cap counts the bytes that become objects.
                        stream=True,
                        allow_redirects=False,
                        headers={"Accept-Encoding": "identity"},
                    )
                    try:
                        body = response.content
                    finally:
                        response.close()
            except ResponseTooLarge as exc:
                raise failed(
                    f"{target.description} answered with {_size(exc)}, over the {byte_cap}-byte limit "
                    f"({MAX_RANGE_RESPONSE_BYTES_ENV if max_bytes else MAX_RESPONSE_BYTES_ENV}); aggregate "
                    "the query (e.g. sum by (pod)) so it returns fewer series"
                ) from None
            except requests.RequestException as exc:
                if bounds.fired:
                    raise cut_off() from None
                if isinstance(exc, requests.ReadTimeout):
                    # Not retried: a query that is slow once is likely slow again, and AMP bills it each time.
                    if remaining < self.read_timeout_seconds and failure:
                        # A retry cut short by the deadline: what went wrong is the earlier failure.
                        raise failed(
                            f"{failure} (deadline reached after {attempt} attempt(s); the last was cut off)"
                        ) from None
                    if remaining < self.read_timeout_seconds:
                        raise failed(
                            f"{target.description} did not answer before the deadline ({remaining:.3g} s left; "
                            "read timeout); the tick ran out of time, or the query is too slow"
                        ) from None
                    raise failed(
                        f"{target.description} did not answer within {self.read_timeout_seconds:g} s "
                        "(read timeout); simplify the query or raise QUERY_READ_TIMEOUT_SECONDS"
                    ) from None
                if (
                    isinstance(exc, requests.ConnectTimeout)
                    and remaining < self.connect_timeout_seconds
                    and failure
                ):
                    raise failed(
                        f"{failure} (deadline reached after {attempt} attempt(s); the last was cut off)"
                    ) from None
                if not isinstance(exc, requests.ConnectionError):
                    raise failed(
                        f"request to {target.description} failed: {redact_text(_root_cause(exc))}"
                    ) from None
                status = None
                failure = (
                    f"cannot reach {target.where(url)}: {redact_text(_root_cause(exc))}; {_network_hint(url)}"
                )
            else:
                status = response.status_code
                if bounds.fired:
                    # Cut off at the deadline, a body without a length ends early: not an answer.
                    raise cut_off()
                if status == 200:
                    try:
                        data, samples, warnings = parse_success(body)
                    except MetricQueryError as exc:
                        raise failed(f"{target.description} answered HTTP 200 but {exc}") from None
                    count = _series_count(data)
                    if count > self.max_series:
                        raise failed(
                            f"{target.description} answered with {count} series, over the limit of "
                            f"{self.max_series} ({MAX_SERIES_ENV}); aggregate the query (e.g. sum by (pod))"
                        )
                    stats = QueryStats(samples, self._clock() - started, attempt, status, warnings)
                    return _Answer(data, stats)
                failure = answered = describe_http_error(status, body, target)
                if status not in RETRYABLE_STATUS:
                    raise failed(failure)
                retry_after = _retry_after(response.headers.get("Retry-After"))
            if attempt >= self.max_attempts:
                raise failed(f"{failure} (gave up after {attempt} attempts)")
            cap = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
            delay = self._rng() * cap
            if retry_after is not None:
                delay = max(delay, retry_after)
            if self._clock() + delay >= deadline:
                raise failed(f"{failure} (no time left to retry before the deadline; {attempt} attempt(s))")
            self._sleep(delay)


class _NoAuth(AuthBase):
    """Sends the request as is (and keeps requests from reaching for ~/.netrc)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_NO_AUTH = _NoAuth()


def _size(exc: ResponseTooLarge) -> str:
    return f"{exc.declared} bytes" if exc.declared is not None else f"more than {exc.limit} bytes"


def _series_count(data: Mapping[str, Any]) -> int:
    result = data.get("result")
    return len(result) if isinstance(result, list) and data.get("resultType") != "scalar" else 1


def _network_hint(url: str) -> str:
    if _is_loopback(url):
        return "check that the server is running and listening on that port"
    return "check the endpoint, DNS and the network path (VPC endpoint or NAT)"


def _env_int(name: str, default: int) -> int:
    # Bad values fall back to the default: these are tuning knobs, not worth failing a tick for.
    try:
        value = int(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default
    return value if value > 0 else default


def _format_time(at: float) -> str:
    # Millisecond precision, the resolution of Prometheus timestamps.
    return f"{at:.3f}"


def _retry_after(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # HTTP-date form: ignored, backoff applies


def _root_cause(exc: BaseException) -> str:
    # requests wraps urllib3 wraps OSError; the innermost message ("Connection refused") is the useful one.
    seen: Sequence[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen = [*seen, current]
        nxt = current.__cause__ or current.__context__
        if nxt is None and current.args and isinstance(current.args[0], BaseException):
            nxt = current.args[0]
        current = nxt
    last = seen[-1]
    reason = getattr(last, "reason", None)
    text = str(reason or last) or type(last).__name__
    return text
