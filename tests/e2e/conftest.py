"""Fixtures for whole ticks through the real Lambda handlers against devstack.stack.LocalStack."""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from devstack.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
_module_ids = itertools.count()


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that the handlers and Powertools read."""

    aws_request_id: str
    remaining_millis: int = 60_000
    function_name: str = "ampscaler-ScalerFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ampscaler-ScalerFunction"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


def load_handler(function: str, service: str = "ampscaler") -> ModuleType:
    """Import ``functions/<function>/app.py`` fresh, as Lambda's runtime would on a cold start."""
    # Powertools configures the stdlib logger of the service once per process and binds its
    # handler to the sys.stdout of that moment; a fresh "cold start" must write to this test's.
    for handler in logging.getLogger(service).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stdout  # setStream would flush the closed old stream
    path = ROOT / "functions" / function / "app.py"
    name = f"_e2e_{function}_app_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def log_records(text: str) -> list[dict[str, Any]]:
    """Every JSON line of captured stdout (Powertools log records and EMF blobs)."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """Prometheus + SigV4 proxy, moto server and the kube simulator, for the whole e2e session."""
    with LocalStack() as stack:
        yield stack


@pytest.fixture
def stack_env(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, str]]:
    """Apply the stack's function environment (plus overrides) with monkeypatch; moto state is reset."""
    local_stack.moto.reset()
    local_stack.create_state_table()

    def apply(**overrides: str) -> dict[str, str]:
        env = local_stack.env(**overrides)
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env

    return apply
