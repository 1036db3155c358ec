"""Sharding: the same rules split across 1, 2 and 4 scaler processes (SHARD_COUNT / SHARD_INDEX).

Each shard is its own process running ``Ticker.run_tick`` with the production adapters (as each
shard is its own Lambda invocation); all shards are told to tick at the same moment and the wall
time of the tick is from the earliest shard start to the latest shard end. The baseline is the
1-shard wall time measured in the same run, so the ratio is the fraction of it that sharding
leaves. The servers (Prometheus, the SigV4 proxy, moto, the simulator) share the same cores as
the shards here; in AWS each shard has its own, so the local figure understates the gain.

Run alone: ``.venv/bin/python -m bench.sharding [--quick]``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.common import Figure, RunContext, log, median, standalone_main
from bench.tick import OUT, Fleet, Worker, fleet_of, next_slot, patched_deployments, ticker_worker


def wall_time(results: Sequence[dict[str, Any]]) -> float:
    """Earliest start to latest end over the shards' tick results (seconds)."""
    return float(max(r["ended"] for r in results) - min(r["started"] for r in results))


def measure(fleet: Fleet, rules: int, shards: int, repeats: int) -> tuple[list[float], int]:
    """Wall times of ``repeats`` simultaneous ticks of ``rules`` rules over ``shards`` processes."""
    prefix = fleet.prepare(rules)
    OUT.mkdir(parents=True, exist_ok=True)
    workers = [
        Worker(
            ticker_worker,
            fleet.env(prefix, SHARD_COUNT=str(shards), SHARD_INDEX=str(index)),
            str(OUT / f"shard-{shards}-{index}.log"),
        )
        for index in range(shards)
    ]
    walls: list[float] = []
    evaluated = 0
    try:
        last = 0.0
        for k in range(repeats + 1):  # k == 0: warm-up
            fleet.reset(rules)
            fleet.write_samples(rules)
            fleet.stack.kube.clear_requests()
            time.sleep(max(0.0, last + 1.1 - time.time()))
            slot = next_slot()
            for w in workers:
                w.send("tick", {"slot": slot})
            results = [w.recv() for w in workers]
            last = time.time()
            patched_deployments(fleet.stack)
            evaluated = sum(r["evaluated"] for r in results)
            if evaluated != rules or any(r["errors"] for r in results):
                log(
                    f"sharding {shards}: {evaluated}/{rules} evaluated, errors {[r['error_samples'] for r in results]}"
                )
            if k:
                walls.append(wall_time(results))
    finally:
        for w in workers:
            w.stop()
        fleet.reset(rules)
    return walls, evaluated


def run(ctx: RunContext) -> list[Figure]:
    """Wall time per tick for 1, 2 and 4 shards over 1,000 rules (200 in quick mode)."""
    rules = 200 if ctx.quick else 1000
    repeats = 2 if ctx.quick else 3
    fleet = fleet_of(ctx)
    walls: dict[int, float] = {}
    facts: dict[str, Any] = {}
    for shards in (1, 2, 4):
        log(f"sharding: {rules} rules over {shards} shard(s)")
        samples, evaluated = measure(fleet, rules, shards, repeats)
        walls[shards] = median(samples)
        facts[str(shards)] = {"walls_s": samples, "evaluated": evaluated}
        log(f"sharding: {shards} shard(s) median wall {walls[shards]:.2f} s")
    ctx.facts["sharding"] = {"rules": rules, **facts}
    ctx.notes.append(
        "Sharding: locally every shard talks to the same moto process and to the SigV4 proxy and kube "
        "simulator, which share one Python process, on the same cores as the shards; these servers are the "
        "bottleneck, so extra shards cannot shorten the wall time here (the floor client is as slow). In AWS "
        "each shard is its own Lambda with its own CPU and the services scale out."
    )
    return [
        ctx.figure(
            key=f"sharding.shards_{shards}",
            figure=f"Tick wall time, {rules:,} rules over {shards} shard{'s' if shards > 1 else ''}",
            value=walls[shards],
            unit="s",
            baseline=walls[1],
            baseline_label="1 shard",
            how=(
                f"{shards} scaler process(es) (SHARD_COUNT={shards}) ticking at once; earliest start to latest "
                f"end, median of {repeats}; the local servers share the machine's cores with the shards"
            ),
        )
        for shards in (1, 2, 4)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sharding benchmark alone and print its figures as JSON lines."""
    return standalone_main(run, (__doc__ or "").splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
