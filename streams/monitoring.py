"""The worker's view of its consumer group, exported as gauges: assigned partitions and lag."""

from __future__ import annotations

import faust
from faust.types import TP

from tickcast.streams.faust_internals import committed_offsets
from tickcast.streams.metrics import INPUT_TOPICS, Metrics
from tickcast.streams.settings import Settings

__all__ = ["LAG_INTERVAL_S", "export_assignment", "export_lag"]

LAG_INTERVAL_S = 5.0


def _logical_names(settings: Settings) -> dict[str, str]:
    return {settings.topic(name): name for name in INPUT_TOPICS}


def export_assignment(app: faust.App, *, settings: Settings, metrics: Metrics) -> None:
    """``tickcast_assigned_partitions{topic}`` after every rebalance."""
    logical = _logical_names(settings)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: faust.App, assigned: set[TP], **kwargs: object) -> None:
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
