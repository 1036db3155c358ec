"""The composition root: builds the production adapters from settings and serves Lambda events.

Handlers, the CLI's ``explain``, ``make demo`` and ``bench/`` all build their ports here, so the
code path they run is the one Lambda runs. Endpoints come from the standard AWS configuration
(``AWS_ENDPOINT_URL`` and friends), ``AMP_ENDPOINT_URL`` for the AMP query API and
``CLUSTER_ENDPOINTS`` for clusters reached without ``eks:DescribeCluster``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import boto3
from aws_lambda_powertools import Logger

from ampscaler.adapters.amp import AmpMetricsSource
from ampscaler.adapters.audit import PowertoolsAuditSink
from ampscaler.adapters.eks_token import EksClusterInfo, EksClusterResolver, EksTokenProvider
from ampscaler.adapters.kube import EksScaleTarget
from ampscaler.adapters.rules_ssm import SsmRuleStore
from ampscaler.adapters.state_dynamodb import DynamoDbStateStore
from ampscaler.errors import AmpscalerError
from ampscaler.settings import Settings
from ampscaler.tick import Ports, Ticker, TickResult, run_invocation


class LambdaContextLike(Protocol):
    """The parts of the Lambda context object the scaler uses."""

    @property
    def aws_request_id(self) -> str:
        """The invocation id; it owns the rule leases taken in this invocation."""
        ...

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until Lambda stops the invocation."""
        ...


def _region() -> str:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise AmpscalerError("no AWS region: set AWS_REGION (Lambda sets it) or AWS_DEFAULT_REGION")
    return region


