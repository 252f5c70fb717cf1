"""The Faust agent for ``texts`` and ``labels`` (one agent, so a label and its text share state).

Values are consumed as raw bytes: decoding and validation happen in
:class:`~tickcast.streams.sentiment.processor.SentimentProcessor`, so a malformed event becomes
a dead letter instead of an exception inside Faust's deserializer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from tickcast.streams.messages import InMessage
from tickcast.streams.sentiment.processor import SentimentProcessor
from tickcast.streams.settings import Settings

__all__ = ["register_sentiment_agent"]


def register_sentiment_agent(app: faust.App, *, settings: Settings,
                             processor: SentimentProcessor) -> Any:
    """Attach the sentiment agent to ``app``; returns the agent."""
    source = app.topic(settings.topic("texts"), settings.topic("labels"),
                       key_serializer="raw", value_serializer="raw")
    sinks = {
        name: app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw")
        for name in ("sentiment", "dead-letters")
    }
    prefix_len = len(settings.topic_prefix)
    within = settings.batch_within_ms / 1000.0

    @app.agent(source, name="tickcast.sentiment")
    async def sentiment(stream: faust.StreamT) -> None:
        # At-least-once: a batch's offsets are acked (and so committed) only after every
        # output it caused is delivered. ``take``/``take_events`` would ack in a ``finally``
        # even when the batch was cancelled half-way, losing it on restart.
        async for events in stream.noack_take(settings.batch_size, within=within):
            batch = [
                InMessage(topic=e.message.topic[prefix_len:], partition=e.message.partition,
                          offset=e.message.offset, key=e.message.key, value=e.message.value)
                for e in events
            ]
            deliveries = [
                await sinks[out.topic].send(key=out.key, value=out.value)
                for out in processor.process(batch)
            ]
            await asyncio.gather(*deliveries)
            for event in events:
                await stream.ack(event)

    return sentiment
