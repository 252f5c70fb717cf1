"""Outputs to Kafka, and input acknowledged only once its outputs are delivered.

:class:`Sinks` produces an agent's outputs straight to the app's aiokafka producer, a batch
per partition (:func:`produce`). :class:`InFlight` awaits their delivery (``acks=all``: a
network round trip) in the background, so the next batch is decoded and scored meanwhile, and
acknowledges the input offsets only after delivery and strictly in batch order. Order matters
beyond tidiness: Faust commits a run of acknowledged offsets that starts one past the committed
offset even when the offset in between is still in flight
(https://github.com/faust-streaming/faust/issues/606), so out-of-order acknowledgements could
commit past an undelivered event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Final

import faust
from aiokafka.partitioner import DefaultPartitioner

from tickcast.streams.faust_internals import aiokafka_producer
from tickcast.streams.messages import OutMessage, Record

__all__ = ["InFlight", "Sinks", "produce"]

_PARTITIONER: Final = DefaultPartitioner()


async def produce(producer: Any, records: Iterable[Record]) -> list[asyncio.Future[Any]]:
    """Hand ``records`` to an ``AIOKafkaProducer`` a batch per partition; returns the futures
    that resolve once each batch is delivered.

    ``producer.send`` per record waits on topic metadata, rebuilds the topic's partition set
    and hashes the key every time; here that happens once per topic and key per call, and a
    partition's records go in one ``send_batch``. Records keep their order within a
    partition. A record keyed ``k`` lands where ``send`` would put it (the default murmur2
    partitioner on the same partition list). A record larger than a batch goes alone in one,
    as with ``send``.
    """
    groups: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
    partitions: dict[str, list[int]] = {}
    placed: dict[tuple[str, bytes | None], int] = {}
    for topic, partition, key, value in records:
        if partition is None:
            partition = placed.get((topic, key))
            if partition is None:
                every = partitions.get(topic)
                if every is None:
                    every = partitions[topic] = sorted(await producer.partitions_for(topic))
                partition = _PARTITIONER(key, every, every)
                if key is not None:
                    placed[(topic, key)] = partition
        groups.setdefault((topic, partition), []).append((key, value))
    futures: list[asyncio.Future[Any]] = []
    for (topic, partition), items in groups.items():
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:  # batch full
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                # The first record of a batch is always taken, whatever its size.
                batch.append(key=key, value=value, timestamp=None)
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


class Sinks:
    """The output topics of an agent, produced in a batch per partition.

    Outputs are already keyed bytes, so they skip Faust's ``Topic.send`` (a ``FutureMessage``
    and the channel machinery per record) and go straight to the app's aiokafka producer with
    :func:`produce`. The topics exist before the worker starts (``ensure_topics``).
    """

    def __init__(self, app: faust.App, topics: dict[str, str]) -> None:
        self.app = app
        self.topics = topics
        """Logical name (``forecasts``) -> topic name."""

    def producer(self) -> Any:
        """The app's ``AIOKafkaProducer`` (Faust's producer service wraps one)."""
        return aiokafka_producer(self.app)

    async def send(self, outputs: Iterable[OutMessage], extra: Iterable[Record] = ()
                   ) -> list[asyncio.Future[Any]]:
        """Produce ``outputs`` (and ``extra`` records, e.g. changelog writes) in batches;
        returns the delivery futures."""
        topics = self.topics
        records = [(topics[o.topic], None, o.key, o.value) for o in outputs]
        records.extend(extra)
        return await produce(self.producer(), records)


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