def cluster_endpoints_from_env(raw: str | None) -> dict[str, EksClusterInfo]:
    """Parse ``CLUSTER_ENDPOINTS``: ``{"<cluster>": {"endpoint": URL, "caData": BASE64_PEM}}``.

    Clusters listed here are reached without ``eks:DescribeCluster`` (private endpoints behind a
    DNS name of your own, or the local cluster simulator); TLS is still verified against caData.
    """
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AmpscalerError(f"CLUSTER_ENDPOINTS is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise AmpscalerError("CLUSTER_ENDPOINTS must be a JSON object keyed by cluster name")
    result: dict[str, EksClusterInfo] = {}
    for name, entry in doc.items():
        if not isinstance(entry, dict) or not entry.get("endpoint") or not entry.get("caData"):
            raise AmpscalerError(f"CLUSTER_ENDPOINTS[{name!r}] needs 'endpoint' and 'caData' (base64 PEM)")
        try:
            base64.b64decode(str(entry["caData"]), validate=True)
        except binascii.Error as exc:
            raise AmpscalerError(f"CLUSTER_ENDPOINTS[{name!r}].caData is not base64") from exc
        result[str(name)] = EksClusterInfo(str(name), str(entry["endpoint"]), str(entry["caData"]))
    return result


def cluster_resolver(
    static: Mapping[str, EksClusterInfo], eks_client: Any = None
) -> Callable[[str], EksClusterInfo]:
    """Resolve a cluster from ``static`` first, then through cached ``eks:DescribeCluster``."""
    eks = EksClusterResolver(eks_client)

    def resolve(name: str) -> EksClusterInfo:
        found = static.get(name)
        return found if found is not None else eks.describe_cluster(name)

    return resolve


def metrics_source(settings: Settings, region: str, session: boto3.Session | None = None) -> AmpMetricsSource:
    """The AMP query adapter for ``settings`` (workspace, region, timeouts)."""
    return AmpMetricsSource(
        workspace_id=settings.amp_workspace_id,
        region=settings.amp_region or region,
        session=session,
        connect_timeout_seconds=settings.query_connect_timeout_seconds,
        read_timeout_seconds=settings.query_read_timeout_seconds,
    )


def scale_target(
    settings: Settings,
    region: str,
    *,
    session: boto3.Session | None = None,
    env: Mapping[str, str] | None = None,
    principal: str | None = None,
    pool_maxsize: int | None = None,
) -> EksScaleTarget:
    """The Kubernetes adapter: IAM-derived tokens, clusters from ``CLUSTER_ENDPOINTS`` or EKS."""
    source = os.environ if env is None else env
    credentials = session.get_credentials() if session is not None else None
    return EksScaleTarget(
        EksTokenProvider(region, credentials=credentials),
        cluster_resolver(
            cluster_endpoints_from_env(source.get("CLUSTER_ENDPOINTS")),
            session.client("eks") if session is not None else None,
        ),
        principal=principal,
        connect_timeout_seconds=settings.query_connect_timeout_seconds,
        read_timeout_seconds=settings.query_read_timeout_seconds,
        pool_maxsize=pool_maxsize or settings.max_concurrency,
    )


@dataclass(frozen=True)
class Runtime:
    """Settings plus the production ports built from them."""

    settings: Settings
    ports: Ports
    audit: PowertoolsAuditSink


def build_runtime(
    logger: Logger,
    settings: Settings | None = None,
    env: Mapping[str, str] | None = None,
) -> Runtime:
    """Build every adapter from ``settings`` (default: read from the environment).

    Parameters
    ----------
    logger:
        The function's Powertools logger; the audit sink writes decision records through it.
    settings:
        Function settings; read from ``env`` when None.
    env:
        Environment to read (default ``os.environ``).
    """
    source = os.environ if env is None else env
    settings = settings or Settings.from_env(source)
    region = _region()
    audit = PowertoolsAuditSink(
        logger,
        shard=settings.shard_index,
        service=source.get("POWERTOOLS_SERVICE_NAME") or None,
    )
    ports = Ports(
        rules=SsmRuleStore(
            settings.rule_prefix,
            cache_seconds=settings.rule_cache_seconds,
            default_cluster=settings.cluster_name,
        ),
        metrics=metrics_source(settings, region),
        targets=scale_target(settings, region, env=source),
        state=DynamoDbStateStore(settings.state_table),
        audit=audit,
    )
    return Runtime(settings, ports, audit)


def scheduled_time_of(event: Mapping[str, Any], fallback: float) -> float:
    """When the invocation was scheduled: Scheduler's ``scheduledTime`` or a rule event's ``time``."""
    for key in ("scheduledTime", "time"):
        raw = event.get(key)
        if isinstance(raw, str) and raw:
            try:
                return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
            except ValueError as exc:
                raise AmpscalerError(f"event {key}={raw!r} is not an RFC 3339 time") from exc
    return fallback


class ScalerApp:
    """The scaler function: one scheduled invocation serves every evaluation slot until the next."""

    def __init__(
        self,
        runtime: Runtime,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.sleep = sleep

    @classmethod
    def from_env(cls, logger: Logger) -> ScalerApp:
        """The app as Lambda runs it: settings and endpoints from the environment."""
        return cls(build_runtime(logger))

    def handle(self, event: Mapping[str, Any], context: LambdaContextLike) -> dict[str, Any]:
        """Serve one scheduled event; returns a summary (also useful for `sam local invoke`)."""
        settings = self.runtime.settings
        shard = event.get("shardIndex")
        if shard is not None:
            if not isinstance(shard, int) or not 0 <= shard < settings.shard_count:
                raise AmpscalerError(
                    f"event shardIndex={shard!r} must be an integer in [0, SHARD_COUNT={settings.shard_count})"
                )
            settings = replace(settings, shard_index=shard)
        audit = self.runtime.audit
        audit.shard = str(settings.shard_index)
        scheduled = scheduled_time_of(event, self.clock())
        results: list[TickResult] = []
        with Ticker(self.runtime.ports, settings, context.aws_request_id, self.clock) as ticker:
            try:
                results = run_invocation(
                    ticker,
                    scheduled,
                    lambda: context.get_remaining_time_in_millis() / 1000.0,
                    clock=self.clock,
                    sleep=self.sleep,
                    on_tick=lambda r: audit.tick_finished(r.duration_seconds, completed=True),
                )
            finally:
                audit.flush()
        return {
            "shard": settings.shard_index,
            "ticks": [
                {
                    "slot": r.slot,
                    "evaluated": r.evaluated,
                    "errors": r.errors,
                    "invalid": list(r.invalid_rules),
                    "durationMs": round(r.duration_seconds * 1000.0, 1),
                }
                for r in results
            ],
        }
