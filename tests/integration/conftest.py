"""Integration fixtures: a real worker process against the session's real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tickcast_bench.harness import delete_topics

from tests.helpers import free_port
from tickcast.scrape import Samples, scrape, wait_for_metrics


@dataclass
class RunningWorker:
    proc: subprocess.Popen
    metrics_url: str
    prefix: str
    bootstrap: str
    log_path: Path

    def metrics(self) -> Samples:
        return scrape(self.metrics_url)

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics().value(name, **labels)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s; nothing if it already exited."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def worker_env(*, bootstrap: str, prefix: str, state_dir: Path, port: int,
               **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    env.update({
        "TICKCAST_KAFKA_BOOTSTRAP": bootstrap,
        "TICKCAST_TOPIC_PREFIX": prefix,
        "TICKCAST_APP_ID": f"{prefix}app",
        "TICKCAST_TOPIC_PARTITIONS": "4",
        "TICKCAST_METRICS_PORT": str(port),
        "TICKCAST_STATE_DIR": str(state_dir),
        "TICKCAST_BATCH_WITHIN_MS": "20",
        **extra,
    })
    return env


@pytest.fixture
def owned_prefix(kafka_bootstrap: str) -> Iterator[str]:
    """A unique topic prefix on the session's broker; its topics are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    yield prefix
    delete_topics(kafka_bootstrap, prefix)


@pytest.fixture
def start_worker(kafka_bootstrap: str, tmp_path: Path
                 ) -> Iterator[Callable[..., RunningWorker]]:
    """Start ``tickcast worker`` processes (unique topics per test); stopped at teardown."""
    started: list[RunningWorker] = []

    def start(prefix: str | None = None, **extra: str) -> RunningWorker:
        prefix = prefix or f"t{uuid.uuid4().hex[:10]}-"
        port = free_port()
        log_path = tmp_path / f"worker-{len(started)}.log"
        env = worker_env(bootstrap=kafka_bootstrap, prefix=prefix, state_dir=tmp_path / "state",
                         port=port, **extra)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "tickcast", "worker"], env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
        worker = RunningWorker(proc, f"http://127.0.0.1:{port}/metrics", prefix,
                               kafka_bootstrap, log_path)
        started.append(worker)
        try:
            wait_for_metrics(worker.metrics_url, timeout=90, proc=proc)
            deadline = time.monotonic() + 90
            while not (worker.value("tickcast_ready")
                       and worker.value("tickcast_assigned_partitions", topic="texts")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the worker exited or never became ready")
                time.sleep(0.2)
        except (RuntimeError, TimeoutError, OSError) as exc:
            pytest.fail(f"worker did not start: {exc}\n{worker.log()}")
        return worker

    yield start
    for worker in started:
        worker.stop()
    # The session's broker may be the project's long-lived one: leave no topics behind.
    for prefix in {worker.prefix for worker in started}:
        delete_topics(kafka_bootstrap, prefix)


def consume(bootstrap: str, topic: str, *, expected: int, timeout: float = 60.0,
            until: Callable[[list[tuple[bytes | None, bytes]]], bool] | None = None,
            ) -> list[tuple[bytes | None, bytes]]:
    """Read ``topic`` from the beginning until ``expected`` records, ``until(records)`` is
    true (checked when the topic goes quiet for a second) or ``timeout``."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=1000)
    records: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for message in consumer:
                records.append((message.key, message.value))
                if len(records) >= expected:
                    break
            if until is not None and until(records):
                break
    finally:
        consumer.close()
    return records


def produce(bootstrap: str, records: list[tuple[str, bytes | None, bytes]]) -> None:
    """Send ``(topic, key, value)`` with a plain kafka-python producer, acks=all."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        futures = [producer.send(topic, key=key, value=value) for topic, key, value in records]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()
