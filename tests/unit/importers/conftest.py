"""Adapter configurations for the importer tests."""

from __future__ import annotations

import pytest

from ampscaler.importers import AdapterConfig, load_adapter_config
from tests.unit.importers.support import fixture_text


@pytest.fixture
def configmap_adapter() -> AdapterConfig:
    return load_adapter_config(fixture_text("adapter-configmap.yaml"))


@pytest.fixture
def bare_adapter() -> AdapterConfig:
    return load_adapter_config(fixture_text("adapter-bare.yaml"))
