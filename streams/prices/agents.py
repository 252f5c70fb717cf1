"""The Faust agent for ``prices``: per-symbol state in a table, inference off the loop."""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from concurrent.futures import Executor
from typing import Any, Final

import faust

from tickcast.streams.delivery import InFlight, Sinks
from tickcast.streams.faust_internals import batches, queued, state_table
from tickcast.streams.messages import Record, in_message
from tickcast.streams.prices.pipeline import LanePipeline
from tickcast.streams.prices.processor import (
    Plan,
    PriceProcessor,
    SymbolState,
    history_keep_for,
)
from tickcast.streams.prices.state import load_state, state_writes
from tickcast.streams.serving import ModelManager
from tickcast.streams.settings import Settings

__all__ = ["register_price_agent"]

CHANGELOG_CONFIG: Final = {"cleanup.policy": "compact", "segment.bytes": str(8 * 2**20),
                           "segment.ms": str(600_000), "min.cleanable.dirty.ratio": "0.5"}
"""Configs of the state changelog topic when the worker creates it: segments small enough
that the log cleaner (which never touches a partition's newest segment) keeps the log near
the live state, for a memory store's start reads all of it."""
ROCKSDB_OPTIONS: Final = {"write_buffer_size": 8 * 2**20, "max_write_buffer_number": 2,
                          "block_cache_size": 32 * 2**20}
"""Per partition database, up to about 48 MiB each: two 8 MiB write buffers and a 32 MiB
block cache (Faust's defaults: 64 MiB write buffers and a 2 GiB block cache)."""


def register_price_agent(app: faust.App, *, settings: Settings, processor: PriceProcessor,
                         models: ModelManager, executor: Executor) -> Any:
    """Attach the prices agent to ``app``; returns the agent."""
    source = app.topic(settings.topic("prices"), key_serializer="raw", value_serializer="raw")
    sinks = Sinks(app, {name: settings.topic(name) for name in ("forecasts", "dead-letters")})
    # Per-symbol history and pending forecast, in chunks (see streams/prices/state.py); its
    # changelog restores them after a restart.
    table = state_table(
        app, "price-state", partitions=settings.topic_partitions,
        # Compaction keeps the changelog near the live state: the log cleaner cannot touch
        # the active segment (1 GiB or 7 days by default), which a restart would read whole.
        extra_topic_configs=CHANGELOG_CONFIG,
        options=ROCKSDB_OPTIONS if settings.state_store == "rocksdb" else None)
    prefix_len = len(settings.topic_prefix)
    within = settings.batch_within_ms / 1000.0

    # Decoded states of this worker's symbols; the table (store + changelog) stays the
    # source of truth and is re-read after every rebalance.
    cache: OrderedDict[str, SymbolState] = OrderedDict()

    @app.on_partitions_assigned.connect
    async def forget_states(sender: faust.App, assigned: set[Any], **kwargs: Any) -> None:
        cache.clear()

    def keep() -> int:
        return history_keep_for(models.forecaster(), models.forecaster_challenger())

    def load(symbol: str, partition: int) -> SymbolState:
        state = cache.get(symbol)
        if state is None:
            while len(cache) >= settings.state_cache:
                cache.popitem(last=False)  # the one loaded longest ago
            state = cache[symbol] = load_state(
                symbol, functools.partial(table.get, partition=partition), keep=keep())
            processor.metrics.state_loads.inc()
        return state

    async def send(plan: Plan, values: Any) -> list[asyncio.Future[Any]]:
        """Finish ``plan``; send its outputs and the changelog writes of its symbols' states
        (their delivery futures)."""
        outputs = processor.finish(plan, processor.complete(plan, values))
        history = keep()
        # Each symbol's state changes are logged to the partition its ticks arrive on, in the
        # batch's own produce calls: the input is acked only once its state is logged.
        changelog: list[Record] = [
            table.write(key, value, partition=plan.partitions[symbol], checked=True)
            for symbol, state in plan.states.items()
            for key, value in state_writes(symbol, state, keep=history)]
        metrics = processor.metrics
        metrics.state_cached.set(len(cache))
        metrics.state_changelog_records.inc(len(changelog))
        metrics.state_changelog_bytes.inc(sum(len(k) + (len(v) if v is not None else 0)
                                              for _, _, k, v in changelog))
        return await sinks.send(outputs, changelog)

    @app.agent(source, name="tickcast.prices")
    async def forecasts(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        inflight = InFlight(
            stream, limit=settings.batches_in_flight, batch_size=settings.batch_size,
            observe=processor.metrics.delivery_seconds.labels(agent="prices").observe)

        async def track(events: Any, deliveries: list[asyncio.Future[Any]]) -> None:
            # Acked once delivered, in batch order; a RocksDB store takes the batch's state
            # writes only then.
            await inflight.add(events, deliveries, on_delivered=table.staged())

        pipeline = LanePipeline(
            processor, load=load, send=send, track=track, queued=lambda: queued(stream),
            infer=lambda plan: loop.run_in_executor(executor, processor.run, plan))
        try:
            async for events in batches(stream, size=settings.batch_size, within=within):
                batch = [in_message(e, prefix_len=prefix_len) for e in events]
                processor.metrics.observe_queue_wait("prices", [m.timestamp_ms for m in batch])
                await pipeline.batch(events, batch, models.forecaster(),
                                     models.forecaster_challenger())
            await pipeline.flush()
        finally:
            pipeline.abandon()
        await inflight.drain()

    return forecasts
