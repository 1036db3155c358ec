"""One evaluation path: typed input in, decision and documents out, and the documents replay.

The tick, ``explain`` and the backtest build a ``DecideInput`` from what they observed and call
``contract.evaluate``; nothing on that path serialises and re-parses. Replay fidelity is proven
here instead, over random rules, observations, states and controller flags:
``parse(serialise(x)) == x`` and ``decide(parse(logged input)) == logged output``, byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ampscaler import contract
from ampscaler.engine.types import (
    ContainerInfo,
    ControllerConfig,
    EngineState,
    MetricObservation,
    Observation,
    PodInfo,
    ScaleObservation,
)
from ampscaler.model import Rule
from ampscaler.policy import REPLAY_POLICY
from ampscaler.rule import ErrorList, build_rule, rule_to_document
from tests.unit.engine.test_properties import NOW, scenarios

controllers = st.builds(
    ControllerConfig,
    tolerance=st.floats(0, 0.5),
    downscale_stabilization_seconds=st.integers(0, 3600),
    scale_up_limit_factor=st.floats(1, 4),
    scale_up_limit_minimum=st.floats(1, 8),
)


def typed_input(
    scenario: tuple[Rule, Observation, EngineState | None], controller: ControllerConfig, now: float
) -> contract.DecideInput:
    r, obs, state = scenario
    # The engine strategies also draw rules the loader refuses (minReplicas 0 with only a Pods
    # metric); those never reach an evaluation.
    errors = ErrorList()
    build_rule(rule_to_document(r), errors, path="rule", default_cluster="", policy=REPLAY_POLICY)
    assume(not errors)
    return contract.build_decide_input(r, now, obs.scale, obs.pods, obs.metrics, state, controller)


@settings(max_examples=300, deadline=None)
@given(scenarios(), controllers, st.floats(NOW, NOW + 86_400))
def test_decide_input_round_trips_through_its_document(
    scenario: tuple[Rule, Observation, EngineState | None], controller: ControllerConfig, now: float
) -> None:
    value = typed_input(scenario, controller, now)
    document = contract.decide_input_to_dict(value)
    assert contract.parse_decide_input(document) == value
    # Through JSON text too, as the log carries it.
    assert contract.parse_decide_input(json.loads(contract.dumps(document))) == value


@settings(max_examples=300, deadline=None)
@given(scenarios(), controllers, st.floats(NOW, NOW + 86_400))
def test_logged_input_replays_to_the_logged_output_byte_for_byte(
    scenario: tuple[Rule, Observation, EngineState | None], controller: ControllerConfig, now: float
) -> None:
    evaluation = contract.evaluate(typed_input(scenario, controller, now))
    logged_input = contract.dumps(evaluation.input_document)
    logged_output = contract.dumps(evaluation.output_document)

    assert contract.dumps(contract.decide_document(json.loads(logged_input))) == logged_output


RPS = {
    "name": "rps",
    "type": "Pods",
    "query": "sum by (pod) (rate(http_requests_total[1m]))",
    "target": {"type": "AverageValue", "averageValue": 10},
}
LAG = {"name": "lag", "type": "External", "query": "sum(kafka_lag)", "target": {"type": "Value", "value": 1}}


def web_input(
    metrics: list[dict[str, Any]], observed: list[dict[str, Any]], **extra: Any
) -> contract.DecideInput:
    """The parsed decide input of a shop/web rule with ``metrics``, 2 replicas, ``observed`` values."""
    rule = {
        "apiVersion": "ampscaler/v1",
        "target": {"namespace": "shop", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 10,
        "metrics": metrics,
    }
    scale = {"specReplicas": 2, "statusReplicas": 2}
    return contract.parse_decide_input(
        {"rule": rule, "now": NOW, "scale": scale, "metrics": observed, **extra}
    )


def test_build_decide_input_makes_observed_numbers_floats_as_the_parser_does() -> None:
    # An adapter may hand over ints (a Prometheus "3" parses to 3.0, but a test double or a
    # backtest may not); the typed input is what the parser would give for the logged document.
    parsed = web_input(
        [RPS, LAG],
        [{"name": "rps", "podValues": {"a": 1, "b": 2}}, {"name": "lag", "value": 3}],
        pods=[{"name": "a"}, {"name": "b"}],
    )
    value = contract.build_decide_input(
        parsed.rule,
        int(NOW),
        parsed.observation.scale,
        parsed.observation.pods,
        (MetricObservation("rps", pod_values={"a": 1, "b": 2}), MetricObservation("lag", value=3)),
        None,
    )
    assert value == parsed
    rps, lag = value.observation.metrics
    assert rps.pod_values is not None and all(type(v) is float for v in rps.pod_values.values())
    assert type(lag.value) is float and type(value.now) is float
    assert contract.dumps(contract.decide_input_to_dict(value)) == contract.dumps(
        contract.decide_input_to_dict(parsed)
    )


def test_evaluation_serialises_only_when_asked() -> None:
    # A steady tick logs a compact entry: the documents are built for the full record only.
    value = web_input([LAG], [{"name": "lag", "value": 3.0}])
    evaluation = contract.evaluate(value)
    # 3/1 proposes 6; the legacy scale-up limit max(2 x 2, 4) holds it at 4.
    assert evaluation.decision.desired_replicas == 4
    assert "input_document" not in vars(evaluation) and "output_document" not in vars(evaluation)
    first = evaluation.input_document
    assert evaluation.input_document is first and "input_document" in vars(evaluation)
    assert evaluation.output_document["desiredReplicas"] == 4


def test_build_decide_input_makes_pod_times_and_requests_floats_and_keeps_float_pods_as_they_are() -> None:
    listed = PodInfo(
        "a",
        start_time=1.5,
        ready_transition_time=2.5,
        requests={"cpu": 0.5},
        containers=(ContainerInfo("app", {"cpu": 0.5}),),
    )
    handed = PodInfo(
        "b",
        start_time=1,
        ready_transition_time=2,
        requests={"cpu": 1},
        containers=(ContainerInfo("app", {"cpu": 1}),),
    )
    value = contract.build_decide_input(
        web_input([LAG], [{"name": "lag", "value": 3.0}]).rule,
        NOW,
        ScaleObservation(2, 2),
        [listed, handed],
        (lag := MetricObservation("lag", value=3.0),),
        None,
    )
    assert value.observation.metrics[0] is lag
    assert value.observation.pods is not None
    kept, converted = value.observation.pods
    assert kept is listed
    assert converted == handed
    assert type(converted.start_time) is float and type(converted.ready_transition_time) is float
    assert type(converted.requests["cpu"]) is float
    assert type(converted.containers[0].requests["cpu"]) is float
