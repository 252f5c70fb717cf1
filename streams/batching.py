"""Batches of events from a Faust stream, taken as soon as the agent is free.

Faust's ``Stream.noack_take(n, within)`` had two costs, both measured in the bench:

* **Latency.** After yielding a batch it waits the whole ``within`` before it looks at its
  buffer again, and it blocks the buffer while the batch is processed. Events that arrived
  meanwhile waited for the processing *and* ``within``.
* **Throughput.** Every event passes through Faust's per-event iterator (an ``await
  sleep(0)``, a processor call and a context variable per event).

:func:`batches` reads the stream's channel queue itself. A batch is everything queued when the
agent asks for one, up to ``size``; only when nothing is queued does the next event wait
``within`` for others to join it. Under load the agent therefore never idles while events wait,
and batches grow with the backlog; at low rates batches still gather for ``within``.

Per event it does what Faust's stream iterator does before handing an event over: events of
an old consumer generation (fetched before a rebalance) or arriving while flow control is
suspended are skipped and acknowledged, and other events are tracked as unacknowledged, so
Faust's commit and graceful-shutdown logic see them. Acknowledging is the caller's job
(``Stream.ack``), as with ``noack_take``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.types import EventT

__all__ = ["batches"]


async def batches(stream: faust.StreamT, *, size: int, within: float
                  ) -> AsyncIterator[list[EventT]]:
    """Yield lists of at most ``size`` events from ``stream``'s channel (see the module doc).

    ``within`` (seconds): how long an event that found the queue empty waits for more events
    before its batch is yielded anyway."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    app: Any = stream.app
    queue = stream.channel.queue
    consumer = app.consumer
    flow_control = app.flow_control
    acking_topics = app.topics.acking_topics
    track = consumer.track_message
    while not stream.should_stop:
        values: list[Any] = []
        try:
            if queue.empty():
                values.append(await queue.get())
                if within > 0 and size > 1:
                    await asyncio.sleep(within)  # let the next events join this one
            while len(values) < size and not queue.empty():
                values.append(queue.get_nowait())
        except StopAsyncIteration:
            # Faust ends a stream by throwing this into its channel. Events taken but not
            # yielded stay unacknowledged (and untracked, so shutdown does not wait for
            # them): they are redelivered after the restart.
            return
        events: list[EventT] = []
        generation = app.consumer_generation_id
        active = flow_control.is_active()
        for value in values:
            if not isinstance(value, EventT):
                continue  # only events travel on a topic's channel
            message = value.message
            if not active or message.generation_id != generation:
                # Fetched before a rebalance (or while paused for one): Faust's iterator
                # skips these and acknowledges them; their partitions' new owners
                # consume them from the committed offset.
                await stream.ack(value)
                continue
            if not message.tracked and message.topic in acking_topics:
                message.tracked = True
                track(message)
            events.append(value)
        if events:
            yield events
