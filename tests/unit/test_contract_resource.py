"""The decide contract for Resource and ContainerResource metrics: pod times and requests, sample
timestamp and window, CPU controller flags, averageValue; round trips and byte-for-byte replay."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
from hypothesis import given, settings
from hypothesis import strategies as st

from ampscaler.contract import (
    DecideInput,
    DecideInputError,
    decide_document,
    decide_input_to_dict,
    dumps,
    parse_decide_input,
)
from ampscaler.engine.types import (
    ContainerInfo,
    ControllerConfig,
    MetricObservation,
    Observation,
    PodInfo,
    ScaleObservation,
)
from ampscaler.rule import RULE_SCHEMA, parse_rule

ROOT = Path(__file__).resolve().parents[2]
DECIDE_SCHEMA = json.loads((ROOT / "docs" / "decide.schema.json").read_text(encoding="utf-8"))
REGISTRY: referencing.Registry[Any] = referencing.Registry().with_resources(
    [
        ("urn:ampscaler:rule:v1", referencing.Resource.from_contents(RULE_SCHEMA)),
        ("urn:ampscaler:decide:v1", referencing.Resource.from_contents(DECIDE_SCHEMA)),
    ]
)
NOW = 1700000000.0

CPU_RULE: dict[str, Any] = {
    "apiVersion": "ampscaler/v1",
    "target": {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "name": "frontend"},
    "maxReplicas": 10,
    "metrics": [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
        },
        {
            "type": "ContainerResource",
            "containerResource": {
                "name": "memory",
                "container": "app",
                "target": {"type": "AverageValue", "averageValue": "512Mi"},
            },
        },
    ],
}


def schema_errors(doc: Any, definition: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"urn:ampscaler:decide:v1#/$defs/{definition}"}, registry=REGISTRY
    )
    return [e.message for e in validator.iter_errors(doc)]


def cpu_input() -> dict[str, Any]:
    """A CPU rule's input in the canonical form ``decide_input_to_dict`` writes."""
    app = {"name": "app", "requests": {"cpu": 0.5, "memory": 536870912.0}}
    proxy = {"name": "proxy", "requests": {"cpu": 0.1, "memory": 67108864.0}}
    pods: list[dict[str, Any]] = [
        {
            "name": name,
            "phase": "Running",
            "ready": True,
            "deleting": False,
            "startTime": NOW - 3600,
            "readyTransitionTime": NOW - 3500,
            "requests": {"cpu": 0.6, "memory": 603979776.0},
            "containers": copy.deepcopy([app, proxy]),
        }
        for name in ("web-0", "web-1")
    ]
    pods.append(
        {
            "name": "web-2",
            "phase": "Pending",
            "ready": False,
            "deleting": False,
            "startTime": None,
            "readyTransitionTime": None,
            "requests": {"cpu": 0.6, "memory": 603979776.0},
            "containers": copy.deepcopy([app, proxy]),
        }
    )
    return {
        "rule": copy.deepcopy(CPU_RULE),
        "now": NOW,
        "scale": {"specReplicas": 3, "statusReplicas": 3},
        "pods": pods,
        "metrics": [
            {
                "name": "cpu",
                "podValues": {"web-0": 0.9, "web-1": 0.6},
                "timestamp": NOW - 20,
                "windowSeconds": 120.0,
            },
            {"name": "memory-app", "podValues": {"web-0": 400e6, "web-1": 300e6}},
        ],
        "state": None,
        "controller": {
            "tolerance": 0.1,
            "downscaleStabilizationSeconds": 300,
            "scaleUpLimitFactor": 2.0,
            "scaleUpLimitMinimum": 4.0,
            "cpuInitializationPeriodSeconds": 300,
            "initialReadinessDelaySeconds": 30,
        },
    }


def input_errors(doc: Any) -> list[str]:
    with pytest.raises(DecideInputError) as info:
        parse_decide_input(doc)
    return info.value.errors


def test_cpu_input_parses_pod_times_requests_containers_and_sample_time() -> None:
    value = parse_decide_input(cpu_input())
    pods = value.observation.pods
    assert pods is not None
    assert pods[0] == PodInfo(
        name="web-0",
        start_time=NOW - 3600,
        ready_transition_time=NOW - 3500,
        requests={"cpu": 0.6, "memory": 603979776.0},
        containers=(
            ContainerInfo("app", {"cpu": 0.5, "memory": 536870912.0}),
            ContainerInfo("proxy", {"cpu": 0.1, "memory": 67108864.0}),
        ),
    )
    assert (pods[2].start_time, pods[2].ready_transition_time) == (None, None)
    assert value.observation.metrics[0] == MetricObservation(
        "cpu", pod_values={"web-0": 0.9, "web-1": 0.6}, timestamp=NOW - 20, window_seconds=120.0
    )
    assert value.controller == ControllerConfig()
    assert schema_errors(cpu_input(), "input") == []


