"""Decisions per second of the pure engine for a 3-metric rule over 100 pods.

Run: ``.venv/bin/python -m bench.engine``. The result is a ratio against a trivial baseline
(ceil(sum/target) over the same 100 values) measured in the same run, so it compares across
machines. The last line is JSON for tooling.
"""

from __future__ import annotations

import json
import math
import sys
import time

from ampscaler.engine import decide
from ampscaler.engine.types import (
    EngineState,
    MetricObservation,
    Observation,
    PodInfo,
    ScaleObservation,
)
from ampscaler.model import (
    Behavior,
    MetricSpec,
    MetricTarget,
    Rule,
    ScaleTargetRef,
    ScalingPolicy,
    ScalingRules,
)

PODS = 100
NOW = 1_700_000_000.0


def build() -> tuple[Rule, Observation, EngineState]:
    """The benchmark scenario: Pods + External Value + Object AverageValue, default behavior."""
    rule = Rule(
        name="bench",
        target=ScaleTargetRef("bench", "default", "Deployment", "app"),
        min_replicas=1,
        max_replicas=500,
        metrics=(
            MetricSpec("rps", "Pods", "q1", MetricTarget("AverageValue", average_value=10.0)),
            MetricSpec("backlog", "External", "q2", MetricTarget("Value", value=400.0)),
            MetricSpec("queue", "Object", "q3", MetricTarget("AverageValue", average_value=5.0)),
        ),
        behavior=Behavior(
            scale_up=ScalingRules(
                0, "Max", (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15))
            ),
            scale_down=ScalingRules(None, "Max", (ScalingPolicy("Percent", 100, 15),)),
        ),
    )
    pods = tuple(PodInfo(f"p{i}", "Running" if i % 17 else "Pending", i % 13 != 0) for i in range(PODS))
    values = {f"p{i}": 8.0 + (i % 7) for i in range(PODS) if i % 11}
    observation = Observation(
        scale=ScaleObservation(PODS, PODS),
        metrics=(
            MetricObservation("rps", pod_values=values),
            MetricObservation("backlog", value=52_000.0),
            MetricObservation("queue", value=640.0),
        ),
        pods=pods,
    )
    return rule, observation, EngineState()


def _rate(fn: object, seconds: float) -> float:
    """Calls per second of ``fn`` over roughly ``seconds``."""
    assert callable(fn)
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        calls += 50
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def main(seconds: float = 1.5) -> dict[str, float]:
    """Measure both rates and print a summary line and a JSON line."""
    rule, observation, state = build()
    values = [v for v in (observation.metrics[0].pod_values or {}).values()]

    def baseline() -> int:
        return math.ceil(sum(values) / 10.0)

    def engine() -> int:
        return decide(rule, observation, state, NOW).desired_replicas

    engine()  # warm up imports and caches
    baseline_rate = _rate(baseline, seconds)
    engine_rate = _rate(engine, seconds)
    result = {
        "pods": float(PODS),
        "metrics": 3.0,
        "decisions_per_second": round(engine_rate, 1),
        "baseline_per_second": round(baseline_rate, 1),
        "ratio_to_baseline": round(engine_rate / baseline_rate, 5),
    }
    print(
        f"engine: {engine_rate:,.0f} decisions/s for a 3-metric rule over {PODS} pods; "
        f"baseline ceil(sum/target): {baseline_rate:,.0f}/s; ratio {engine_rate / baseline_rate:.4f}"
    )
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.5)
