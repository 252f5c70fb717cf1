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
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

import faust
from aiokafka.partitioner import DefaultPartitioner

from tickcast.streams.faust_internals import aiokafka_producer
from tickcast.streams.messages import OutMessage, Record

__all__ = ["MAX_BATCHES", "PLACED_MAX", "InFlight", "Placement", "Sinks", "produce", "retrieve"]

_PARTITIONER: Final = DefaultPartitioner()
MAX_BATCHES: Final = 64
"""Most batches awaiting delivery at once when :class:`InFlight` counts events."""


PLACED_MAX: Final = 100_000
"""Keys whose partition :class:`Placement` remembers before it starts again."""


class Placement:
    """The partition of each (topic, key), remembered across calls of :func:`produce` while
    the topic's partitions stay the same (the murmur2 hash is pure Python: with a symbol
    per tick it would be paid for every record)."""

    def __init__(self, limit: int = PLACED_MAX) -> None:
        self.limit = limit
        self._partitions: dict[str, list[int]] = {}
        self._placed: dict[tuple[str, bytes], int] = {}

    async def partitions(self, producer: Any, topic: str) -> list[int]:
        """The topic's partitions now; a change forgets every key placed."""
        every = sorted(await producer.partitions_for(topic))
        if self._partitions.get(topic) != every:
            self._partitions[topic] = every
            self._placed.clear()
        return every

    def place(self, topic: str, key: bytes | None, every: list[int]) -> int:
        if key is None:
            return _PARTITIONER(key, every, every)  # random, as with send
        partition = self._placed.get((topic, key))
        if partition is None:
            if len(self._placed) >= self.limit:
                self._placed.clear()
            partition = self._placed[(topic, key)] = _PARTITIONER(key, every, every)
        return partition


async def produce(producer: Any, records: Iterable[Record],
                  placement: Placement | None = None) -> list[asyncio.Future[Any]]:
    """Hand ``records`` to an ``AIOKafkaProducer`` a batch per partition; returns the futures
    that resolve once each batch is delivered.

    ``producer.send`` per record waits on topic metadata, rebuilds the topic's partition set
    and hashes the key every time; here the partitions are read once per topic and call, a
    key is hashed once per call (or once while ``placement`` remembers it), and a
    partition's records go in one ``send_batch``. Records keep their order within a
    partition. A record keyed ``k`` lands where ``send`` would put it (the default murmur2
    partitioner on the same partition list). A record larger than a batch goes alone in one,
    as with ``send``.

    The partitions' batches are handed over concurrently, so that all of them reach the
    producer's queue before its sender next drains it and travel in one produce request.
    ``send_batch`` waits while its partition still holds an undrained batch (the previous
    request to the broker is in flight); handed over one after another, the first such wait
    let the sender go with the batches queued so far and split the call into several small
    requests, each costing the broker and the worker a round of request handling.
    """
    if placement is None:
        placement = Placement()
    groups: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
    partitions: dict[str, list[int]] = {}
    for topic, partition, key, value in records:
        if partition is None:
            every = partitions.get(topic)
            if every is None:
                every = partitions[topic] = await placement.partitions(producer, topic)
            partition = placement.place(topic, key, every)
        groups.setdefault((topic, partition), []).append((key, value))
    sends = []
    for (topic, partition), items in groups.items():
        batch = producer.create_batch()
        batches = [batch]
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:  # batch full
                batch = producer.create_batch()
                batches.append(batch)
                # The first record of a batch is always taken, whatever its size.
                batch.append(key=key, value=value, timestamp=None)
        sends.append(_send_in_order(producer, topic, partition, batches))
    if len(sends) == 1:
        return await sends[0]
    # Every partition's hand-over settles before an error is raised, so none is left
    # running unobserved behind a failure.
    settled = await asyncio.gather(*sends, return_exceptions=True)
    futures: list[asyncio.Future[Any]] = []
    for outcome in settled:
        if isinstance(outcome, BaseException):
            raise outcome
        futures.extend(outcome)
    return futures


async def _send_in_order(producer: Any, topic: str, partition: int, batches: list[Any]
                         ) -> list[asyncio.Future[Any]]:
    """A partition's batches to the producer one after another, keeping their order."""
    return [await producer.send_batch(batch, topic, partition=partition) for batch in batches]


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
        self.placement = Placement()

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
        return await produce(self.producer(), records, self.placement)


class InFlight:
    """Batches awaiting delivery, bounded; acks in the order batches were added.

    The bound is ``limit`` batches, or, with ``batch_size``, ``limit`` full batches' worth of
    events (``limit * batch_size``) in at most :data:`MAX_BATCHES` batches. Under a backlog
    batches are full and both bounds agree; at a low rate batches hold a few events each, and
    counting them as full ones would block the agent on a slow acknowledgement while a
    fraction of the budget is in flight.

    ``observe``, if given, receives each batch's delivery time in seconds: from :meth:`add`
    to the last of its deliveries acknowledged by the broker.
    """

    def __init__(self, stream: faust.StreamT, *, limit: int = 4, batch_size: int | None = None,
                 observe: Callable[[float], None] | None = None) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.stream = stream
        self.max_events = limit * batch_size if batch_size is not None else None
        self.max_batches = MAX_BATCHES if batch_size is not None else limit
        self.observe = observe
        self._tasks: deque[tuple[asyncio.Future[None], int]] = deque()
        self._events = 0

    def __len__(self) -> int:
        return len(self._tasks)

    def _full(self) -> bool:
        return (len(self._tasks) >= self.max_batches
                or (self.max_events is not None and self._events >= self.max_events))

    async def add(self, events: Sequence[faust.EventT], deliveries: Sequence[Awaitable[Any]],
                  *, on_delivered: Callable[[Sequence[Any]], None] | None = None) -> None:
        """Track one batch; returns once the in-flight batches are within the bound. A failed
        delivery is raised here (on this or a later call): its batch and every later one stay
        unacknowledged, so they are redelivered. ``on_delivered`` is called with the
        deliveries' results once they all succeeded and every earlier batch settled, before
        the batch is acknowledged."""
        previous = self._tasks[-1][0] if self._tasks else None
        task = asyncio.ensure_future(self._settle(events, deliveries, previous,
                                                  time.perf_counter(), on_delivered))
        # Later batches fail with the first failure; one raise is enough, not a log per task.
        task.add_done_callback(retrieve)
        self._tasks.append((task, len(events)))
        self._events += len(events)
        while self._tasks and (self._full() or self._tasks[0][0].done()):
            await self._pop()

    async def _pop(self) -> None:
        task, n = self._tasks.popleft()
        self._events -= n
        await task

    async def drain(self) -> None:
        """Wait for every batch in flight (and raise the first failure)."""
        while self._tasks:
            await self._pop()

    async def _settle(self, events: Sequence[faust.EventT],
                      deliveries: Sequence[Awaitable[Any]],
                      previous: asyncio.Future[None] | None, started: float,
                      on_delivered: Callable[[Sequence[Any]], None] | None) -> None:
        results = await asyncio.gather(*deliveries)
        if self.observe is not None:
            self.observe(time.perf_counter() - started)
        if previous is not None:
            await asyncio.shield(previous)  # ack after every earlier batch, never before
        if on_delivered is not None:
            on_delivered(results)
        for event in events:
            await self.stream.ack(event)


def retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's outcome as seen (a done callback): a failure raised elsewhere, or one
    that stopped the agent, is not logged again as never retrieved."""
    if not future.cancelled():
        future.exception()
