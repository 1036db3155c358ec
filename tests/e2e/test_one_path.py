"""The tick, ``ampscaler explain`` and the backtest decide identically on identical observations.

All three build the typed decide input from what they observed and run ``contract.evaluate``.
This test makes them observe the same things: the same rule (from SSM), series that hold still
in the real Prometheus, the same slot start as ``now``, the same stored state. The tick runs
through the Lambda handler; ``explain`` runs through its CLI entry point with its clock set to
the slot's start, before the slot, so it reads the state the slot will read; the backtest fetches
the same history with ``query_range`` and replays it through ``simulate``. The decision documents
must be equal byte for byte, for a first evaluation and for one that follows it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from ampscaler import contract
from ampscaler.backtest.fetch import AmpRangeClient, fetch_history
from ampscaler.backtest.simulate import BacktestOptions, TimeGrid, simulate
from ampscaler.cli import explain as explain_cli
from ampscaler.cli.main import build_parser
from ampscaler.engine.decide import decide
from ampscaler.engine.types import ControllerConfig, Decision, EngineState, Observation
from ampscaler.model import Rule
from ampscaler.rule import parse_rule
from ampscaler.runtime import metrics_source
from ampscaler.settings import Settings
from devstack.stack import CLUSTER, LocalStack
from tests.e2e.conftest import load_handler, log_records
from tests.e2e.test_scaler_handler import FAST, invoke, replicas

pytestmark = pytest.mark.e2e

# Slots 6 s wide: the slot's work must end 0.5 s before its end, which a loaded machine meets
# with seconds to spare.
INTERVAL = 6.0
SLOTS = {**FAST, "EVALUATION_INTERVAL_SECONDS": "6", "SCHEDULE_INTERVAL_SECONDS": "6"}


def one_path_rule(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ampscaler/v1",
        "target": {"cluster": CLUSTER, "namespace": namespace, "kind": "Deployment", "name": name},
        "minReplicas": 2,
        "maxReplicas": 20,
        "metrics": [
            {
                "name": "rps",
                "type": "Pods",
                "query": f'sum by (pod) (one_path_rps{{namespace="{namespace}"}})',
                "target": {"type": "AverageValue", "averageValue": 10},
            },
            {
                "name": "backlog",
                "type": "External",
                "query": f'sum(one_path_backlog{{namespace="{namespace}"}})',
                "target": {"type": "AverageValue", "averageValue": 20},
            },
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
    }


def hold(stack: LocalStack, namespace: str, per_pod: float, backlog: float, at: float) -> None:
    """Series that hold still from ``at`` on: every ready pod at ``per_pod``, the backlog at ``backlog``."""
    series: list[tuple[dict[str, str], list[tuple[float, float]]]] = [
        ({"__name__": "one_path_rps", "namespace": namespace, "pod": pod}, [(at, per_pod)])
        for pod in stack.kube.ready_pods(namespace)
    ]
    series.append(({"__name__": "one_path_backlog", "namespace": namespace}, [(at, backlog)]))
    stack.write_samples(series)


def slot_ahead(seconds: float) -> float:
    """The start of the first evaluation slot at least ``seconds`` from now."""
    return math.ceil((time.time() + seconds) / INTERVAL) * INTERVAL


def explain_at(name: str, now: float, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``ampscaler explain NAME --output json --input-json`` with its clock at ``now``."""
    args = build_parser().parse_args(["explain", name, "--output", "json", "--input-json"])
    capsys.readouterr()
    code = explain_cli.run(args, clock=lambda: now)
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    result: dict[str, Any] = json.loads(out)
    return result


