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
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from ampscaler.adapters.amp import AmpMetricsSource
from ampscaler.adapters.audit import PowertoolsAuditSink
from ampscaler.adapters.boto_deadline import bounded_client
from ampscaler.adapters.eks_token import EksClusterInfo, EksClusterResolver, EksTokenProvider
from ampscaler.adapters.kube import EksScaleTarget
from ampscaler.adapters.logging_guard import guard_library_loggers
from ampscaler.adapters.rules_ssm import SsmRuleStore
from ampscaler.adapters.state_dynamodb import DynamoDbStateStore
from ampscaler.errors import AmpscalerError
from ampscaler.schedule import Slot, delay_seconds, invocation_slots, slot_from_message, slot_message
from ampscaler.settings import Settings
from ampscaler.tick import DROPPED_LATE, Ports, Ticker, TickResult

logger = logging.getLogger(__name__)

# Whatever level the root logger is set to, the SDKs' loggers never print credentials.
guard_library_loggers()


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
        resource_series=settings.resource_series,
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
        per_rule_metrics=settings.per_rule_metrics,
    )
    ports = Ports(
        # The operator's policy (namespaces, clusters, replica ceiling) applies to every rule, and
        # the client's calls are bounded by the slot's deadline like every other call.
        rules=SsmRuleStore.from_settings(settings, client=bounded_client("ssm", region=region)),
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


class SqsSlotQueue:
    """Puts the later slots of a schedule on the slot queue as delayed messages (SQS message timers).

    Parameters
    ----------
    queue_url:
        ``SLOT_QUEUE_URL``.
    client:
        SQS client; a deadline-bounded one is created on first use when None.
    """

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client
        self.messages_sent = 0

    def enqueue(self, slots: Sequence[Slot], now: float) -> None:
        """Send one message per slot, delivered at the slot's start (``SendMessageBatch``, 10 a call).

        Raises
        ------
        AmpscalerError
            A message could not be sent (the message names the slot and what SQS answered).
        """
        if self._client is None:
            self._client = bounded_client("sqs")
        for start in range(0, len(slots), 10):
            batch = slots[start : start + 10]
            entries = [
                {"Id": slot.id, "MessageBody": slot_message(slot), "DelaySeconds": delay_seconds(slot, now)}
                for slot in batch
            ]
            try:
                response = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (BotoCoreError, ClientError, AmpscalerError) as exc:
                raise AmpscalerError(f"could not put slots on {self.queue_url}: {exc}") from exc
            failed = response.get("Failed") or []
            self.messages_sent += len(batch) - len(failed)
            if failed:
                detail = "; ".join(f"slot {f.get('Id')}: {f.get('Message') or f.get('Code')}" for f in failed)
                raise AmpscalerError(f"could not put slots on {self.queue_url}: {detail}")


class ScalerApp:
    """The scaler function: each invocation runs exactly one evaluation slot of one shard.

    A scheduled event (EventBridge Scheduler, once per ``schedule_interval_seconds`` per shard)
    puts the schedule's later slots on the slot queue as delayed messages and runs the first
    slot; each queue message then invokes the function for its own slot. Nothing waits, so
    nothing is billed for waiting.
    """

    def __init__(
        self,
        runtime: Runtime,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        slot_queue: SqsSlotQueue | None = None,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.sleep = sleep
        settings = runtime.settings
        if slot_queue is None and settings.slot_queue_url:
            slot_queue = SqsSlotQueue(settings.slot_queue_url)
        self.slot_queue = slot_queue
        self.slots_dropped = 0

    @classmethod
    def from_env(cls, logger: Logger) -> ScalerApp:
        """The app as Lambda runs it: settings and endpoints from the environment."""
        return cls(build_runtime(logger))

    def handle(self, event: Mapping[str, Any], context: LambdaContextLike) -> dict[str, Any]:
        """Serve one scheduled event or one batch of slot messages; returns what was run.

        Raises
        ------
        AmpscalerError
            A malformed scheduled event, or a schedule spanning several slots with no slot queue.
        """
        records = event.get("Records")
        if isinstance(records, list):
            return self._handle_messages(records, context)
        return self._handle_schedule(event, context)

    def _handle_schedule(self, event: Mapping[str, Any], context: LambdaContextLike) -> dict[str, Any]:
        settings = self.runtime.settings
        shard = event.get("shardIndex", settings.shard_index)
        if not isinstance(shard, int) or isinstance(shard, bool) or not 0 <= shard < settings.shard_count:
            raise AmpscalerError(
                f"event shardIndex={shard!r} must be an integer in [0, SHARD_COUNT={settings.shard_count})"
            )
        slots = invocation_slots(
            scheduled_time_of(event, self.clock()),
            shard,
            settings.evaluation_interval_seconds,
            settings.schedule_interval_seconds,
        )
        enqueued = 0
        if len(slots) > 1:
            if self.slot_queue is None:
                raise AmpscalerError(
                    "SLOT_QUEUE_URL is not set, but SCHEDULE_INTERVAL_SECONDS="
                    f"{settings.schedule_interval_seconds} spans {len(slots)} slots of "
                    f"EVALUATION_INTERVAL_SECONDS={settings.evaluation_interval_seconds}"
                )
            try:
                self.slot_queue.enqueue(slots[1:], self.clock())
                enqueued = len(slots) - 1
            except AmpscalerError as exc:
                # This slot still runs; the later ones of this minute are lost, and alarmed.
                self.runtime.audit.evaluation_error("*", str(exc))
        return {"shard": shard, "enqueued": enqueued, "ticks": [self.run_slot(slots[0], context)]}

    def _handle_messages(self, records: Sequence[Any], context: LambdaContextLike) -> dict[str, Any]:
        ticks: list[dict[str, Any]] = []
        for record in records:
            body = record.get("body") if isinstance(record, Mapping) else None
            try:
                slot = slot_from_message(str(body), self.runtime.settings.shard_count)
            except AmpscalerError as exc:
                # Not ours or malformed: say so and let it go (it would fail the same way again).
                self.runtime.audit.evaluation_error("*", f"slot queue message ignored: {exc}")
                continue
            ticks.append(self.run_slot(slot, context))
        # Every message is consumed: a slot is only meaningful at its time, never retried.
        return {"ticks": ticks, "batchItemFailures": []}

    def run_slot(self, slot: Slot, context: LambdaContextLike) -> dict[str, Any]:
        """Run ``slot`` unless its successor has started; log its tick line and flush the metrics."""
        settings = replace(self.runtime.settings, shard_index=slot.shard)
        audit = self.runtime.audit
        audit.shard = str(slot.shard)
        now = self.clock()
        if slot.interval_seconds != settings.evaluation_interval_seconds:
            result = TickResult(slot.id, slot.start, 0.0, dropped=DROPPED_LATE, message="interval changed")
        elif now >= slot.end:
            message = f"arrived {now - slot.start:.1f}s after its start, after its successor's start"
            result = TickResult(slot.id, slot.start, 0.0, dropped=DROPPED_LATE, message=message)
        else:
            if now < slot.start:
                # A timer rounds to whole seconds and a schedule may fire a moment early.
                self.sleep(min(slot.start - now, context.get_remaining_time_in_millis() / 1000.0))
                now = self.clock()
            lambda_deadline = now + context.get_remaining_time_in_millis() / 1000.0
            deadline = min(slot.end, lambda_deadline) - settings.deadline_margin_seconds
            with Ticker(self.runtime.ports, settings, context.aws_request_id, self.clock) as ticker:
                result = ticker.run_slot(slot, deadline)
        if result.dropped is not None:
            self.slots_dropped += 1
            logger.info(
                "slot %s of shard %d dropped (%s): %s", slot.id, slot.shard, result.dropped, result.message
            )
        summary = {**result.summary(), "shard": slot.shard}
        try:
            audit.tick_finished(summary, result.duration_seconds, ran=result.dropped is None)
        finally:
            audit.flush()
        return summary
