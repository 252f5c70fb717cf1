"""``produce``: a batch per partition, landing where ``AIOKafkaProducer.send`` puts each key."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tickcast_bench.harness import delete_topics

from tickcast.streams.delivery import produce
from tickcast.streams.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


def test_batches_land_where_send_puts_each_key_in_order_oversized_included(
        kafka_bootstrap: str) -> None:
    prefix = f"produce{uuid.uuid4().hex[:6]}-"
    batched, reference = f"{prefix}batched", f"{prefix}sent"
    ensure_topics([kafka_bootstrap], [TopicSpec(batched, 6, 1), TopicSpec(reference, 6, 1)])
    try:
        _check_placement(kafka_bootstrap, batched, reference)
    finally:
        delete_topics(kafka_bootstrap, prefix)


def _check_placement(kafka_bootstrap: str, batched: str, reference: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    keys = [f"S{i % 40:03d}".encode() for i in range(600)]
    big = b"x" * 40_000  # larger than a 16 KiB batch: a batch of its own

    async def scenario() -> tuple[dict[bytes, set[int]], dict[bytes, set[int]],
                                  list[tuple[int, bytes, bytes]]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                                    max_batch_size=16_384, max_request_size=1_048_576)
        await producer.start()
        try:
            records = [(batched, None, k, b"%d" % i) for i, k in enumerate(keys)]
            records.insert(300, (batched, None, keys[300], big))
            records.append((batched, 2, None, b"explicit"))  # a given partition is kept
            futures = await produce(producer, records)
            await asyncio.gather(*futures)
            await asyncio.gather(*[await producer.send(reference, b"", k) for k in set(keys)])
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(batched, reference, bootstrap_servers=kafka_bootstrap,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        got: list[tuple[int, bytes, bytes]] = []
        where: dict[str, dict[bytes, set[int]]] = {batched: {}, reference: {}}
        try:
            while len(got) < len(records) or len(where[reference]) < len(set(keys)):
                for tp, messages in (await consumer.getmany(timeout_ms=5000)).items():
                    for m in messages:
                        if m.key is not None:
                            where[tp.topic].setdefault(m.key, set()).add(tp.partition)
                        if tp.topic == batched:
                            got.append((tp.partition, m.key, m.value))
        finally:
            await consumer.stop()
        return where[batched], where[reference], got

    placed, expected, got = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert placed == expected  # every key on the one partition send() chose for it
    assert len(got) == len(keys) + 2
    assert (2, None, b"explicit") in got
    assert sum(1 for _, _, v in got if v == big) == 1
    for partition in range(6):  # within a partition, the order records were given in
        values = [int(v) for p, _, v in got if p == partition and v not in (big, b"explicit")]
        assert values == sorted(values)
