"""The Faust agent for ``texts`` and ``labels`` (one agent, so a label and its text share state).

Values are consumed as raw bytes: decoding and validation happen in
:class:`~tickcast.streams.sentiment.processor.SentimentProcessor`, so a malformed event becomes
a dead letter instead of an exception inside Faust's deserializer. Scoring runs in a worker
thread so the event loop keeps Kafka heartbeats and fetches going, one batch ahead of the
loop's sends under load (:class:`~tickcast.streams.pipelining.OneAhead`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

import faust

from tickcast.streams.delivery import InFlight, Sinks
from tickcast.streams.faust_internals import batches, queued
from tickcast.streams.messages import OutMessage, in_message
from tickcast.streams.pipelining import OneAhead
from tickcast.streams.sentiment.processor import SentimentProcessor
from tickcast.streams.settings import Settings

__all__ = ["register_sentiment_agent"]


def register_sentiment_agent(app: faust.App, *, settings: Settings,
                             processor: SentimentProcessor, executor: Executor) -> Any:
    """Attach the sentiment agent to ``app``; returns the agent."""
    source = app.topic(settings.topic("texts"), settings.topic("labels"),
                       key_serializer="raw", value_serializer="raw")
    sinks = Sinks(app, {name: settings.topic(name) for name in ("sentiment", "dead-letters")})
    prefix_len = len(settings.topic_prefix)
    within = settings.batch_within_ms / 1000.0

    @app.agent(source, name="tickcast.sentiment")
    async def sentiment(stream: faust.StreamT) -> None:
        # At-least-once: a batch's offsets are acked (and so committed) only after every
        # output it caused is delivered. ``take``/``take_events`` would ack in a ``finally``
        # even when the batch was cancelled half-way, losing it on restart.
        loop = asyncio.get_running_loop()
        inflight = InFlight(
            stream, limit=settings.batches_in_flight, batch_size=settings.batch_size,
            observe=processor.metrics.delivery_seconds.labels(agent="sentiment").observe)

        async def complete(events: Sequence[Any], outputs: list[OutMessage]) -> None:
            deliveries = await sinks.send(outputs)
            await inflight.add(events, deliveries)  # acked once delivered, in batch order

        ahead: OneAhead[list[OutMessage]] = OneAhead(
            process=lambda batch: loop.run_in_executor(executor, processor.process, batch),
            complete=complete, queued=lambda: queued(stream))
        try:
            async for events in batches(stream, size=settings.batch_size, within=within):
                batch = [in_message(e, prefix_len=prefix_len) for e in events]
                processor.metrics.observe_queue_wait("sentiment",
                                                     [m.timestamp_ms for m in batch])
                await ahead.batch(events, batch)
            await ahead.flush()
        finally:
            ahead.abandon()
        await inflight.drain()

    return sentiment
