"""The worker's view of itself: readiness across rebalances, commit times, event-loop lag and
garbage-collection pauses."""

from __future__ import annotations

import asyncio
import gc

from tickcast.streams.app import build_app
from tickcast.streams.metrics import Metrics
from tickcast.streams.monitoring import watch_gc
from tickcast.streams.settings import Settings


def test_ready_only_once_the_rebalance_completes_and_not_from_a_revocation_on() -> None:
    """Assigned partitions are not enough: tables recover after the assignment and the agents
    consume nothing until Faust's ``on_rebalance_complete``."""
    service = build_app(Settings.from_env({}))
    app, metrics = service.app, service.metrics

    def ready() -> float:
        return metrics.ready._value.get()

    async def scenario() -> list[float]:
        seen = [ready()]
        await app.on_partitions_assigned.send(set())
        seen.append(ready())
        await app.on_rebalance_complete.send()
        seen.append(ready())
        await app.on_partitions_revoked.send(set())
        seen.append(ready())
        await app.on_partitions_assigned.send(set())
        await app.on_rebalance_complete.send()
        seen.append(ready())
        return seen

    assert asyncio.run(scenario()) == [0, 0, 1, 0, 1]
    assert metrics.rebalances._value.get() == 2


def test_commits_are_timed_through_the_app_hook() -> None:
    service = build_app(Settings.from_env({}))
    service.app.on_commit(0.02)
    count = service.metrics.commit_seconds.collect()[0]
    assert {s.name: s.value for s in count.samples if s.name.endswith(("_count", "_sum"))} == {
        "tickcast_commit_duration_seconds_count": 1.0,
        "tickcast_commit_duration_seconds_sum": 0.02}


def test_gc_pauses_are_observed_by_generation_until_removed() -> None:
    metrics = Metrics()
    remove = watch_gc(metrics)
    try:
        gc.collect(2)
    finally:
        remove()
    gc.collect(2)  # after removal: not observed

    def count(generation: str) -> float:
        family = metrics.gc_pause.collect()[0]
        return next(s.value for s in family.samples
                    if s.name.endswith("_count") and s.labels["generation"] == generation)

    assert count("2") == 1
