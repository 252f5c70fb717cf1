"""The Faust agent for ``prices``: per-symbol state in a table, inference off the loop."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Executor
from typing import Any

import faust

from tickcast.streams.batching import batches
from tickcast.streams.delivery import InFlight, Record, Sinks
from tickcast.streams.messages import InMessage
from tickcast.streams.prices.processor import PriceProcessor, SymbolState, history_keep
from tickcast.streams.prices.state import load_state, state_writes
from tickcast.streams.serving import ModelManager
from tickcast.streams.settings import Settings

__all__ = ["register_price_agent", "to_in_message"]

STATE_CACHE_MAX = 100_000


def to_in_message(event: faust.EventT, prefix_len: int) -> InMessage:
    m = event.message
    return InMessage(topic=m.topic[prefix_len:], partition=m.partition, offset=m.offset,
                     key=m.key, value=m.value,
                     timestamp_ms=int(m.timestamp * 1000) if m.timestamp else None)


def _json(value: Any) -> bytes:
    """Changelog keys and values as Faust's ``json`` codec writes them (and reads them back
    in recovery); a key encodes to the same bytes, so compaction keeps one per key."""
    return json.dumps(value, separators=(",", ":")).encode()


def register_price_agent(app: faust.App, *, settings: Settings, processor: PriceProcessor,
                         models: ModelManager, executor: Executor) -> Any:
    source = app.topic(settings.topic("prices"), key_serializer="raw", value_serializer="raw")
    sinks = Sinks(app, {name: settings.topic(name) for name in ("forecasts", "dead-letters")})
    # Per-symbol history and pending forecast, in chunks (see streams/prices/state.py); its
    # changelog restores them after a restart. Written with the partition of the symbol's
    # tick, so recovery follows the assignment. Keys and values are JSON on the changelog
    # (what Faust's recovery decodes).
    table = app.Table("price-state", partitions=settings.topic_partitions,
                      schema=faust.Schema(key_type=str, key_serializer="json",
                                          value_serializer="json"))
    changelog_topic = table.changelog_topic.get_topic_name()
    prefix_len = len(settings.topic_prefix)
    within = settings.batch_within_ms / 1000.0

    # Decoded states of this worker's symbols; the table (store + changelog) stays the
    # source of truth and is re-read after every rebalance.
    cache: dict[str, SymbolState] = {}

    @app.on_partitions_assigned.connect
    async def forget_states(sender: faust.App, assigned: set[Any], **kwargs: Any) -> None:
        cache.clear()

    def load(symbol: str) -> SymbolState:
        state = cache.get(symbol)
        if state is None:
            if len(cache) >= STATE_CACHE_MAX:
                cache.clear()
            state = cache[symbol] = load_state(symbol, table.data.get, keep=keep())
        return state

    def keep() -> int:
        forecaster = models.forecaster()
        return history_keep(forecaster.window if forecaster is not None else None)

    @app.agent(source, name="tickcast.prices")
    async def forecasts(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        inflight = InFlight(stream, limit=settings.batches_in_flight)
        async for events in batches(stream, size=settings.batch_size, within=within):
            batch = [to_in_message(e, prefix_len) for e in events]
            processor.metrics.observe_queue_wait("prices", [m.timestamp_ms for m in batch])
            plan = processor.plan(batch, load, models.forecaster())
            values = await loop.run_in_executor(executor, processor.infer, plan)
            outputs = processor.finish(plan, values)
            history = keep()
            changelog: list[Record] = []
            for symbol, state in plan.states.items():
                # Not ``table[key] = ...``: that takes the partition from Faust's "current
                # event", which inside a batch is not this symbol's. Set the store, and log
                # the change to the partition the symbol's ticks arrive on, in the batch's
                # own produce call, so the input is acked only once its state is logged.
                partition = plan.partitions[symbol]
                for key, value in state_writes(symbol, state, keep=history):
                    if value is None:  # a tombstone, as Faust's own deletes send it
                        table.data.pop(key, None)
                    else:
                        table.data[key] = value
                    changelog.append((changelog_topic, partition, _json(key),
                                      None if value is None else _json(value)))
            deliveries = await sinks.send(outputs, changelog)
            await inflight.add(events, deliveries)  # acked once delivered, in batch order
        await inflight.drain()

    return forecasts
