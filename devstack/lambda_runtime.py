"""Run the real Lambda handlers in-process as Lambda's Python runtime would: fresh import, context, log capture.

The e2e tests, ``make demo`` and bench/ all load ``functions/<name>/app.py`` through ``load_handler``
and read what the function logged with ``log_records``, so no caller carries its own copy.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import logging
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
_module_ids = itertools.count()


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that the handlers and Powertools read."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_millis: int = 60_000
    function_name: str = "ampscaler-ScalerFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ampscaler-ScalerFunction"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left in the invocation (fixed: the local run has no real deadline)."""
        return self.remaining_millis


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
