"""Numbers at and beyond the validated ranges: the engine answers with metric errors, never exceptions."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ampscaler.contract import DecideInputError, decide_document, decision_to_dict, dumps
from ampscaler.engine.decide import decide
from ampscaler.engine.proposals import MAX_OBSERVATION
from ampscaler.engine.types import MetricObservation, Observation, PodInfo, ScaleObservation
from ampscaler.model import Rule
from ampscaler.policy import MAX_INT32, REPLAY_POLICY
from ampscaler.rule import MAX_NUMBER, MIN_TARGET, ErrorList, build_rule

NOW = 1_700_000_000.0


def rule_doc(pods_target: float = 10.0, external_target: float = 40.0, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": "c", "namespace": "shop", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 1000,
        "metrics": [
            {
                "name": "rps",
                "type": "Pods",
                "query": "sum by (pod) (x)",
                "target": {"type": "AverageValue", "averageValue": pods_target},
            },
            {
                "name": "q",
                "type": "External",
                "query": "sum(q)",
                "target": {"type": "Value", "value": external_target},
            },
        ],
    }
    doc.update(overrides)
    return doc


def parsed(doc: dict[str, Any]) -> Rule:
    errors = ErrorList()
    rule = build_rule(doc, errors, policy=REPLAY_POLICY)
    assert rule is not None, errors.items
    return rule


def observe(pod_values: dict[str, float], value: float, replicas: int = 3) -> Observation:
    return Observation(
        scale=ScaleObservation(replicas, replicas),
        metrics=(MetricObservation("rps", pod_values=pod_values), MetricObservation("q", value=value)),
        pods=tuple(PodInfo(name) for name in pod_values),
    )


@pytest.mark.parametrize(
    ("value", "error"),
    [
        pytest.param(
            2e305, "unable to get external metric q: value 2e+305 is beyond the supported", id="2e305"
        ),
        pytest.param(-1.7e308, "value -1.7e+308 is beyond the supported magnitude 1e+300", id="neg-max"),
        pytest.param(math.inf, "value is not a finite number (inf)", id="inf"),
        pytest.param(math.nan, "value is not a finite number (nan)", id="nan"),
    ],
)
def test_decide_out_of_range_external_value_is_a_metric_error(value: float, error: str) -> None:
    # Before: a value above ~1.8e305 overflowed to inf in milli-units and raised OverflowError.
    rule = parsed(rule_doc(external_target=MIN_TARGET))
    decision = decide(rule, observe({"a": 1.0, "b": 1.0, "c": 1.0}, value), None, NOW)
    result = decision.metrics[1]
    assert (result.valid, result.proposal) == (False, None)
    assert result.error is not None and error in result.error
    dumps(decision_to_dict(decision))


def test_decide_out_of_range_pod_value_invalidates_the_pods_metric() -> None:
    rule = parsed(rule_doc(pods_target=MIN_TARGET))
    decision = decide(rule, observe({"a": 1.0, "b": 1e301, "c": 1.0}, 1.0), None, NOW)
    result = decision.metrics[0]
    assert not result.valid
    assert (
        result.error
        == "unable to get metric rps: pod b reported 1e+301, beyond the supported magnitude 1e+300"
    )


def test_decide_at_the_extremes_of_every_range_computes() -> None:
    # The smallest target against the largest observation, and the largest target against the smallest.
    tiny = parsed(rule_doc(pods_target=MIN_TARGET, external_target=MIN_TARGET))
    huge = parsed(rule_doc(pods_target=MAX_NUMBER, external_target=MAX_NUMBER))
    for rule, value in ((tiny, MAX_OBSERVATION), (huge, 5e-324), (tiny, -MAX_OBSERVATION)):
        decision = decide(rule, observe({"a": value, "b": value, "c": value}, value), None, NOW)
        assert 0 <= decision.desired_replicas <= rule.max_replicas
        dumps(decision_to_dict(decision))


# --------------------------------------------------------------------------- properties


def bounded_number(low: float, high: float) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([low, high]), st.floats(low, high, allow_nan=False))


@st.composite
def valid_rule_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Rule documents whose every number is drawn across (and at the edges of) its validated range."""
    max_replicas = draw(st.integers(1, MAX_INT32))
    min_replicas = draw(st.integers(0, max_replicas))
    policy = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Pods", "Percent"]),
            "value": st.integers(1, 10_000),
            "periodSeconds": st.integers(1, 1800),
        }
    )
    direction = st.fixed_dictionaries(
        {},
        optional={
            "stabilizationWindowSeconds": st.integers(0, 3600),
            "selectPolicy": st.sampled_from(["Max", "Min", "Disabled"]),
            "policies": st.lists(policy, min_size=1, max_size=3),
            "tolerance": bounded_number(0.0, 0.999999),
        },
    )
    doc = rule_doc(
        pods_target=draw(bounded_number(MIN_TARGET, MAX_NUMBER)),
        external_target=draw(bounded_number(MIN_TARGET, MAX_NUMBER)),
        minReplicas=min_replicas,
        maxReplicas=max_replicas,
    )
    doc["metrics"][1]["type"] = draw(st.sampled_from(["External", "Object"]))
    doc["metrics"][1]["target"] = draw(
        st.sampled_from(
            [
                {"type": "Value", "value": doc["metrics"][1]["target"]["value"]},
                {"type": "AverageValue", "averageValue": doc["metrics"][1]["target"]["value"]},
            ]
        )
    )
    doc["metrics"][1]["activationThreshold"] = draw(bounded_number(0.0, MAX_NUMBER))
    if draw(st.booleans()):
        doc["behavior"] = draw(
            st.fixed_dictionaries({}, optional={"scaleUp": direction, "scaleDown": direction})
        )
    if draw(st.booleans()):
        doc["tolerance"] = draw(bounded_number(0.0, 0.999999))
    if draw(st.booleans()):
        doc["fallback"] = {
            "failureThreshold": draw(st.integers(1, 10_000)),
            "replicas": draw(st.integers(0, MAX_INT32)),
            "behavior": draw(
                st.sampled_from(
                    ["static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"]
                )
            ),
        }
    return doc