def explain_then_tick(
    handler: Any, name: str, capsys: pytest.CaptureFixture[str]
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Explain at the next slot's start, then run that slot through the handler.

    Explain runs first so it reads the state the slot will read. Should explain itself take
    the slot's whole time (a loaded machine), nothing has changed yet, so it is done again for
    a slot further ahead rather than racing the clock.
    """
    for lead in (1.0, 2 * INTERVAL, 5 * INTERVAL):
        slot = slot_ahead(lead)
        explained = explain_at(name, slot, capsys)
        if time.time() < slot + INTERVAL / 2:
            invoke(handler, scheduled=slot)
            return slot, explained, tick_record(capsys, name)
    raise AssertionError("explain took longer than the slots it was asked about")


def tick_record(capsys: pytest.CaptureFixture[str], rule_name: str) -> dict[str, Any]:
    [record] = [
        r
        for r in log_records(capsys.readouterr().out)
        if r.get("event") == "decision" and r["rule"] == rule_name
    ]
    return record


def test_tick_explain_and_backtest_decide_identically_on_identical_observations(
    local_stack: LocalStack, stack_env: Callable[..., dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    stack_env(**SLOTS)
    ns, name = "onepath", "web"
    rule_name = f"{ns}/{name}"
    local_stack.kube.add_deployment(ns, name, replicas=3, labels={"app": name})
    local_stack.put_rule(rule_name, one_path_rule(ns, name))
    handler = load_handler("scaler")
    rule: Rule = parse_rule(one_path_rule(ns, name), default_cluster=CLUSTER)

    # Slot 1, a first evaluation: 30 rps on each of 3 pods (target 10 -> 9) and a backlog of 100
    # (20 per pod -> 5): rps wins, and the default scale-up policies allow 3 -> 7 at most.
    hold(local_stack, ns, per_pod=30.0, backlog=100.0, at=time.time() - 1)
    slot1, explained1, ticked1 = explain_then_tick(handler, rule_name, capsys)
    assert ticked1["slot"] == f"{int(slot1):012d}"
    assert replicas(local_stack, ns, name) == 7

    # Slot 2 follows it with the state slot 1 wrote: 25 rps on each of the 7 pods proposes 18.
    # Inside the 15 s policy period of slot 1's +4 the period started at 3 pods, so
    # max(3 + 4, 3 x 2) = 7 holds the count; past it (explain was slow), max(7 + 4, 7 x 2) = 14.
    # The new samples are stamped after slot 1's start, so a range query at slot 1 still sees
    # what slot 1 saw.
    hold(local_stack, ns, per_pod=25.0, backlog=100.0, at=slot1 + 0.5)
    slot2, explained2, ticked2 = explain_then_tick(handler, rule_name, capsys)
    expected = 7 if slot2 - slot1 < 15 else 14
    assert [m["proposal"] for m in ticked2["output"]["metrics"]] == [18, 5]
    assert ticked2["output"]["desiredReplicas"] == expected
    assert replicas(local_stack, ns, name) == expected

    for ticked, explained, slot in ((ticked1, explained1, slot1), (ticked2, explained2, slot2)):
        assert ticked["input"]["now"] == explained["input"]["now"] == slot
        # Same observations in, same decision out, byte for byte.
        assert contract.dumps(explained["input"]) == contract.dumps(ticked["input"])
        assert contract.dumps(explained["output"]) == contract.dumps(ticked["output"])
    assert ticked1["input"]["state"] is None
    assert ticked2["input"]["state"] == ticked1["output"]["state"]

    # The backtest over the same two slots, fetching the history from the same Prometheus. Its
    # simulated pods are new names but observe what the real ones did (demand spread over the
    # ready pods), and start ready at once, as the simulator's pods do.
    settings = Settings.from_env()
    source = metrics_source(settings, settings.amp_region or "us-east-1")
    grid = TimeGrid.half_open(slot1, slot2 + INTERVAL, INTERVAL)
    history = fetch_history(AmpRangeClient(source, rule), rule, grid)
    seen: list[tuple[Observation, EngineState | None, float, Decision]] = []

    def recording(
        r: Rule, observation: Observation, state: EngineState | None, now: float, controller: ControllerConfig
    ) -> Decision:
        decision = decide(r, observation, state, now, controller)
        seen.append((observation, state, now, decision))
        return decision

    options = BacktestOptions(initial_replicas=3, startup_delay_seconds=0.0)
    simulate(rule, grid, history, options, decide=recording)
    assert [now for _, _, now, _ in seen] == [slot1, slot2]
    for (observation, _, _, decision), ticked in zip(seen, (ticked1, ticked2), strict=True):
        replayed = contract.parse_decide_input(ticked["input"])
        logged = replayed.observation
        assert observation.scale == logged.scale
        assert [sorted((m.pod_values or {}).values()) for m in observation.metrics] == [
            sorted((m.pod_values or {}).values()) for m in logged.metrics
        ]
        assert [m.value for m in observation.metrics] == [m.value for m in logged.metrics]
        assert contract.dumps(contract.decision_to_dict(decision, "active")) == contract.dumps(
            ticked["output"]
        )
