"""Exact compaction of the recommendation history, and what counts as a steady evaluation.

The stabilization windows only ever ask "which replica counts were recommended after
``now - window``?", and every window ends at ``now``. For one replica count, only its latest
recommendation can answer that question differently from the others, so keeping one entry per
distinct replica count (its latest time) gives every future decision exactly what the full
history gives (upstream keeps the full list; see ``behavior.stabilize_recommendation*``). The
compacted history is small enough for the state item to stay under 1 KB.

A *steady* evaluation is one whose only effect on the state is that the latest recommendation,
which repeated the previous one, now carries a later time. Such evaluations need not be written
anywhere: the next evaluation can restore that time (``advance_open_recommendation``).
"""

from __future__ import annotations

from dataclasses import replace

from ampscaler.engine.types import EngineState, Recommendation


def compact_history(state: EngineState) -> EngineState:
    """``state`` with one recommendation per distinct replica count (its latest), oldest first.

    Exact: every stabilization decision made from the result equals the one made from ``state``.
    """
    latest: dict[int, float] = {}
    for rec in state.recommendations:
        if rec.replicas not in latest or rec.time > latest[rec.replicas]:
            latest[rec.replicas] = rec.time
    if len(latest) == len(state.recommendations):
        return state
    recs = tuple(
        sorted((Recommendation(t, r) for r, t in latest.items()), key=lambda r: (r.time, r.replicas))
    )
    return replace(state, recommendations=recs)


def open_recommendation(state: EngineState) -> Recommendation | None:
    """The most recent recommendation (the one a steady evaluation repeats), if any."""
    if not state.recommendations:
        return None
    return max(state.recommendations, key=lambda r: r.time)


def advance_open_recommendation(state: EngineState, to_time: float) -> EngineState:
    """``state`` as if its latest recommendation had been repeated at ``to_time``.

    This is what a run of steady evaluations up to ``to_time`` did to the state; a ``to_time`` not
    after the latest recommendation changes nothing.
    """
    latest = open_recommendation(state)
    if latest is None or to_time <= latest.time:
        return state
    recs = tuple(
        Recommendation(to_time, rec.replicas) if rec == latest else rec for rec in state.recommendations
    )
    return replace(state, recommendations=recs)


def is_steady(before: EngineState | None, after: EngineState, now: float) -> bool:
    """Whether ``after`` is ``before`` with only its latest recommendation repeated at ``now``.

    Both are compared compacted. A first evaluation (``before`` None) is never steady.
    """
    if before is None:
        return False
    return compact_history(after) == advance_open_recommendation(compact_history(before), now)
