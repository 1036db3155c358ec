"""The published JSON Schema and the parser share one source: field names and bounds cannot drift apart."""

from __future__ import annotations

from typing import Any

import pytest

from ampscaler import rule
from ampscaler.rule import (
    BEHAVIOR_FIELDS,
    FALLBACK_FIELDS,
    METRIC_FIELDS,
    METRIC_TARGET_FIELDS,
    POLICY_FIELDS,
    PROMETHEUS_FIELDS,
    ROOT_FIELDS,
    RULE_SCHEMA,
    SCALING_RULES_FIELDS,
    TARGET_REF_FIELDS,
)

PROPS = RULE_SCHEMA["properties"]
SCALE_UP = PROPS["behavior"]["properties"]["scaleUp"]


@pytest.mark.parametrize(
    ("schema", "fields"),
    [
        pytest.param(RULE_SCHEMA, ROOT_FIELDS, id="root"),
        pytest.param(PROPS["target"], TARGET_REF_FIELDS, id="target"),
        pytest.param(PROPS["metrics"]["items"], METRIC_FIELDS, id="metric"),
        pytest.param(
            PROPS["metrics"]["items"]["properties"]["target"], METRIC_TARGET_FIELDS, id="metric-target"
        ),
        pytest.param(
            PROPS["metrics"]["items"]["properties"]["resource"], rule.RESOURCE_SOURCE_FIELDS, id="resource"
        ),
        pytest.param(
            PROPS["metrics"]["items"]["properties"]["containerResource"],
            rule.CONTAINER_RESOURCE_SOURCE_FIELDS,
            id="container-resource",
        ),
        pytest.param(
            PROPS["metrics"]["items"]["properties"]["resource"]["properties"]["target"],
            rule.RESOURCE_TARGET_FIELDS,
            id="resource-target",
        ),
        pytest.param(PROPS["metrics"]["items"]["properties"]["series"], rule.SERIES_FIELDS, id="series"),
        pytest.param(PROPS["behavior"], BEHAVIOR_FIELDS, id="behavior"),
        pytest.param(SCALE_UP, SCALING_RULES_FIELDS, id="scaling-rules"),
        pytest.param(SCALE_UP["properties"]["policies"]["items"], POLICY_FIELDS, id="policy"),
        pytest.param(PROPS["fallback"], FALLBACK_FIELDS, id="fallback"),
        pytest.param(PROPS["prometheus"], PROMETHEUS_FIELDS, id="prometheus"),
    ],
)
def test_schema_objects_list_exactly_the_parsers_fields(
    schema: dict[str, Any], fields: tuple[str, ...]
) -> None:
    assert schema["additionalProperties"] is False
    assert sorted(schema["properties"]) == sorted(fields)


@pytest.mark.parametrize(
    ("schema", "minimum", "maximum"),
    [
        (
            PROPS["metrics"]["items"]["properties"]["target"]["properties"]["value"],
            rule.MIN_TARGET,
            rule.MAX_NUMBER,
        ),
        (PROPS["cooldownPeriodSeconds"], 0, rule.MAX_COOLDOWN_PERIOD_SECONDS),
        (PROPS["evaluationIntervalSeconds"], 1, rule.MAX_EVALUATION_INTERVAL_SECONDS),
        (PROPS["fallback"]["properties"]["failureThreshold"], 1, rule.MAX_FAILURE_THRESHOLD),
        (SCALE_UP["properties"]["stabilizationWindowSeconds"], 0, rule.MAX_STABILIZATION_WINDOW_SECONDS),
        (
            SCALE_UP["properties"]["policies"]["items"]["properties"]["periodSeconds"],
            1,
            rule.MAX_PERIOD_SECONDS,
        ),
        (SCALE_UP["properties"]["policies"]["items"]["properties"]["value"], 1, rule.MAX_PERCENT),
    ],
)
def test_schema_bounds_are_the_parsers_constants(
    schema: dict[str, Any], minimum: float, maximum: float
) -> None:
    assert (schema["minimum"], schema["maximum"]) == (minimum, maximum)


def test_rule_package_exports_what_callers_import() -> None:
    for name in rule.__all__:
        assert getattr(rule, name) is not None
