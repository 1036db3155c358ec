"""The decide contract codec: input parsing with paths, output shape and canonical JSON, round trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing

from ampscaler.contract import (
    OUTPUT_FIELDS,
    DecideInput,
    DecideInputError,
    decide_document,
    decide_input_to_dict,
    decision_to_dict,
    dumps,
    parse_decide_input,
    state_from_dict,
    state_to_dict,
)
from ampscaler.engine.types import (
    Condition,
    ControllerConfig,
    Decision,
    EngineState,
    MetricObservation,
    MetricResult,
    Observation,
    PodInfo,
    Recommendation,
    ScaleEvent,
)
from ampscaler.model import Rule
from ampscaler.rule import RULE_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
DECIDE_SCHEMA = json.loads((ROOT / "docs" / "decide.schema.json").read_text(encoding="utf-8"))
REGISTRY: referencing.Registry[Any] = referencing.Registry().with_resources(
    [
        ("urn:ampscaler:rule:v1", referencing.Resource.from_contents(RULE_SCHEMA)),
        ("urn:ampscaler:decide:v1", referencing.Resource.from_contents(DECIDE_SCHEMA)),
    ]
)


def schema_errors(doc: Any, definition: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"urn:ampscaler:decide:v1#/$defs/{definition}"}, registry=REGISTRY
    )
    return [e.message for e in validator.iter_errors(doc)]


def issue_input() -> dict[str, Any]:
    """The input example of the issue, with a rule that has the three metrics it observes."""
    return {
        "rule": {
            "apiVersion": "ampscaler/v1",
            "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "frontend"},
            "minReplicas": 2,
            "maxReplicas": 20,
            "metrics": [
                {
                    "name": "rps",
                    "type": "Pods",
                    "query": "sum by (pod) (rate(http_requests_total[2m]))",
                    "target": {"type": "AverageValue", "averageValue": 15},
                },
                {
                    "name": "backlog",
                    "type": "External",
                    "query": "sum(q)",
                    "target": {"type": "Value", "value": 40},
                },
                {
                    "name": "lat",
                    "type": "Object",
                    "query": "max(l)",
                    "target": {"type": "Value", "value": 0.2},
                },
            ],
        },
        "now": 1700000000.0,
        "scale": {"specReplicas": 3, "statusReplicas": 3},
        "pods": [{"name": "p0", "phase": "Running", "ready": True, "deleting": False}],
        "metrics": [
            {"name": "rps", "podValues": {"p0": 20.0}},
            {"name": "backlog", "value": 50.0},
            {"name": "lat", "error": "query timed out"},
        ],
        "state": None,
        "controller": {
            "tolerance": 0.1,
            "downscaleStabilizationSeconds": 300,
            "scaleUpLimitFactor": 2.0,
            "scaleUpLimitMinimum": 4.0,
        },
    }


def input_errors(doc: Any) -> list[str]:
    with pytest.raises(DecideInputError) as info:
        parse_decide_input(doc)
    return info.value.errors


def test_parse_decide_input_issue_example() -> None:
    value = parse_decide_input(issue_input())
    assert value.now == 1700000000.0
    assert value.state is None
    assert value.controller == ControllerConfig()
    assert value.observation.scale.spec_replicas == 3
    assert value.observation.pods == (PodInfo("p0"),)
    assert value.observation.metrics == (
        MetricObservation("rps", pod_values={"p0": 20.0}),
        MetricObservation("backlog", value=50.0),
        MetricObservation("lat", error="query timed out"),
    )
    assert value.rule.name == "prod/shop/frontend"
    assert schema_errors(issue_input(), "input") == []


def test_parse_decide_input_defaults_controller_and_pod_fields() -> None:
    doc = issue_input()
    del doc["controller"]
    doc["pods"] = [{"name": "p0"}, {"name": "p1", "phase": "Pending", "ready": False}]
    value = parse_decide_input(doc)
    assert value.controller == ControllerConfig()
    assert value.observation.pods == (PodInfo("p0"), PodInfo("p1", phase="Pending", ready=False))


def test_parse_decide_input_pods_optional_without_pods_metrics() -> None:
    doc = issue_input()
    doc["rule"]["metrics"] = doc["rule"]["metrics"][1:]
    doc["metrics"] = doc["metrics"][1:]
    del doc["pods"]
    assert parse_decide_input(doc).observation.pods is None


def test_parse_decide_input_rule_may_omit_cluster() -> None:
    doc = issue_input()
    del doc["rule"]["target"]["cluster"]
    assert parse_decide_input(doc).rule.target.cluster == ""


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: d["rule"]["metrics"][0]["target"].update(averageValue=-3),
            ["rule.metrics[0].target.averageValue: must be a positive number, got -3"],
            id="rule-errors-are-prefixed",
        ),
        pytest.param(
            lambda d: d.pop("now"),
            ["now: required (unix seconds of the evaluation, e.g. 1700000000.0)"],
            id="now-missing",
        ),
        pytest.param(
            lambda d: d.pop("pods"),
            ["pods: required when the rule has a Pods metric (list the pods the target selects)"],
            id="pods-needed",
        ),
        pytest.param(
            lambda d: d["metrics"][1].update(name="backlgo"),
            [
                'metrics[1].name: the rule has no metric "backlgo" (rule metrics: rps, backlog, lat)',
                'metrics: no observation for rule metric "backlog" '
                '(add {"name": "backlog", "error": "..."} if its query failed)',
            ],
            id="unknown-metric-and-missing-observation",
        ),
        pytest.param(
            lambda d: d["metrics"][0].update(value=3.0),
            ["metrics[0]: must set exactly one of value, podValues or error (got value, podValues)"],
            id="two-kinds-of-value",
        ),
        pytest.param(
            lambda d: d["metrics"].__setitem__(0, {"name": "rps", "value": 3.0}),
            ["metrics[0].value: a Pods metric is observed as podValues (use podValues)"],
            id="pods-metric-given-a-value",
        ),
        pytest.param(
            lambda d: d["metrics"][0]["podValues"].update(p1="x"),
            ['metrics[0].podValues.p1: must be a number, got "x"'],
            id="pod-value-not-a-number",
        ),
        pytest.param(
            lambda d: d["metrics"][1].update(value=float("nan")),
            ["metrics[1].value: must be a number, got NaN"],
            id="nan-value",
        ),
        pytest.param(
            lambda d: d["pods"].append({"name": "p0", "phase": "Done"}),
            [
                'pods[1].phase: must be one of Pending, Running, Succeeded, Failed, Unknown, got "Done"',
                'pods[1].name: duplicate pod "p0" (already listed at pods[0])',
            ],
            id="bad-pods",
        ),
        pytest.param(
            lambda d: d.update(scale={"specReplicas": -1}),
            [
                "scale.statusReplicas: required",
                "scale.specReplicas: must be between 0 and 2147483647, got -1",
            ],
            id="bad-scale",
        ),
        pytest.param(
            lambda d: d.update(
                state={"recommendations": [{"time": 1, "replica": 3}], "consecutiveFailures": -1}
            ),
            [
                'state.recommendations[0].replica: unknown field (did you mean "replicas"?)',
                "state.recommendations[0].replicas: required",
                "state.consecutiveFailures: must be between 0 and 2147483647, got -1",
            ],
            id="bad-state",
        ),
        pytest.param(
            lambda d: d["controller"].update(tolerance=-1, flag=1),
            [
                "controller.flag: unknown field (expected one of: tolerance, downscaleStabilizationSeconds, "
                "scaleUpLimitFactor, scaleUpLimitMinimum, cpuInitializationPeriodSeconds, "
                "initialReadinessDelaySeconds)",
                "controller.tolerance: must be >= 0 and < 1, got -1",
            ],
            id="bad-controller",
        ),
        pytest.param(
            lambda d: d.update(extra=1),
            ["extra: unknown field (expected one of: rule, now, scale, pods, metrics, state, controller)"],
            id="unknown-top-level",
        ),
    ],
)
def test_parse_decide_input_errors_have_paths(mutate: Any, expected: list[str]) -> None:
    doc = issue_input()
    mutate(doc)
    assert input_errors(doc) == expected


def test_parse_decide_input_non_object() -> None:
    assert input_errors([]) == ["(document): must be an object, got array"]


def test_state_round_trip_and_defaults() -> None:
    state = EngineState(
        recommendations=(Recommendation(1700000000.0, 3), Recommendation(1700000015.5, 4)),
        scale_up_events=(ScaleEvent(1700000015.5, 1),),
        scale_down_events=(),
        consecutive_failures=2,
        below_activation_since=1699999000.0,
    )
    assert state_from_dict(state_to_dict(state)) == state
    assert state_from_dict({}) == EngineState()
    assert state_to_dict(EngineState()) == {
        "recommendations": [],
        "scaleUpEvents": [],
        "scaleDownEvents": [],
        "consecutiveFailures": 0,
        "belowActivationSince": None,
    }


def sample_decision(**overrides: Any) -> Decision:
    values: dict[str, Any] = {
        "desired_replicas": 4,
        "current_replicas": 3,
        "action": "scale",
        "reason": "pods metric rps above target",
        "metrics": (
            MetricResult("rps", current=20, target=15, proposal=4, valid=True),
            MetricResult(
                "lat", current=None, target=0.2, proposal=None, valid=False, error="query timed out"
            ),
        ),
        "conditions": (Condition("ScalingLimited", False, "DesiredWithinRange", "within range"),),
        "state": EngineState(recommendations=(Recommendation(1700000000, 4),)),
    }
    values.update(overrides)
    return Decision(**values)


def test_decision_to_dict_shape_order_and_types() -> None:
    out = decision_to_dict(sample_decision(), "dryRun")
    assert tuple(out) == OUTPUT_FIELDS
    assert out["metrics"] == [
        {"name": "rps", "current": 20.0, "target": 15.0, "proposal": 4, "valid": True},
        {
            "name": "lat",
            "current": None,
            "target": 0.2,
            "proposal": None,
            "valid": False,
            "error": "query timed out",
        },
    ]
    # Ints from the engine become floats where the contract says number, so the bytes are stable.
    assert dumps(out["metrics"][0]) == '{"name":"rps","current":20.0,"target":15.0,"proposal":4,"valid":true}'
    assert out["conditions"] == [
        {"type": "ScalingLimited", "status": False, "reason": "DesiredWithinRange", "message": "within range"}
    ]
    assert out["state"]["recommendations"] == [{"time": 1700000000.0, "replicas": 4}]
    assert out["mode"] == "dryRun" and out["fallbackActive"] is False
    assert schema_errors(out, "output") == []


def test_decision_to_dict_mode_falls_back_to_engine_extra() -> None:
    assert decision_to_dict(sample_decision(extra={"mode": "paused"}))["mode"] == "paused"
    assert decision_to_dict(sample_decision())["mode"] == "active"


def test_dumps_is_canonical() -> None:
    assert dumps({"b": 0.1, "a": [1, 2.5e-07, None, True], "é": "ü"}) == (
        '{"b":0.1,"a":[1,2.5e-07,null,true],"\\u00e9":"\\u00fc"}'
    )
    with pytest.raises(ValueError):
        dumps({"x": float("inf")})


def test_decide_input_to_dict_round_trips() -> None:
    value = parse_decide_input(issue_input())
    doc = decide_input_to_dict(value)
    assert parse_decide_input(doc) == value
    assert parse_decide_input(json.loads(dumps(doc))) == value
    assert schema_errors(doc, "input") == []


def test_decide_document_passes_the_parsed_values_to_the_engine() -> None:
    seen: list[tuple[Rule, Observation, EngineState | None, float, ControllerConfig]] = []

    def engine(
        rule: Rule,
        observation: Observation,
        state: EngineState | None,
        now: float,
        controller: ControllerConfig,
    ) -> Decision:
        seen.append((rule, observation, state, now, controller))
        return sample_decision()

    doc = issue_input()
    doc["rule"]["paused"] = True
    out = decide_document(doc, engine=engine)
    expected = parse_decide_input(doc)
    assert seen == [(expected.rule, expected.observation, None, 1700000000.0, ControllerConfig())]
    assert out["mode"] == "paused"


def test_decide_document_with_the_engine_is_deterministic_and_schema_valid() -> None:
    first = dumps(decide_document(issue_input()))
    assert first == dumps(decide_document(issue_input()))
    out = json.loads(first)
    assert schema_errors(out, "output") == []
    assert out["currentReplicas"] == 3


def test_decide_input_dataclass_default_controller() -> None:
    value = parse_decide_input(issue_input())
    assert DecideInput(value.rule, value.observation, None, 1.0).controller == ControllerConfig()
