"""The worker's view of itself, exported as metrics: its consumer group (assigned partitions,
rebalances, lag, commit times) and its process (event-loop lag, garbage-collection pauses)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

import faust
from faust.types import TP

from tickcast.streams.faust_internals import committed_offsets
from tickcast.streams.metrics import INPUT_TOPICS, Metrics
from tickcast.streams.settings import Settings

__all__ = ["LAG_INTERVAL_S", "LOOP_TICK_S", "export_assignment", "export_commits", "export_lag",
           "export_loop_lag", "export_readiness", "watch_gc"]

LAG_INTERVAL_S = 5.0
LOOP_TICK_S = 0.05
"""Period of the event-loop lag probe."""


def _logical_names(settings: Settings) -> dict[str, str]:
    return {settings.topic(name): name for name in INPUT_TOPICS}


def export_assignment(app: faust.App, *, settings: Settings, metrics: Metrics) -> None:
    """``tickcast_assigned_partitions{topic}`` and ``tickcast_rebalances_total`` after every
    rebalance."""
    logical = _logical_names(settings)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: faust.App, assigned: set[TP], **kwargs: object) -> None:
        metrics.rebalances.inc()
        counts = dict.fromkeys(INPUT_TOPICS, 0)
        for tp in assigned:
            if tp.topic in logical:
                counts[logical[tp.topic]] += 1
        for name, n in counts.items():
            metrics.assigned_partitions.labels(topic=name).set(n)


def export_lag(app: faust.App, *, settings: Settings, metrics: Metrics) -> None:
    """``tickcast_consumer_lag{topic}``: high-water mark minus committed offset, summed over
    this worker's partitions, every :data:`LAG_INTERVAL_S` seconds."""
    logical = _logical_names(settings)

    @app.timer(interval=LAG_INTERVAL_S)
    async def lag() -> None:
        consumer = app.consumer
        committed = committed_offsets(consumer)
        totals = dict.fromkeys(INPUT_TOPICS, 0)
        for tp in consumer.assignment():
            if tp.topic in logical:
                highwater = consumer.highwater(tp)
                if highwater is not None and highwater >= 0:
                    done = committed.get(tp) or 0
                    totals[logical[tp.topic]] += max(highwater - done, 0)
        for name, value in totals.items():
            metrics.consumer_lag.labels(topic=name).set(value)


def export_commits(app: Any, *, metrics: Metrics) -> None:
    """``tickcast_commit_duration_seconds``: the wall time of every offset commit."""
    app.on_commit = metrics.commit_seconds.observe


def export_loop_lag(app: faust.App, *, metrics: Metrics) -> None:
    """``tickcast_event_loop_lag_seconds``: every :data:`LOOP_TICK_S`, how much later than
    asked a sleep on the event loop returns (the time something else held the loop)."""

    @app.task
    async def loop_lag() -> None:
        observe = metrics.loop_lag.observe
        while True:
            asked = time.perf_counter() + LOOP_TICK_S
            await asyncio.sleep(LOOP_TICK_S)
            observe(max(time.perf_counter() - asked, 0.0))


def watch_gc(metrics: Metrics) -> Callable[[], None]:
    """``tickcast_gc_pause_seconds{generation}`` from Python's ``gc.callbacks``; returns the
    function that removes the callback."""
    children = {g: metrics.gc_pause.labels(generation=str(g)) for g in range(3)}
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            children[info["generation"]].observe(time.perf_counter() - started[0])

    gc.callbacks.append(callback)
    return lambda: gc.callbacks.remove(callback)


def export_readiness(app: faust.App, *, metrics: Metrics) -> None:
    """``tickcast_ready``: 0 from a revocation until the rebalance completes (partitions
    assigned and tables recovered: Faust's ``on_rebalance_complete``), 1 after. Being assigned
    partitions is not enough: table recovery runs after the assignment, and the agents consume
    nothing until it ends."""

    @app.on_partitions_revoked.connect
    async def not_ready(sender: faust.App, revoked: set[TP], **kwargs: object) -> None:
        metrics.ready.set(0)

    @app.on_rebalance_complete.connect
    async def ready(sender: faust.App, **kwargs: object) -> None:
        metrics.ready.set(1)
