"""Run the real Lambda handlers in-process as Lambda's Python runtime would: fresh import, context, log capture.

The e2e tests, ``make demo`` and bench/ all load ``functions/<name>/app.py`` through ``load_handler``
and read what the function logged with ``log_records``, so no caller carries its own copy.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
_module_ids = itertools.count()


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that the handlers and Powertools read.

    With ``deadline`` (unix time) the remaining time counts down as in Lambda; without, it is
    the fixed ``remaining_millis``.
    """

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_millis: int = 60_000
    function_name: str = "ampscaler-ScalerFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ampscaler-ScalerFunction"
    deadline: float | None = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left in the invocation."""
        if self.deadline is None:
            return self.remaining_millis
        return max(0, int((self.deadline - time.time()) * 1000))


def _bind_log_streams(service: str, stream: TextIO) -> None:
    for handler in logging.getLogger(service).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = stream  # setStream would flush the (maybe closed) old stream


def load_handler(function: str, service: str = "ampscaler", stream: TextIO | None = None) -> ModuleType:
    """Import ``functions/<function>/app.py`` fresh, as Lambda's runtime would on a cold start.

    Parameters
    ----------
    function:
        Folder name under ``functions/`` (``scaler``, ``rule_validator``).
    service:
        ``POWERTOOLS_SERVICE_NAME``: the stdlib logger Powertools configures.
    stream:
        Where the function's log records go (default: ``sys.stdout`` at the time of the call).

    Returns
    -------
    ModuleType
        The freshly executed module; call its ``lambda_handler(event, context)``.
    """
    # Powertools configures the stdlib logger of the service once per process and binds its
    # handler to the sys.stdout of that moment; a fresh "cold start" must write to the caller's.
    target = sys.stdout if stream is None else stream
    _bind_log_streams(service, target)
    path = ROOT / "functions" / function / "app.py"
    name = f"_devstack_{function}_app_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    # The first import in a process creates the handler; bind that one too.
    _bind_log_streams(service, target)
    return module


def scheduled_event(at: float, shard_index: int = 0) -> dict[str, Any]:
    """The EventBridge Scheduler payload template.yaml sends, scheduled at unix time ``at``."""
    return {
        "shardIndex": shard_index,
        "scheduledTime": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
    }


def log_records(text: str) -> list[dict[str, Any]]:
    """Every JSON line of captured stdout (Powertools log records and EMF blobs)."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


class LineCapture(io.StringIO):
    """A thread-safe text sink standing in for Lambda's stdout; hands out complete lines.

    The tick logs from worker threads and EMF blobs are written with ``sys.stdout`` looked up per
    call, so one sink receives both; ``drain`` returns only whole lines and keeps a partial one.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Append ``text`` (whole, even when several threads write at once)."""
        with self._lock:
            return super().write(text)

    def drain(self) -> list[str]:
        """Remove and return every complete line written so far (without newlines)."""
        with self._lock:
            text = self.getvalue()
            head, sep, tail = text.rpartition("\n")
            self.seek(0)
            self.truncate(0)
            super().write(tail)
        return head.split("\n") if sep else []


