"""InFlight: acks only after delivery, strictly in batch order, with a bounded backlog;
``produce``: a call's partitions handed to the producer together."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from tickcast.streams.delivery import InFlight, Placement, produce


class FakeStream:
    def __init__(self) -> None:
        self.acked: list[str] = []

    async def ack(self, event: str) -> bool:
        self.acked.append(event)
        return True


def test_acks_after_delivery_in_batch_order_even_when_deliveries_finish_out_of_order() -> None:
    async def scenario() -> list[list[str]]:
        loop = asyncio.get_running_loop()
        stream = FakeStream()
        inflight = InFlight(stream, limit=3)  # type: ignore[arg-type]
        first, second = loop.create_future(), loop.create_future()
        await inflight.add(["a1", "a2"], [first])
        await inflight.add(["b1"], [second])
        seen = [list(stream.acked)]
        second.set_result(None)  # the later batch is delivered first
        await asyncio.sleep(0.01)
        seen.append(list(stream.acked))
        first.set_result(None)
        await inflight.drain()
        seen.append(list(stream.acked))
        return seen

    assert asyncio.run(scenario()) == [[], [], ["a1", "a2", "b1"]]


def test_add_waits_while_the_limit_is_reached() -> None:
    async def scenario() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        inflight = InFlight(FakeStream(), limit=2)  # type: ignore[arg-type]
        slow = loop.create_future()
        await inflight.add(["a"], [slow])
        blocked = asyncio.ensure_future(inflight.add(["b"], []))
        await asyncio.sleep(0.01)
        was_blocked = not blocked.done()
        slow.set_result(None)
        await asyncio.wait_for(blocked, 1)
        return was_blocked, blocked.done()

    assert asyncio.run(scenario()) == (True, True)


def test_a_failed_delivery_is_raised_and_nothing_from_then_on_is_acked() -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        stream = FakeStream()
        inflight = InFlight(stream, limit=4)  # type: ignore[arg-type]
        ok, broken, later = (loop.create_future() for _ in range(3))
        await inflight.add(["a"], [ok])
        await inflight.add(["b"], [broken])
        await inflight.add(["c"], [later])
        ok.set_result(None)
        broken.set_exception(RuntimeError("broker said no"))
        later.set_result(None)
        with pytest.raises(RuntimeError, match="broker said no"):
            await inflight.drain()
        await asyncio.sleep(0.01)
        return stream.acked

    assert asyncio.run(scenario()) == ["a"]


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        InFlight(FakeStream(), limit=0)  # type: ignore[arg-type]


def test_with_a_batch_size_the_bound_counts_events_not_batches() -> None:
    """Small batches (a low input rate) do not fill the bound as full ones would: a slow
    acknowledgement blocks the agent only once ``limit * batch_size`` events await it."""

    async def scenario() -> tuple[int, bool, bool]:
        loop = asyncio.get_running_loop()
        inflight = InFlight(FakeStream(), limit=2, batch_size=3)  # type: ignore[arg-type]
        slow = loop.create_future()
        for name in "abcde":  # five one-event batches, none delivered: 5 < 2 * 3
            await asyncio.wait_for(inflight.add([name], [slow]), 1)
        waiting = len(inflight)
        blocked = asyncio.ensure_future(inflight.add(["f"], [slow]))  # the sixth event
        await asyncio.sleep(0.01)
        was_blocked = not blocked.done()
        slow.set_result(None)
        await asyncio.wait_for(blocked, 1)
        return waiting, was_blocked, blocked.done()

    assert asyncio.run(scenario()) == (5, True, True)


def test_delivery_time_is_observed_once_per_batch() -> None:
    async def scenario() -> list[float]:
        loop = asyncio.get_running_loop()
        seen: list[float] = []
        inflight = InFlight(FakeStream(), limit=4, observe=seen.append)  # type: ignore[arg-type]
        first, second = loop.create_future(), loop.create_future()
        await inflight.add(["a"], [first, second])
        first.set_result(None)
        await asyncio.sleep(0.01)
        before = len(seen)
        second.set_result(None)
        await inflight.drain()
        return [before, *seen]

    before, *observed = asyncio.run(scenario())
    assert before == 0  # not while a delivery of the batch is still awaited
    assert len(observed) == 1
    assert observed[0] >= 0.0


def test_on_delivered_runs_in_batch_order_before_the_ack_and_never_for_a_failed_batch() -> None:
    """What a RocksDB store applies only once delivered: in batch order, with the results,
    before the batch is acknowledged; a failed batch and every later one apply nothing."""
    async def scenario() -> list[tuple[str, object]]:
        loop = asyncio.get_running_loop()
        stream = FakeStream()
        seen: list[tuple[str, object]] = []

        def applied(name: str) -> Callable[[Sequence[object]], None]:
            return lambda results: seen.append((name, (list(results), list(stream.acked))))

        inflight = InFlight(stream, limit=8)  # type: ignore[arg-type]
        a, b, c, d = (loop.create_future() for _ in range(4))
        await inflight.add(["a"], [a], on_delivered=applied("a"))
        await inflight.add(["b"], [b], on_delivered=applied("b"))
        await inflight.add(["c"], [c], on_delivered=applied("c"))
        await inflight.add(["d"], [d], on_delivered=applied("d"))
        b.set_result("meta-b")  # b delivered before a: applied after a all the same
        a.set_result("meta-a")
        c.set_exception(RuntimeError("broker said no"))
        d.set_result("meta-d")
        with pytest.raises(RuntimeError):
            await inflight.drain()
        await asyncio.sleep(0.01)
        return seen

    assert asyncio.run(scenario()) == [("a", (["meta-a"], [])), ("b", (["meta-b"], ["a"]))]


class _Producer:
    def __init__(self, partitions: set[int]) -> None:
        self.partitions = partitions

    async def partitions_for(self, topic: str) -> set[int]:
        return self.partitions


def test_placement_remembers_keys_and_forgets_them_when_partitions_change() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    reference = DefaultPartitioner()
    placement = Placement(limit=50)
    producer = _Producer(set(range(6)))
    keys = [f"S{i}".encode() for i in range(120)]  # beyond the limit: it starts again

    async def placed() -> list[int]:
        every = await placement.partitions(producer, "t")
        return [placement.place("t", k, every) for k in keys]

    six = list(range(6))
    assert asyncio.run(placed()) == [reference(k, six, six) for k in keys]
    assert len(placement._placed) <= 50
    producer.partitions = set(range(9))  # partitions added: keys move as send would move them
    nine = list(range(9))
    assert asyncio.run(placed()) == [reference(k, nine, nine) for k in keys]
    assert any(reference(k, six, six) != reference(k, nine, nine) for k in keys)


class _Batch:
    def __init__(self, room: int) -> None:
        self.records: list[bytes | None] = []
        self.room = room

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: None) -> object:
        if len(self.records) >= self.room:
            return None  # full, as aiokafka's BatchBuilder says it
        self.records.append(value)
        return object()

    def record_count(self) -> int:
        return len(self.records)


class _QueueingProducer:
    """``send_batch`` as aiokafka's: a partition whose earlier batch is still queued waits
    until the sender drains it (here, until ``drain`` is set)."""

    def __init__(self, *, queued: set[int], fail: set[int] = frozenset(), room: int = 100
                 ) -> None:
        self.queued, self.fail, self.room = queued, fail, room
        self.drain = asyncio.Event()
        self.handed: list[tuple[int, list[bytes | None]]] = []

    def create_batch(self) -> _Batch:
        return _Batch(self.room)

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int
                         ) -> asyncio.Future[Any]:
        if partition in self.queued:
            await self.drain.wait()
        if partition in self.fail:
            raise KafkaTimeoutError()
        self.handed.append((partition, batch.records))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(partition)
        return future


def test_a_partition_waiting_for_its_queue_holds_up_no_other_partition() -> None:
    """All of a call's partitions reach the queue before the sender drains it (one produce
    request), whichever partition still has a batch queued; a partition's batches keep their
    order."""
    async def scenario() -> tuple[list[int], list[tuple[int, list[bytes | None]]]]:
        producer = _QueueingProducer(queued={1}, room=2)
        records = [("t", p, None, b"%d-%d" % (p, i)) for i in range(3) for p in range(4)]
        call = asyncio.ensure_future(produce(producer, records))
        await asyncio.sleep(0)  # one turn of the loop, as a sender waiting for data gets
        await asyncio.sleep(0)
        before_drain = [p for p, _ in producer.handed]
        producer.drain.set()
        futures = await call
        assert sorted(await asyncio.gather(*futures)) == [0, 0, 1, 1, 2, 2, 3, 3]
        return before_drain, producer.handed

    before_drain, handed = asyncio.run(scenario())
    assert sorted(before_drain) == [0, 0, 2, 2, 3, 3]
    assert [records for p, records in handed if p == 1] == [[b"1-0", b"1-1"], [b"1-2"]]


def test_a_failed_hand_over_is_raised_once_every_partition_has_settled() -> None:
    async def scenario() -> _QueueingProducer:
        producer = _QueueingProducer(queued={0}, fail={0})
        producer.drain.set()
        with pytest.raises(KafkaTimeoutError):
            await produce(producer, [("t", p, None, b"v") for p in range(3)])
        return producer

    assert sorted(p for p, _ in asyncio.run(scenario()).handed) == [1, 2]