any_float = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(
    valid_rule_documents(),
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), any_float, max_size=4),
    any_float,
    st.integers(0, MAX_INT32),
    st.integers(0, MAX_INT32),
)
def test_engine_never_raises_for_a_valid_rule_and_any_observation(
    doc: dict[str, Any], pod_values: dict[str, float], value: float, spec: int, status: int
) -> None:
    rule = parsed(doc)
    observation = Observation(
        scale=ScaleObservation(spec, status),
        metrics=(MetricObservation("rps", pod_values=pod_values), MetricObservation("q", value=value)),
        pods=tuple(PodInfo(name) for name in sorted(pod_values)),
    )
    first = decide(rule, observation, None, NOW)
    second = decide(rule, observation, first.state, NOW + 15)
    for decision in (first, second):
        assert decision.desired_replicas >= 0
        # The tick logs every decision through dumps, which refuses NaN/Infinity.
        dumps(decision_to_dict(decision))


json_number = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**330),
)


@settings(max_examples=300, deadline=None)
@given(valid_rule_documents(), json_number, json_number, json_number, json_number, json_number)
def test_decide_document_answers_or_refuses_any_json_numbers(
    doc: dict[str, Any], pod: Any, value: Any, spec: Any, now: Any, window: Any
) -> None:
    document = {
        "rule": doc,
        "now": now,
        "scale": {"specReplicas": spec, "statusReplicas": 3},
        "pods": [{"name": "a"}],
        "metrics": [{"name": "rps", "podValues": {"a": pod}}, {"name": "q", "value": value}],
        "controller": {"downscaleStabilizationSeconds": window},
    }
    try:
        output = decide_document(document)
    except DecideInputError as exc:
        assert exc.errors
        return
    dumps(output)