class LocalFunction:
    """One execution environment of a function: invocations run one at a time, as in Lambda.

    Parameters
    ----------
    module:
        The loaded handler module (``load_handler``).
    timeout_seconds:
        The function timeout (template.yaml's ``Timeout``): each invocation's context counts
        down from it.
    on_invoke:
        Called after every invocation with ``(event, result or None, error or None, seconds)``.
    """

    def __init__(
        self,
        module: ModuleType,
        timeout_seconds: float = 75.0,
        on_invoke: Callable[[dict[str, Any], Any, BaseException | None, float], None] | None = None,
    ) -> None:
        self.module = module
        self.timeout_seconds = timeout_seconds
        self.on_invoke = on_invoke
        self.invocations = 0
        self.billed_ms = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run the handler on ``event`` with a fresh context; errors are recorded and re-raised."""
        with self._lock:
            started = time.time()
            context = LambdaContext(deadline=started + self.timeout_seconds)
            result: Any = None
            error: BaseException | None = None
            try:
                result = self.module.lambda_handler(event, context)
                return result
            except BaseException as exc:
                error = exc
                self.errors.append(exc)
                raise
            finally:
                elapsed = time.time() - started
                self.invocations += 1
                # Lambda bills whole milliseconds, rounded up.
                self.billed_ms += max(1, int(-(-elapsed * 1000 // 1)))
                if self.on_invoke is not None:
                    self.on_invoke(event, result, error, elapsed)


class SqsEventSource:
    """The SQS event source mapping, locally: long-polls a queue and invokes the function per message.

    As Lambda's poller does for template.yaml's ``Slot`` event (batch size 1): each message
    becomes one ``{"Records": [...]}`` invocation and is deleted when the invocation succeeds; a
    failed one becomes visible again after the queue's visibility timeout.

    Parameters
    ----------
    sqs:
        boto3 SQS client reaching the queue (moto).
    queue_url:
        The queue.
    invoke:
        Called with each event (``LocalFunction.invoke``).
    """

    def __init__(self, sqs: Any, queue_url: str, invoke: Callable[[dict[str, Any]], Any]) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.invoke = invoke
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqs-event-source", daemon=True)

    def start(self) -> SqsEventSource:
        """Start polling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (an invocation in progress finishes first)."""
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self) -> SqsEventSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        arn = "arn:aws:sqs:us-east-1:123456789012:" + self.queue_url.rsplit("/", 1)[-1]
        while not self._stop.is_set():
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1, AttributeNames=["All"]
                ).get("Messages", [])
            except Exception:  # the server stopped under us: the stack is shutting down
                if self._stop.wait(0.5):
                    return
                continue
            for message in messages:
                self.received += 1
                event = {
                    "Records": [
                        {
                            "messageId": message["MessageId"],
                            "receiptHandle": message["ReceiptHandle"],
                            "body": message["Body"],
                            "attributes": message.get("Attributes", {}),
                            "messageAttributes": {},
                            "md5OfBody": message.get("MD5OfBody", ""),
                            "eventSource": "aws:sqs",
                            "eventSourceARN": arn,
                            "awsRegion": "us-east-1",
                        }
                    ]
                }
                try:
                    self.invoke(event)
                except Exception:
                    continue  # left on the queue, as Lambda leaves a failed batch
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class LocalSchedule:
    """EventBridge Scheduler, locally: fires the scheduled event of every shard on each period boundary.

    Parameters
    ----------
    invoke:
        Called with each scheduled event (``LocalFunction.invoke``), asynchronously as Scheduler
        invokes (errors are recorded by the function, not raised here).
    period_seconds:
        The schedule's rate (``SCHEDULE_INTERVAL_SECONDS``).
    shard_count:
        One schedule per shard, as template.yaml creates.
    """

    def __init__(
        self,
        invoke: Callable[[dict[str, Any]], Any],
        period_seconds: float,
        shard_count: int = 1,
        *,
        start_now: bool = False,
    ) -> None:
        self.invoke = invoke
        self.period_seconds = period_seconds
        self.shard_count = shard_count
        # Fire the current period at once (as a deploy mid-period would see its first firing late),
        # instead of waiting for the next boundary.
        self.start_now = start_now
        self.fired = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-schedule", daemon=True)

    def start(self) -> LocalSchedule:
        """Start firing at the next period boundary."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop firing (an invocation in progress finishes first)."""
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self) -> LocalSchedule:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        period = self.period_seconds
        at = (time.time() // period + (0 if self.start_now else 1)) * period
        while not self._stop.wait(max(0.0, at - time.time())):
            for shard in range(self.shard_count):
                self.fired += 1
                # Recorded by LocalFunction; Scheduler does not retry (template.yaml: 0 retries).
                with contextlib.suppress(Exception):
                    self.invoke(scheduled_event(at, shard))
            at += period
