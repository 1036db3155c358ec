"""EksScaleTarget: the ScaleTarget port over the official kubernetes client, authenticated with IAM.

Upstream analogue: the HPA controller's scale namespacer (``scaleNamespacer.Get``/``Update``), its pod
lister and its event recorder. Errors become ``ScaleTargetError``/``ConflictError`` with messages that
say what to fix (the EKS access entry, the access policy, the missing workload).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, cast

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from ampscaler.adapters.bounded_http import (
    RequestBounds,
    ResponseTooLarge,
    guard_pool_manager,
    redact_text,
    strip_responses,
)
from ampscaler.adapters.eks_token import EksClusterInfo, EksClusterResolver
from ampscaler.engine.types import ContainerInfo, PodInfo, PodPhase, ScaleObservation
from ampscaler.errors import ConflictError, ScaleTargetError
from ampscaler.model import ScaleTargetRef
from ampscaler.ports import ScaleReading

logger = logging.getLogger(__name__)

EVENT_COMPONENT = "ampscaler"
# Kinds served by AppsV1Api, with the read/patch method suffix of each.
_APPS_KINDS = {"Deployment": "deployment", "StatefulSet": "stateful_set", "ReplicaSet": "replica_set"}
_APPS_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "ReplicaSet": "replicasets"}
_POD_PHASES: frozenset[str] = frozenset({"Pending", "Running", "Succeeded", "Failed", "Unknown"})
# The requests a PodInfo carries: the resources Resource/ContainerResource metrics may name.
_REQUESTED_RESOURCES = ("cpu", "memory")
# Pods listed per page: bounds each response for targets with thousands of pods. A pod is 5-30 KB
# of JSON (managedFields included), so a page stays well under the response cap.
_POD_PAGE_SIZE = 100
# Cap on one API response body, enforced while reading (4 MiB of JSON is ~40 MB of objects).
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# Server text kept in messages (API server Status messages), in characters: the longest
# forbidden/not-found forms (user ARN, resource, group, namespace) fit.
_SERVER_TEXT_CHARS = 400
# Event messages: what the API server accepts for core/v1 Events without truncating.
_EVENT_MESSAGE_CHARS = 1024
# The access policy that covers get/patch on scale, list pods and create events in a namespace.
_ACCESS_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"


class TokenSource(Protocol):
    """Where bearer tokens come from (EksTokenProvider in production)."""

    def token(self, cluster: str) -> str:
        """A currently valid token for ``cluster``."""
        ...

    def invalidate(self, cluster: str) -> None:
        """Drop the cached token of ``cluster`` so the next ``token`` call makes a new one."""
        ...


ClusterInfoResolver = Callable[[str], EksClusterInfo]


@dataclass
class _ClusterClients:
    info: EksClusterInfo
    api_client: Any
    apps: Any
    core: Any
    custom: Any


class EksScaleTarget:
    """ScaleTarget for EKS (or any cluster reachable with a bearer token and a CA bundle).

    One ``kubernetes.client.ApiClient`` per cluster is cached, so every rule on a cluster shares its
    connection pool. TLS is always verified against the cluster CA; the bearer token is attached
    on every request through the client's ``refresh_api_key_hook`` and is never logged.

    Parameters
    ----------
    tokens:
        Bearer tokens per cluster name (``EksTokenProvider``).
    clusters:
        Cluster name -> endpoint and CA; default: a cached ``eks:DescribeCluster``. Tests and the
        demo inject a resolver that points at the Kubernetes API simulator and its generated CA.
    principal:
        The IAM role the tokens are signed with, named in 401/403 messages (e.g. the function's
        role ARN); default: a generic description.
    connect_timeout_seconds, read_timeout_seconds:
        Bound every API call (``_request_timeout``).
    plurals:
        ``(apiVersion, kind) -> plural`` for custom kinds whose plural is not ``lower(kind) + "s"``.
    pool_maxsize:
        Connections kept per cluster (rules are evaluated concurrently).
    reporting_instance:
        ``reportingInstance`` of emitted Events (e.g. the Lambda function name).
    max_response_bytes:
        Cap on each response body, enforced while reading (error bodies the client reads itself
        included). Every request is also bounded as a whole, not per read: at most
        ``connect_timeout_seconds + read_timeout_seconds`` from its start.
    """

    def __init__(
        self,
        tokens: TokenSource,
        clusters: ClusterInfoResolver | None = None,
        *,
        principal: str | None = None,
        connect_timeout_seconds: float = 2.0,
        read_timeout_seconds: float = 5.0,
        plurals: Mapping[tuple[str, str], str] | None = None,
        pool_maxsize: int = 16,
        reporting_instance: str = EVENT_COMPONENT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = tokens
        self._resolver = clusters if clusters is not None else EksClusterResolver().describe_cluster
        self._principal = principal or "the scaler function's IAM role"
        self._timeout = (connect_timeout_seconds, read_timeout_seconds)
        self._plurals = dict(plurals or {})
        self._pool_maxsize = pool_maxsize
        self._reporting_instance = reporting_instance
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, _ClusterClients] = {}
        # metadata.uid of each target as last read, so Events carry involvedObject.uid
        # (kubectl describe selects events by uid).
        self._uids: dict[ScaleTargetRef, str] = {}

    # -- clients -------------------------------------------------------------------------------

    def _clients_for(self, cluster: str) -> _ClusterClients:
        with self._lock:
            cached = self._clients.get(cluster)
        if cached is not None:
            return cached
        info = self._resolver(cluster)
        configuration = k8s.Configuration()
        configuration.host = info.endpoint
        configuration.ssl_ca_cert = info.ca_file()
        # Never disabled: the point of the CA from DescribeCluster is to verify the endpoint.
        configuration.verify_ssl = True
        configuration.connection_pool_maxsize = self._pool_maxsize
        # Bounded connect retries only; a read timeout is never retried (PATCH is not idempotent
        # and the tick has a deadline).
        # Retry-After is not honoured either: sleeping is the tick's call, against its deadline.
        configuration.retries = urllib3.Retry(
            total=2, connect=2, read=0, status=0, other=0, redirect=0, respect_retry_after_header=False
        )
        # auth_settings() only looks for a key that is already present, and only then calls the
        # refresh hook that puts the current token in; hence the empty placeholder.
        configuration.api_key = {"authorization": ""}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        tokens = self._tokens

        def refresh(config: Any) -> None:
            # Called by the client right before each request is authenticated.
            config.api_key["authorization"] = tokens.token(cluster)

        configuration.refresh_api_key_hook = refresh
        api_client = k8s.ApiClient(configuration)
        api_client.user_agent = "ampscaler"
        # Connections that honour RequestBounds: one deadline per request, capped bodies.
        guard_pool_manager(api_client.rest_client.pool_manager)
        clients = _ClusterClients(
            info=info,
            api_client=api_client,
            apps=k8s.AppsV1Api(api_client),
            core=k8s.CoreV1Api(api_client),
            custom=k8s.CustomObjectsApi(api_client),
        )
        with self._lock:
            # Another thread may have won the race; keep one client per cluster.
            return self._clients.setdefault(cluster, clients)

    def close(self) -> None:
        """Close every cached connection pool."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for entry in clients:
            entry.api_client.close()

    # -- the port ------------------------------------------------------------------------------

    def read_scale(self, target: ScaleTargetRef, *, deadline: float | None = None) -> ScaleReading:
        """GET the target's /scale subresource.

        Raises
        ------
        ScaleTargetError
            With an actionable message for 401/403/404/5xx and connection failures.
        """
        clients = self._clients_for(target.cluster)
        if self._is_apps(target):
            method = getattr(clients.apps, f"read_namespaced_{_APPS_KINDS[target.kind]}_scale")
            scale = self._call(
                target,
                "get",
                lambda: method(target.name, target.namespace, **self._raw(target, deadline)),
                deadline=deadline,
            )
        else:
            group, version = self._group_version(target)
            scale = self._call(
                target,
                "get",
                lambda: clients.custom.get_namespaced_custom_object_scale(
                    group,
                    version,
                    target.namespace,
                    self.plural(target),
                    target.name,
                    **self._raw(target, deadline),
                ),
                deadline=deadline,
            )
        return self._reading(target, scale)

    def list_pods(
        self, target: ScaleTargetRef, selector: str, *, deadline: float | None = None
    ) -> Sequence[PodInfo]:
        """Pods of the target's namespace matching the scale's ``status.selector``, page by page.

        Raises
        ------
        ScaleTargetError
            When the selector is empty (the HPA refuses too: "selector is required") or the list fails.
        """
        if not selector.strip():
            raise ScaleTargetError(
                f"{self._describe(target)} has no status.selector in its scale subresource; for a custom "
                "resource set labelSelectorPath in the CRD's scale subresource (the HPA needs it too)"
            )
        clients = self._clients_for(target.cluster)
        pods: list[PodInfo] = []
        continue_token = ""
        while True:
            kwargs: dict[str, Any] = {"label_selector": selector, "limit": _POD_PAGE_SIZE}
            if continue_token:
                kwargs["_continue"] = continue_token
            request = functools.partial(clients.core.list_namespaced_pod, target.namespace, **kwargs)
            page = self._call(
                target,
                "list",
                functools.partial(self._send, request, target, deadline),
                resource="pods",
                deadline=deadline,
            )
            pods.extend(_pod_info(item) for item in page.get("items") or ())
            continue_token = str((page.get("metadata") or {}).get("continue") or "")
            if not continue_token:
                return pods

    def patch_replicas(
        self, target: ScaleTargetRef, replicas: int, resource_version: str, *, deadline: float | None = None
    ) -> ScaleReading:
        """PATCH ``spec.replicas`` with ``metadata.resourceVersion`` as the concurrency precondition.

        Raises
        ------
        ConflictError
            On 409: the scale changed since it was read; re-read and decide again.
        ScaleTargetError
            For every other failure.
        """
        body = {"metadata": {"resourceVersion": resource_version}, "spec": {"replicas": replicas}}
        clients = self._clients_for(target.cluster)
        if self._is_apps(target):
            # The client sends a dict body to these endpoints as a strategic merge patch.
            method = getattr(clients.apps, f"patch_namespaced_{_APPS_KINDS[target.kind]}_scale")
            scale = self._call(
                target,
                "patch",
                lambda: method(target.name, target.namespace, body, **self._raw(target, deadline)),
                resource_version=resource_version,
                deadline=deadline,
            )
        else:
            group, version = self._group_version(target)
            # Custom resources take JSON merge patch (strategic merge is 415 for them); the client
            # sends that content type for this method.
            scale = self._call(
                target,
                "patch",
                lambda: clients.custom.patch_namespaced_custom_object_scale(
                    group,
                    version,
                    target.namespace,
                    self.plural(target),
                    target.name,
                    body,
                    **self._raw(target, deadline),
                ),
                resource_version=resource_version,
                deadline=deadline,
            )
        reading = self._reading(target, scale)
        logger.info(
            "patched %s spec.replicas=%d in cluster %s (resourceVersion %s -> %s)",
            self._describe(target),
            replicas,
            target.cluster,
            resource_version,
            reading.resource_version,
        )
        return reading

    def record_event(
        self,
        target: ScaleTargetRef,
        event_type: str,
        reason: str,
        message: str,
        *,
        deadline: float | None = None,
    ) -> None:
        """Create a core/v1 Event on the target like the HPA's recorder; log and swallow any failure."""
        try:
            clients = self._clients_for(target.cluster)
            # Whole seconds: metav1.Time is serialized at second precision.
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            with self._lock:
                uid = self._uids.get(target)
            event = k8s.CoreV1Event(
                metadata=k8s.V1ObjectMeta(
                    # client-go's recorder names events "<object>.<unix nanos in hex>".
                    name=f"{target.name}.{time.time_ns():x}",
                    namespace=target.namespace,
                ),
                involved_object=k8s.V1ObjectReference(
                    api_version=target.api_version,
                    kind=target.kind,
                    name=target.name,
                    namespace=target.namespace,
                    uid=uid,
                ),
                reason=reason,
                message=event_message(message),
                type=event_type,
                source=k8s.V1EventSource(component=EVENT_COMPONENT),
                reporting_component=EVENT_COMPONENT,
                reporting_instance=self._reporting_instance,
                first_timestamp=now,
                last_timestamp=now,
                count=1,
                action="Scale",
            )
            self._call(
                target,
                "create",
                lambda: clients.core.create_namespaced_event(
                    target.namespace, event, **self._raw(target, deadline)
                ),
                resource="events",
                deadline=deadline,
            )
        except Exception as exc:  # an Event is best effort: it never fails the tick
            logger.warning(
                "could not record event %s on %s in cluster %s: %s",
                reason,
                self._describe(target),
                target.cluster,
                exc,
            )

    # -- helpers -------------------------------------------------------------------------------

    def plural(self, target: ScaleTargetRef) -> str:
        """The resource plural of the target's kind: the configured mapping, else ``lower(kind) + "s"``."""
        if target.api_version == "apps/v1" and target.kind in _APPS_PLURALS:
            return _APPS_PLURALS[target.kind]
        return self._plurals.get((target.api_version, target.kind), target.kind.lower() + "s")

    def _send(self, request: Callable[..., Any], target: ScaleTargetRef, deadline: float | None) -> Any:
        return request(**self._raw(target, deadline))

    def _raw(self, target: ScaleTargetRef, deadline: float | None) -> dict[str, Any]:
        """Request options: raw body, and socket timeouts clamped to the time left before ``deadline``.

        Raises
        ------
        ScaleTargetError
            The deadline has passed: the request is not sent.
        """
        connect, read = self._timeout
        if deadline is not None:
            left = deadline - self._clock()
            if left <= 0:
                raise ScaleTargetError(
                    f"deadline passed before calling the Kubernetes API of cluster {target.cluster} "
                    f"for {self._describe(target)}"
                )
            connect, read = min(connect, left), min(read, left)
        return {"_preload_content": False, "_request_timeout": (connect, read)}

    def _reading(self, target: ScaleTargetRef, scale: Mapping[str, Any]) -> ScaleReading:
        """A Scale object -> ScaleReading; remembers the object's uid for Events."""
        metadata = scale.get("metadata") or {}
        spec = scale.get("spec") or {}
        status = scale.get("status") or {}
        uid = metadata.get("uid")
        if uid:
            with self._lock:
                self._uids[target] = str(uid)
        # A missing spec.replicas means 0, as the API server defaults it.
        return ScaleReading(
            scale=ScaleObservation(
                spec_replicas=int(spec.get("replicas") or 0),
                status_replicas=int(status.get("replicas") or 0),
            ),
            selector=str(status.get("selector") or ""),
            resource_version=str(metadata.get("resourceVersion") or ""),
        )

    @staticmethod
    def _is_apps(target: ScaleTargetRef) -> bool:
        return target.api_version == "apps/v1" and target.kind in _APPS_KINDS

    def _group_version(self, target: ScaleTargetRef) -> tuple[str, str]:
        group, sep, version = target.api_version.rpartition("/")
        if not sep or not group:
            raise ScaleTargetError(
                f"{self._describe(target)}: apiVersion {target.api_version!r} must be group/version for a "
                "kind other than Deployment, StatefulSet or ReplicaSet"
            )
        return group, version

    @staticmethod
    def _describe(target: ScaleTargetRef) -> str:
        return f"{target.kind} {target.namespace}/{target.name}"

    def _call(
        self,
        target: ScaleTargetRef,
        verb: str,
        request: Callable[[], Any],
        *,
        resource: str | None = None,
        resource_version: str | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Run one API request: retry once with a fresh token on 401, map every failure.

        Requests run with ``_preload_content=False`` and the JSON body is parsed here: it skips the
        client's model deserialization (slow for pod lists) and treats Deployments and custom
        resources alike. Each attempt is bounded as a whole by ``deadline`` (unix time; default:
        the connect plus read timeout from its start) and its body by ``max_response_bytes``.
        """
        for attempt in (1, 2):
            # The whole attempt ends by the caller's deadline, and never later than its timeouts allow.
            limit = self._clock() + sum(self._timeout)
            if deadline is not None:
                limit = min(limit, deadline)
            bounds = RequestBounds(limit, self._max_response_bytes)
            try:
                with bounds:
                    response = request()
                    try:
                        payload = json.loads(response.data)
                    finally:
                        response.release_conn()
                if not isinstance(payload, dict):
                    raise ScaleTargetError(f"unexpected response body from cluster {target.cluster}")
                return payload
            except ResponseTooLarge as exc:
                raise ScaleTargetError(
                    f"{verb} {resource or self.plural(target) + '/scale'} for {self._describe(target)}: the "
                    f"Kubernetes API of cluster {target.cluster} answered {exc}; ampscaler reads at most "
                    f"{self._max_response_bytes} bytes per response"
                ) from exc
            except ApiException as exc:
                if exc.status == 401 and attempt == 1:
                    # The token may have expired or been revoked: mint a new one and retry once.
                    logger.info("cluster %s answered 401; retrying with a fresh token", target.cluster)
                    self._tokens.invalidate(target.cluster)
                    continue
                raise self._api_error(target, verb, exc, resource, resource_version) from exc
            except urllib3.exceptions.HTTPError as exc:
                if bounds.fired:
                    raise self._deadline_error(target, verb, deadline) from exc
                raise self._transport_error(target, verb, exc) from exc
            except ValueError as exc:
                if bounds.fired:
                    # Cut off at the deadline, a body without a length ends early and looks malformed.
                    raise self._deadline_error(target, verb, deadline) from exc
                raise ScaleTargetError(
                    f"malformed JSON from the Kubernetes API of {target.cluster}: {exc}"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _deadline_error(self, target: ScaleTargetRef, verb: str, deadline: float | None) -> ScaleTargetError:
        bound = (
            "the caller's deadline"
            if deadline is not None
            else f"{self._timeout[0]:g}s connect + {self._timeout[1]:g}s read"
        )
        return ScaleTargetError(
            f"transient: {verb} {self._describe(target)} in cluster {target.cluster} did not finish before "
            f"its deadline ({bound} bound the whole request, not each read); the next tick retries"
        )

    def _api_error(
        self,
        target: ScaleTargetRef,
        verb: str,
        exc: ApiException,
        resource: str | None,
        resource_version: str | None,
    ) -> ScaleTargetError:
        status = int(exc.status or 0)
        reason, server_message = _status_message(exc)
        what = self._describe(target)
        cluster = target.cluster
        resource = resource or f"{self.plural(target)}/scale"
        if status == 409 and verb == "patch":
            return ConflictError(
                f"{what} in cluster {cluster} changed since it was read (resourceVersion "
                f"{resource_version}); re-read the scale and decide again. API server: {server_message}"
            )
        if status == 401:
            return ScaleTargetError(
                f"unauthorized: the cluster {cluster} rejected the IAM token (also a freshly signed one); "
                f"check the EKS access entry for {self._principal} (aws eks list-access-entries "
                f"--cluster-name {cluster}) and that the token is signed in the cluster's region",
                status=401,
            )
        if status == 403:
            return ScaleTargetError(
                f"forbidden: {self._principal} may not {verb} {resource} for {what} in cluster {cluster}; "
                f"with AccessMode=rbac bind its group to the ampscaler ClusterRole in namespace "
                f"{target.namespace} (docs/rbac-*.yaml: get/patch on {self.plural(target)}/scale, list on "
                f"pods, create on events); with AccessMode=access-policy add namespace {target.namespace} "
                f"to the {_ACCESS_POLICY.rsplit('/', 1)[1]} access scope ({_ACCESS_POLICY}). "
                f"API server: {server_message}",
                status=403,
            )
        if status == 404:
            hint = ""
            if not self._is_apps(target):
                hint = (
                    f" (check apiVersion {target.api_version}, the plural {self.plural(target)!r} and that "
                    "the CRD enables the scale subresource)"
                )
            return ScaleTargetError(
                f"{what} not found in cluster {cluster}{hint}. API server: {server_message}", status=404
            )
        if status == 429 or status >= 500:
            return ScaleTargetError(
                f"transient: the Kubernetes API of cluster {cluster} answered {status} {reason} to {verb} "
                f"{resource} for {what}; the next tick retries. API server: {server_message}",
                status=status,
            )
        return ScaleTargetError(
            f"{verb} {resource} for {what} in cluster {cluster} failed: "
            f"HTTP {status} {reason}: {server_message}",
            status=status or None,
        )

    def _transport_error(
        self, target: ScaleTargetRef, verb: str, exc: urllib3.exceptions.HTTPError
    ) -> ScaleTargetError:
        cause: BaseException = exc
        if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
            cause = exc.reason
        with self._lock:
            entry = self._clients.get(target.cluster)
        endpoint = entry.info.endpoint if entry else "its endpoint"
        if isinstance(cause, urllib3.exceptions.SSLError):
            return ScaleTargetError(
                f"TLS verification of the Kubernetes API of cluster {target.cluster} at {endpoint} failed "
                f"against the cluster CA from DescribeCluster: {cause}"
            )
        # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, so it is tested first.
        if isinstance(cause, urllib3.exceptions.TimeoutError) and not isinstance(
            cause, urllib3.exceptions.NewConnectionError
        ):
            return ScaleTargetError(
                f"transient: {verb} {self._describe(target)} in cluster {target.cluster} timed out after "
                f"{self._timeout[0]:g}s connect / {self._timeout[1]:g}s read; the next tick retries"
            )
        return ScaleTargetError(
            f"transient: cannot reach the Kubernetes API of cluster {target.cluster} at {endpoint}: "
            f"{_cause_text(cause)}"
        )


def _pod_info(pod: Mapping[str, Any]) -> PodInfo:
    """A pod (JSON) -> PodInfo, the inputs of upstream ``groupPods`` and ``calculatePodRequests``.

    Phase, the Ready condition and its ``lastTransitionTime``, ``status.startTime``,
    ``deletionTimestamp``, and the cpu/memory requests of the containers the HPA counts: every
    ``spec.containers`` entry and every restartable (sidecar) init container. ``requests`` sums
    each resource over those containers and leaves it out when one of them has no request for it
    (the HPA's "missing request for cpu in container X of Pod Y").
    """
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    phase = str(status.get("phase") or "Unknown")
    ready_condition = next(
        (c for c in status.get("conditions") or () if isinstance(c, Mapping) and c.get("type") == "Ready"),
        None,
    )
    counted = [c for c in spec.get("containers") or () if isinstance(c, Mapping)] + [
        c
        for c in spec.get("initContainers") or ()
        if isinstance(c, Mapping) and c.get("restartPolicy") == "Always"
    ]
    requests: dict[str, float] = {}
    for resource in _REQUESTED_RESOURCES:
        amounts = [_request(c, resource) for c in counted]
        if all(amount is not None for amount in amounts):
            # Summed exactly, then converted once: 0.1 + 0.2 cores is 0.3, not 0.30000000000000004.
            requests[resource] = float(sum((a for a in amounts if a is not None), Decimal(0)))
    return PodInfo(
        name=str(metadata.get("name", "")),
        phase=cast(PodPhase, phase if phase in _POD_PHASES else "Unknown"),
        ready=ready_condition is not None and ready_condition.get("status") == "True",
        deleting=metadata.get("deletionTimestamp") is not None,
        start_time=_unix_time(status.get("startTime")),
        ready_transition_time=(
            _unix_time(ready_condition.get("lastTransitionTime")) if ready_condition is not None else None
        ),
        requests=requests,
        containers=tuple(_container_info(c) for c in counted),
    )


def _request(container: Mapping[str, Any], resource: str) -> Decimal | None:
    """A container's request for ``resource`` (cores or bytes), None when it sets none."""
    raw = ((container.get("resources") or {}).get("requests") or {}).get(resource)
    if raw is None:
        return None
    try:
        return Decimal(parse_quantity(raw))
    except (ValueError, TypeError, ArithmeticError):
        # The API server validates quantities; an unreadable one counts as no request.
        return None


def _container_info(container: Mapping[str, Any]) -> ContainerInfo:
    requests: dict[str, float] = {}
    for resource in _REQUESTED_RESOURCES:
        amount = _request(container, resource)
        if amount is not None:
            requests[resource] = float(amount)
    return ContainerInfo(name=str(container.get("name", "")), requests=requests)


def _unix_time(raw: object) -> float | None:
    """An RFC 3339 API timestamp ("2026-11-23T15:04:05Z") in unix seconds; None when absent or unreadable."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _status_message(exc: ApiException) -> tuple[str, str]:
    """(reason, message) from the meta/v1 Status body of an API error, falling back to the HTTP reason."""
    reason = str(exc.reason or "")
    message = reason
    try:
        body = json.loads(exc.body) if exc.body else None
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict):
        reason = str(body.get("reason") or reason)
        message = str(body.get("message") or message)
    # Server text: bounded and redacted before it reaches any message, log or Event.
    return _server_text(reason, 64), _server_text(message, _SERVER_TEXT_CHARS)


def _cause_text(cause: BaseException) -> str:
    # urllib3 messages embed "<...HTTPSConnection object at 0x7f...>: "; the rest is the reason.
    text = re.sub(r"<[^<>]* object at 0x[0-9a-f]+>:?\s*", "", str(cause))
    return _server_text(text or type(cause).__name__, _SERVER_TEXT_CHARS)


def _server_text(text: str, limit: int) -> str:
    single = " ".join(text.split())
    return redact_text(single[:limit] + ("..." if len(single) > limit else ""))


def event_message(message: str) -> str:
    """What an Event may say: no server-sent text (a rule-chosen Prometheus's body), no secrets, bounded.

    Anyone allowed to ``get events`` in the namespace reads it.
    """
    text = redact_text(strip_responses(message))
    return text if len(text) <= _EVENT_MESSAGE_CHARS else text[: _EVENT_MESSAGE_CHARS - 3] + "..."
