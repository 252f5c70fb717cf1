"""Acknowledge a batch once its outputs are delivered, without holding up the next batch.

An agent used to await the broker's acknowledgement of a batch's outputs (``acks=all``: a
network round trip) before it took the next batch: the worker idled for that long on every
batch. :class:`InFlight` awaits deliveries in the background, so the next batch is decoded and
scored meanwhile, and still acknowledges the input offsets only after delivery and strictly in
batch order. Order matters beyond tidiness: Faust commits a run of acknowledged offsets that
starts one past the committed offset even when the offset in between is still in flight
(faust-streaming #606), so out-of-order acknowledgements could commit past an undelivered
event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import faust

from tickcast.streams.messages import OutMessage

__all__ = ["InFlight", "Sinks"]


class Sinks:
    """The output topics of an agent, written straight through the app's producer.

    Faust's ``Topic.send`` wraps every record in a ``FutureMessage`` and routes it through the
    channel machinery: ~90 µs per record on two cores, more than all of tickcast's own work
    on a tick (measured with a Faust agent that forwards 200k records: 6,300/s through
    ``Topic.send``, 12,600/s through the producer). Outputs are already keyed bytes, so the
    producer call is all a record needs; its partition comes from the key, as with
    ``Topic.send``. The topics exist before the worker starts (``ensure_topics``).
    """

    def __init__(self, app: faust.App, topics: dict[str, str]) -> None:
        self.app = app
        self.topics = topics
        """Logical name (``forecasts``) -> topic name."""

    async def send(self, outputs: Iterable[OutMessage]) -> list[Awaitable[Any]]:
        """Hand ``outputs`` to the producer, in order; returns their delivery futures."""
        producer, topics = self.app.producer, self.topics
        return [await producer.send(topics[o.topic], o.key, o.value, None, None, None)
                for o in outputs]


class InFlight:
    """At most ``limit`` batches awaiting delivery; acks in the order batches were added."""

    def __init__(self, stream: faust.StreamT, *, limit: int = 4) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.stream = stream
        self.limit = limit
        self._tasks: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._tasks)

    async def add(self, events: Sequence[faust.EventT], deliveries: Sequence[Awaitable[Any]]
                  ) -> None:
        """Track one batch; returns once fewer than ``limit`` batches are in flight. A failed
        delivery is raised here (on this or a later call): its batch and every later one stay
        unacknowledged, so they are redelivered."""
        previous = self._tasks[-1] if self._tasks else None
        task = asyncio.ensure_future(self._settle(events, deliveries, previous))
        # Later batches fail with the first failure; one raise is enough, not a log per task.
        task.add_done_callback(_mark_retrieved)
        self._tasks.append(task)
        while self._tasks and (len(self._tasks) >= self.limit or self._tasks[0].done()):
            await self._tasks.popleft()

    async def drain(self) -> None:
        """Wait for every batch in flight (and raise the first failure)."""
        while self._tasks:
            await self._tasks.popleft()

    async def _settle(self, events: Sequence[faust.EventT],
                      deliveries: Sequence[Awaitable[Any]],
                      previous: asyncio.Future[None] | None) -> None:
        await asyncio.gather(*deliveries)
        if previous is not None:
            await asyncio.shield(previous)  # ack after every earlier batch, never before
        for event in events:
            await self.stream.ack(event)


def _mark_retrieved(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()
