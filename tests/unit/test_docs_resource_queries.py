"""docs/rules.md "Default queries of Resource metrics" says exactly what the code runs.

Every PromQL block of the section is the query ``ampscaler.resource_queries`` builds for the case
the text describes, every YAML example parses as a rule metric and builds the query shown after
it, and the settings table matches Settings and template.yaml. The queries themselves run against
a real Prometheus in tests/integration/test_resource_queries.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ampscaler.resource_queries import default_query, resource_query
from ampscaler.rule import parse_rule
from ampscaler.settings import RESOURCE_SERIES_ENV, Settings

ROOT = Path(__file__).resolve().parents[2]
PODS = ["web-1", "web-2"]


def section() -> str:
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    start = text.index("### Default queries of Resource metrics")
    end = text.index("\n### ", start + 1)
    return text[start:end]


def blocks(kind: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"```{kind}\n(.*?)```", section(), re.S)]


def metric_of(block: str) -> Any:
    doc = {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "web"},
        "maxReplicas": 10,
        "metrics": yaml.safe_load(block)["metrics"],
    }
    return parse_rule(doc).metrics[0]


def test_documented_default_queries_are_the_built_ones() -> None:
    promql = blocks("promql")
    assert promql[:3] == [
        default_query("cpu", "shop", PODS),
        default_query("memory", "shop", PODS),
        default_query("cpu", "shop", PODS, container="app"),
    ]


def test_documented_relabelled_rule_builds_the_documented_query() -> None:
    relabelled, own = blocks("yaml")
    assert resource_query(metric_of(relabelled), "shop", PODS).query == blocks("promql")[3]
    spec = metric_of(own)
    assert resource_query(spec, "shop", PODS).query == spec.query
    assert "namespace_pod:cpu_usage_cores:rate3m" in spec.query


def test_documented_settings_table_matches_settings_and_template() -> None:
    rows = re.findall(r"^\| `(\w+)` \| `(RESOURCE_\w+)` \| `([^`]+)`", section(), re.M)
    assert {env for _, env, _ in rows} == set(RESOURCE_SERIES_ENV)
    defaults = Settings().resource_series
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    for parameter, env, default in rows:
        assert str(getattr(defaults, RESOURCE_SERIES_ENV[env])) == default
        assert re.search(
            rf"^  {parameter}:\n(?:    .*\n)*?    Default: {re.escape(default)}\n", template, re.M
        ), parameter
        assert f"{env}: !Ref {parameter}" in template