def test_cpu_input_serialises_back_to_the_same_bytes() -> None:
    doc = cpu_input()
    written = decide_input_to_dict(parse_decide_input(doc))
    written["rule"] = doc["rule"]  # the rule is written with every default spelled out
    assert dumps(written) == dumps(doc)


def test_documents_of_rules_without_resource_metrics_keep_their_shape() -> None:
    """Logged inputs of older rules stay byte for byte what they were: no new keys appear."""
    doc = {
        "rule": {
            "apiVersion": "ampscaler/v1",
            "target": {"namespace": "shop", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "metrics": [
                {
                    "name": "rps",
                    "type": "Pods",
                    "query": "sum by (pod) (x)",
                    "target": {"type": "AverageValue", "averageValue": 5},
                }
            ],
        },
        "now": NOW,
        "scale": {"specReplicas": 1, "statusReplicas": 1},
        "pods": [{"name": "p0", "phase": "Running", "ready": True, "deleting": False}],
        "metrics": [{"name": "rps", "podValues": {"p0": 4.0}}],
        "state": None,
        "controller": {
            "tolerance": 0.1,
            "downscaleStabilizationSeconds": 300,
            "scaleUpLimitFactor": 2.0,
            "scaleUpLimitMinimum": 4.0,
        },
    }
    written = decide_input_to_dict(parse_decide_input(doc))
    assert (written["pods"], written["metrics"], written["controller"]) == (
        doc["pods"],
        doc["metrics"],
        doc["controller"],
    )
    output = decide_document(doc)
    assert all("averageValue" not in m for m in output["metrics"])


def test_cpu_decision_replays_byte_for_byte_with_average_value() -> None:
    logged_input = dumps(cpu_input())
    logged_output = dumps(decide_document(json.loads(logged_input)))
    # The replay: parse what was logged, decide again, write with the one serialiser.
    assert dumps(decide_document(json.loads(logged_input))) == logged_output
    output = json.loads(logged_output)
    # 1.5 cores used of 1.2 requested by the two ready pods: 125 % against 60 %.
    assert output["metrics"][0] == {
        "name": "cpu",
        "current": 125.0,
        "target": 60.0,
        "proposal": 5,
        "valid": True,
        "averageValue": 0.75,
    }
    assert "averageValue" not in output["metrics"][1]
    assert output["reason"] == "cpu resource utilization (percentage of request) above target"
    assert schema_errors(output, "output") == []


def test_controller_cpu_flags_are_read_and_change_the_readiness_judgement() -> None:
    doc = cpu_input()
    for pod in doc["pods"][:2]:
        pod["startTime"] = NOW - 200  # inside the default 300 s initialization period
        pod["readyTransitionTime"] = NOW - 150
    doc["metrics"][0]["timestamp"] = NOW - 60  # one 120 s window after readiness has not passed
    invalid = decide_document(doc)["metrics"][0]
    assert invalid["valid"] is False
    assert invalid["error"] == (
        "failed to get cpu utilization: did not receive metrics for targeted pods (pods might be unready)"
    )
    doc["controller"]["cpuInitializationPeriodSeconds"] = 120
    assert parse_decide_input(doc).controller.cpu_initialization_period_seconds == 120
    assert decide_document(doc)["metrics"][0]["valid"] is True


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: d["metrics"][0].pop("timestamp"),
            [
                "metrics[0].timestamp: required for a cpu metric's podValues (unix seconds of the samples)",
            ],
            id="cpu-without-timestamp",
        ),
        pytest.param(
            lambda d: d["metrics"][1].update(timestamp=-1),
            ["metrics[1].timestamp: must be between 0 and 1e+11, got -1"],
            id="negative-timestamp",
        ),
        pytest.param(
            lambda d: d["metrics"].__setitem__(1, {"name": "memory-app", "value": 3.0}),
            ["metrics[1].value: a ContainerResource metric is observed as podValues (use podValues)"],
            id="resource-observed-as-value",
        ),
        pytest.param(
            lambda d: d["metrics"].__setitem__(1, {"name": "memory-app", "error": "x", "windowSeconds": 60}),
            ["metrics[1].windowSeconds: only applies with podValues (remove it)"],
            id="window-without-pod-values",
        ),
        pytest.param(
            lambda d: d.pop("pods"),
            ["pods: required when the rule has a Resource metric (list the pods the target selects)"],
            id="pods-needed",
        ),
        pytest.param(
            lambda d: d["pods"][0]["requests"].update(gpu=1),
            ['pods[0].requests.gpu: unknown field (did you mean "cpu"?)'],
            id="unknown-resource",
        ),
        pytest.param(
            lambda d: d["pods"][0]["containers"][1].update(name="app"),
            [
                'pods[0].containers[1].name: duplicate container "app" (already listed at pods[0].containers[0])'
            ],
            id="duplicate-container",
        ),
        pytest.param(
            lambda d: d["pods"][1].update(startTime="yesterday", requests={"cpu": -1}),
            [
                'pods[1].startTime: must be a number, got "yesterday"',
                "pods[1].requests.cpu: must be between 0 and 1e+15, got -1",
            ],
            id="bad-pod-fields",
        ),
        pytest.param(
            lambda d: d["controller"].update(initialReadinessDelaySeconds=1.5),
            ["controller.initialReadinessDelaySeconds: must be an integer, got 1.5"],
            id="bad-delay",
        ),
    ],
)
def test_bad_resource_inputs_name_the_json_path(mutate: Any, expected: list[str]) -> None:
    doc = cpu_input()
    mutate(doc)
    assert input_errors(doc) == expected


