"""Rule builders and a recording fake engine for the backtest unit tests."""

from __future__ import annotations

import math
from typing import Any

from ampscaler.engine.types import ControllerConfig, Decision, EngineState, Observation
from ampscaler.model import Rule
from ampscaler.rule import parse_rule

TARGET = {"cluster": "c", "namespace": "shop", "kind": "Deployment", "name": "web"}


def pods_rule(target: float = 10, name: str = "web", **extra: Any) -> Rule:
    """A rule with one Pods AverageValue metric ``rps``."""
    doc: dict[str, Any] = {
        "apiVersion": "ampscaler/v1",
        "target": TARGET,
        "minReplicas": 1,
        "maxReplicas": 50,
        "metrics": [
            {
                "name": "rps",
                "type": "Pods",
                "query": "sum by (pod) (rate(http_requests_total[2m]))",
                "target": {"type": "AverageValue", "averageValue": target},
            }
        ],
        **extra,
    }
    return parse_rule(doc, name=name)


def external_rule(target_type: str = "Value", target: float = 40, **extra: Any) -> Rule:
    """A rule with one External metric ``backlog``."""
    key = "value" if target_type == "Value" else "averageValue"
    doc: dict[str, Any] = {
        "apiVersion": "ampscaler/v1",
        "target": TARGET,
        "minReplicas": 1,
        "maxReplicas": 50,
        "metrics": [
            {
                "name": "backlog",
                "type": "External",
                "query": "sum(redis_queue_length)",
                "target": {"type": target_type, key: target},
            }
        ],
        **extra,
    }
    return parse_rule(doc, name="queue")


class FakeEngine:
    """Records every observation; scales to ``plan[k]`` at call k (None: no change).

    Stands in for the engine where a test is about the replay's mechanics, not HPA arithmetic.
    """

    def __init__(self, plan: list[int | None]) -> None:
        self.plan = plan
        self.calls: list[tuple[float, Observation]] = []

    def __call__(
        self,
        rule: Rule,
        observation: Observation,
        state: EngineState | None,
        now: float,
        controller: ControllerConfig,
    ) -> Decision:
        k = len(self.calls)
        self.calls.append((now, observation))
        current = observation.scale.spec_replicas
        wanted = self.plan[k] if k < len(self.plan) else None
        desired = current if wanted is None else wanted
        return Decision(
            desired_replicas=desired,
            current_replicas=current,
            action="scale" if desired != current else "none",
            reason="planned" if desired != current else "hold",
            metrics=(),
            conditions=(),
            state=EngineState(),
        )


def ceil_div(a: float, b: float) -> int:
    """ceil(a / b) for the worked numbers."""
    return math.ceil(a / b)
