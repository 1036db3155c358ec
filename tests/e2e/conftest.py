"""Fixtures for whole ticks through the real Lambda handlers against devstack.stack.LocalStack."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

# The handler loader, context and log parsing live in devstack so make demo and bench/ share them;
# re-exported here for the e2e tests.
from devstack.lambda_runtime import LambdaContext, load_handler, log_records
from devstack.stack import LocalStack

__all__ = ["LambdaContext", "load_handler", "log_records"]


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
    local_stack.create_slot_queue()

    def apply(**overrides: str) -> dict[str, str]:
        env = local_stack.env(**overrides)
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env

    return apply