# --------------------------------------------------------------------------- round-trip property

_times = st.one_of(st.none(), st.floats(min_value=0, max_value=1e11, allow_nan=False))
_amounts = st.floats(min_value=0, max_value=1e15, allow_nan=False)
_requests = st.fixed_dictionaries({}, optional={"cpu": _amounts, "memory": _amounts})
_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@st.composite
def _pods(draw: st.DrawFn) -> tuple[PodInfo, ...]:
    names = draw(st.lists(_names, max_size=5, unique=True))
    result = []
    for name in names:
        containers = draw(st.lists(_names, max_size=3, unique=True))
        result.append(
            PodInfo(
                name=name,
                phase=draw(st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"])),
                ready=draw(st.booleans()),
                deleting=draw(st.booleans()),
                start_time=draw(_times),
                ready_transition_time=draw(_times),
                requests=draw(_requests),
                containers=tuple(ContainerInfo(c, draw(_requests)) for c in containers),
            )
        )
    return tuple(result)


@st.composite
def _inputs(draw: st.DrawFn) -> DecideInput:
    pods = draw(_pods())
    names = [p.name for p in pods] + draw(st.lists(_names, max_size=2))
    usage = st.dictionaries(st.sampled_from(names) if names else _names, _amounts, max_size=5)
    cpu = draw(
        st.one_of(
            st.builds(
                lambda values, ts, window: MetricObservation(
                    "cpu", pod_values=values, timestamp=ts, window_seconds=window
                ),
                usage,
                st.floats(min_value=0, max_value=1e11, allow_nan=False),
                st.floats(min_value=0, max_value=1e11, allow_nan=False),
            ),
            st.builds(lambda message: MetricObservation("cpu", error=message), _names),
        )
    )
    memory = draw(
        st.builds(
            lambda values, ts, window: MetricObservation(
                "memory-app", pod_values=values, timestamp=ts, window_seconds=window
            ),
            usage,
            _times,
            _times,
        )
    )
    controller = ControllerConfig(
        cpu_initialization_period_seconds=draw(st.integers(0, 7 * 24 * 3600)),
        initial_readiness_delay_seconds=draw(st.integers(0, 7 * 24 * 3600)),
    )
    return DecideInput(
        rule=parse_rule(CPU_RULE),
        observation=Observation(ScaleObservation(len(pods), len(pods)), (cpu, memory), pods),
        state=None,
        now=draw(st.floats(min_value=0, max_value=1e11, allow_nan=False)),
        controller=controller,
    )


@settings(max_examples=200, deadline=None)
@given(_inputs())
def test_decide_input_round_trips_through_its_document(value: DecideInput) -> None:
    doc = decide_input_to_dict(value)
    assert parse_decide_input(doc) == value
    assert parse_decide_input(json.loads(dumps(doc))) == value
    assert schema_errors(json.loads(dumps(doc)), "input") == []


@settings(max_examples=100, deadline=None)
@given(_pods())
def test_pod_fields_round_trip_for_rules_without_resource_metrics(pods: tuple[PodInfo, ...]) -> None:
    rule = parse_rule(
        {
            "apiVersion": "ampscaler/v1",
            "target": {"cluster": "c", "namespace": "shop", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "metrics": [
                {"name": "q", "type": "External", "query": "q", "target": {"type": "Value", "value": 1}}
            ],
        }
    )
    value = DecideInput(
        rule, Observation(ScaleObservation(1, 1), (MetricObservation("q", value=1.0),), pods), None, NOW
    )
    assert parse_decide_input(json.loads(dumps(decide_input_to_dict(value)))) == value
