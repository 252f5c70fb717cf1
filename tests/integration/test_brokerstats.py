"""The local broker's request counts, read over JMX by ``tickcast_bench.brokerstats``."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest
from tickcast_bench import brokerstats
from tickcast_bench.harness import delete_topics, local_broker
from tickcast_bench.processes import BenchError

from tickcast.streams.topics import TopicSpec, ensure_topics

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("java") is None, reason="needs java")]


def test_produce_requests_are_counted_one_per_flushed_send(kafka_bootstrap: str) -> None:
    from kafka import KafkaProducer

    pid = local_broker().status().pid
    assert pid is not None
    prefix = f"jmx{uuid.uuid4().hex[:6]}-"
    ensure_topics([kafka_bootstrap], [TopicSpec(f"{prefix}t", 1, 1)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(f"{prefix}t", b"warm").get(timeout=30)  # metadata and connection first
        before = brokerstats.sample(pid)
        for i in range(5):  # one request each: the next send waits for the last ack
            producer.send(f"{prefix}t", b"%d" % i).get(timeout=30)
        after = brokerstats.sample(pid)
    finally:
        producer.close()
        delete_topics(kafka_bootstrap, prefix)
    # Other clients may share the broker: at least ours, never fewer.
    assert after.requests["Produce"] - before.requests["Produce"] >= 5
    assert after.cpu_s >= before.cpu_s
    rates = brokerstats.per_thousand(before, after, outputs=5)
    assert rates["Produce"] >= 1000.0
    assert rates["cpu_us"] >= 0.0


def test_a_broker_that_is_gone_is_a_clear_error() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now (not a JVM's: attaching signals the target)
    with pytest.raises(BenchError, match="could not read the broker's request counts"):
        brokerstats.sample(gone.pid)
