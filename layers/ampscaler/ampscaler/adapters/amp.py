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

import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from requests_aws4auth import AWS4Auth

from ampscaler.engine.types import MetricObservation
from ampscaler.errors import MetricQueryError
from ampscaler.model import MetricSpec, Rule

if TYPE_CHECKING:
    import boto3

SERVICE = "aps"
# Set by the devstack/tests to send AMP traffic to the local SigV4 proxy instead of AWS.
ENDPOINT_URL_ENV = "AMP_ENDPOINT_URL"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_BODY_SNIPPET = 200


def amp_endpoint(region: str) -> str:
    """The AMP data-plane endpoint of ``region`` (workspace URLs are ``{endpoint}/workspaces/{id}``)."""
    return f"https://aps-workspaces.{region}.amazonaws.com"


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
        """How messages name the backend."""
        if self.workspace_id:
            return f"AMP workspace {self.workspace_id} ({self.sign_region})"
        return f"Prometheus at {self.url}"


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


def _snippet(body: bytes) -> str:
    text = body[:_BODY_SNIPPET].decode("utf-8", errors="replace").strip()
    return repr(text) + ("..." if len(body) > _BODY_SNIPPET else "")


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
            detail = f"{payload.get('errorType', 'error')}: {payload.get('error', '')}"
            with_prometheus_error = True
        elif isinstance(payload.get("message"), str):
            detail = payload["message"].rstrip(".")
    head = f"{target.description} answered HTTP {status}: {detail}"
    if status == 403:
        if target.workspace_id:
            return (
                f"{head}; the function's role needs aps:QueryMetrics on workspace {target.workspace_id} "
                f"(arn:aws:aps:{target.sign_region}:<account>:workspace/{target.workspace_id}) and must "
                f"sign for region {target.sign_region}"
            )
        return f"{head}; check the credentials the Prometheus at {target.url} expects"
    if status == 429:
        return f"{head}; throttled: lower the rule's query rate or raise the workspace's query quota"
    if status in (400, 422) and with_prometheus_error:
        return f"{head}; fix the metric's PromQL query"
    if status >= 500:
        return f"{head}; the backend failed, retried while the deadline allowed"
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
        raise MetricQueryError(f"query failed: {kind}: {detail}")
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
        Replaces ``https://aps-workspaces.<region>.amazonaws.com`` (tests point it at the local
        SigV4 proxy). Defaults to the ``AMP_ENDPOINT_URL`` environment variable, else AWS.
    connect_timeout_seconds, read_timeout_seconds
        Per-attempt socket timeouts, clamped to the time left before the deadline.
    max_attempts
        Attempts per query including the first; the deadline usually stops retries earlier.
    backoff_base_seconds, backoff_max_seconds
        Retry delay before attempt n+1 is ``random() * min(max, base * 2**(n-1))`` (full jitter),
        at least the server's ``Retry-After`` when it sends one.
    stats
        Ask for ``stats=all`` (samples processed); AMP and Prometheus >= 2.35 support it.
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
        connect_timeout_seconds: float = 2.0,
        read_timeout_seconds: float = 5.0,
        max_attempts: int = 3,
        backoff_base_seconds: float = 0.2,
        backoff_max_seconds: float = 2.0,
        stats: bool = True,
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
        self.connect_timeout_seconds = connect_timeout_seconds
        self.read_timeout_seconds = read_timeout_seconds
        self.max_attempts = max(1, max_attempts)
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.stats = stats
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._rng = rng

    # -- ports.MetricsSource ---------------------------------------------------------------------

    def observe(self, rule: Rule, spec: MetricSpec, at: float, deadline: float) -> MetricObservation:
        """Evaluate ``spec.query`` at unix time ``at``; failures come back as ``error``, never raised."""
        return self.observe_with_stats(rule, spec, at, deadline).observation

    def observe_with_stats(self, rule: Rule, spec: MetricSpec, at: float, deadline: float) -> QueryOutcome:
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

        Returns
        -------
        QueryOutcome
            The observation (value, pod_values or error) and its QueryStats.
        """
        started = self._clock()
        try:
            target = self.target_for(rule)
            answer = self._post(target, "query", {"query": spec.query, "time": _format_time(at)}, deadline)
        except _QueryFailed as exc:
            return QueryOutcome(MetricObservation(name=spec.name, error=str(exc)), exc.stats)
        except MetricQueryError as exc:
            stats = QueryStats(None, self._clock() - started, attempts=0)
            return QueryOutcome(MetricObservation(name=spec.name, error=str(exc)), stats)
        except Exception as exc:  # observe must never raise; the message says what broke
            stats = QueryStats(None, self._clock() - started, attempts=0)
            error = f"unexpected error querying metric: {type(exc).__name__}: {exc}"
            return QueryOutcome(MetricObservation(name=spec.name, error=error), stats)
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
        answer = self._post(target, "query_range", form, limit)
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
            region = source.region or self.region
            if source.sigv4 and not region:
                raise MetricQueryError(
                    "prometheus.sigv4 is true but no region is known; set prometheus.region in the rule"
                )
            return QueryTarget(url=source.url.rstrip("/"), sign_region=region if source.sigv4 else None)
        workspace = (source.workspace_id if source else None) or self.workspace_id
        region = (source.region if source else None) or self.region
        if not workspace:
            raise MetricQueryError(
                "no AMP workspace: set AMP_WORKSPACE_ID on the function or prometheus.workspaceId in the rule"
            )
        if not region:
            raise MetricQueryError(
                "no AMP region: set AMP_REGION on the function or prometheus.region in the rule"
            )
        base = (self.endpoint_url or amp_endpoint(region)).rstrip("/")
        return QueryTarget(url=f"{base}/workspaces/{workspace}", sign_region=region, workspace_id=workspace)

    # -- HTTP ------------------------------------------------------------------------------------

    def _http_session(self) -> requests.Session:
        if self._http is None:
            self._http = requests.Session()
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

    def _post(self, target: QueryTarget, endpoint: str, form: dict[str, str], deadline: float) -> _Answer:
        """POST ``form`` to ``{target.url}/api/v1/{endpoint}`` with retries bounded by ``deadline``."""
        if self.stats:
            form = {**form, "stats": "all"}
        url = f"{target.url}/api/v1/{endpoint}"
        auth = self._auth(target.sign_region) if target.sign_region else None
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

        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                if attempt == 0:
                    raise failed(f"deadline passed before querying {target.description}")
                raise failed(f"{failure} (deadline reached after {attempt} attempt(s))")
            attempt += 1
            retry_after: float | None = None
            try:
                response = self._http_session().post(
                    url,
                    data=form,
                    auth=auth,
                    timeout=(
                        min(self.connect_timeout_seconds, remaining),
                        min(self.read_timeout_seconds, remaining),
                    ),
                )
            except requests.ReadTimeout:
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
            except requests.ConnectTimeout as exc:
                if remaining < self.connect_timeout_seconds and failure:
                    raise failed(
                        f"{failure} (deadline reached after {attempt} attempt(s); the last was cut off)"
                    ) from None
                status = None
                failure = (
                    f"cannot reach {target.description} at {url}: {_root_cause(exc)}; check the endpoint, "
                    "DNS and the network path (VPC endpoint or NAT)"
                )
            except requests.ConnectionError as exc:
                status = None
                failure = (
                    f"cannot reach {target.description} at {url}: {_root_cause(exc)}; check the endpoint, "
                    "DNS and the network path (VPC endpoint or NAT)"
                )
            except requests.RequestException as exc:
                raise failed(f"request to {target.description} failed: {_root_cause(exc)}") from None
            else:
                status = response.status_code
                body = response.content
                if status == 200:
                    try:
                        data, samples, warnings = parse_success(body)
                    except MetricQueryError as exc:
                        raise failed(f"{target.description} answered HTTP 200 but {exc}") from None
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
