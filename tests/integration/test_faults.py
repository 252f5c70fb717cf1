"""Faults on the real broker: killed workers, rebalances and a restarted broker lose nothing."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.integration.conftest import RunningWorker, consume, produce
from tickcast.localkafka import LocalKafka
from tickcast.models.registry import ModelStore
from tickcast.streams.worker import EXIT_AGENT_CRASHED

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WINDOW = 10
REPO = Path(__file__).resolve().parents[2]
Tick = tuple[str, int, float]


def _ticks(symbols: int, steps: int, *, name: str = "K") -> list[Tick]:
    return [(f"{name}{s}", 1_700_000_000_000 + step * 60_000,
             100.0 + ((step * 7 + s) % 13) * 0.1) for step in range(steps) for s in range(symbols)]


def _feed(bootstrap: str, topic: str, ticks: list[Tick], done: threading.Event, *,
          per_pause: int = 60, pause: float = 0.1) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i, (symbol, ts, price) in enumerate(ticks):
        producer.send(topic, key=symbol.encode(), value=json.dumps(
            {"symbol": symbol, "ts": ts, "price": price}).encode())
        if i % per_pause == 0:
            time.sleep(pause)
    producer.flush()
    producer.close()
    done.set()


def _start_feed(worker: RunningWorker, ticks: list[Tick]
                ) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()
    feeder = threading.Thread(target=_feed, args=(worker.bootstrap, f"{worker.prefix}prices",
                                                   ticks, done))
    feeder.start()
    return feeder, done


def _sigkill_after(worker: RunningWorker, forecasts: int) -> None:
    """SIGKILL ``worker`` once it has made ``forecasts`` forecasts (mid-stream)."""
    deadline = time.monotonic() + 60
    while (worker.value("tickcast_ticks_total", outcome="forecast") or 0) < forecasts:
        assert time.monotonic() < deadline, "the worker to be killed produced no forecasts"
        time.sleep(0.05)
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()


def _forecast_loss(bootstrap: str, prefix: str, ticks: list[Tick], *, title: str,
                   timeout: float = 60) -> tuple[set[tuple[str, int]], int]:
    """Unique forecasts on ``forecasts`` vs every tick past each symbol's warm-up; prints the
    figures and returns (lost, duplicates)."""
    symbols = sorted({s for s, _, _ in ticks})
    first_ts = min(ts for _, ts, _ in ticks)
    warm = {(s, first_ts + step * 60_000) for step in range(WINDOW - 1) for s in symbols}
    wanted = {(s, ts) for s, ts, _ in ticks} - warm
    def keys_of(records: list[tuple[bytes | None, bytes]]) -> Counter[tuple[str, int]]:
        return Counter((r["symbol"], r["ts"]) for r in (json.loads(v) for _, v in records))

    records = consume(bootstrap, f"{prefix}forecasts", expected=len(wanted) + 20_000,
                      timeout=timeout, until=lambda got: wanted <= set(keys_of(got)))
    keys = keys_of(records)
    lost = wanted - set(keys)
    duplicates = sum(n - 1 for n in keys.values())
    print(f"\n{title}: {len(ticks)} ticks, {len(wanted)} forecasts expected, {len(keys)} unique, "
          f"{len(lost)} lost, {duplicates} duplicates")
    if lost:
        letters = [json.loads(v) for _, v in consume(
            bootstrap, f"{prefix}dead-letters", expected=10_000, timeout=5)]
        print("dead letters:", Counter(d["reason"] for d in letters), "lost e.g.",
              sorted(lost)[:5])
    assert set(keys) <= wanted, "forecasts for ticks that were never produced"
    return lost, duplicates


@pytest.mark.parametrize("state_store", ["memory", "rocksdb"])
def test_sigkill_mid_stream_then_restart_loses_no_forecast(
        start_worker, store: ModelStore, state_store: str) -> None:
    """With RocksDB the restarted worker reads its own databases (the same state directory),
    which must hold nothing the changelog lacks after a kill with batches in flight."""
    env = {"TICKCAST_MODEL_DIR": str(store.root), "TICKCAST_STATE_STORE": state_store}
    first = start_worker(**env)
    ticks = _ticks(5, 600)
    # 3,000 ticks at ~600/s, while the worker is killed and replaced
    feeder, done = _start_feed(first, ticks)
    _sigkill_after(first, 500)
    second = start_worker(prefix=first.prefix, **env)
    feeder.join(timeout=120)
    assert done.is_set()
    lost, _ = _forecast_loss(second.bootstrap, second.prefix, ticks, title="SIGKILL + restart")
    assert not lost


def test_two_workers_one_killed_the_survivor_takes_over(start_worker,
                                                        store: ModelStore) -> None:
    """The survivor recovers the dead worker's state and processes its partitions from their
    last commit (the dead worker never committed some of them). A fetch that spans the
    rebalance must not leave a changelog or an uncommitted partition past records nobody
    processed (``DeliverWithoutTasks.getmany``)."""
    killed = start_worker(TICKCAST_MODEL_DIR=str(store.root))
    survivor = start_worker(prefix=killed.prefix, TICKCAST_MODEL_DIR=str(store.root))
    wait_for(lambda: (killed.value("tickcast_assigned_partitions", topic="prices") or 0)
             + (survivor.value("tickcast_assigned_partitions", topic="prices") or 0) == 4
             and (survivor.value("tickcast_assigned_partitions", topic="prices") or 0) > 0,
             "the two workers to share the prices partitions", timeout=60)
    ticks = _ticks(12, 300, name="T")
    feeder, done = _start_feed(killed, ticks)
    _sigkill_after(killed, 300)
    feeder.join(timeout=120)
    assert done.is_set()
    # The broker expels the dead member after the session timeout (10 s); its partitions move.
    wait_for(lambda: survivor.value("tickcast_assigned_partitions", topic="prices") == 4,
             "the survivor to own every prices partition", timeout=60)
    lost, _ = _forecast_loss(survivor.bootstrap, survivor.prefix, ticks,
                             title="two workers, one SIGKILLed")
    assert survivor.proc.poll() is None
    assert not lost


def _unique_outputs(bootstrap: str, prefix: str, forecasts: set[tuple[str, int]],
                    texts: set[str], *, timeout: float) -> tuple[int, set, int]:
    """Read ``forecasts`` and ``sentiment`` until every expected key is there (or
    ``timeout``): (unique outputs, the expected keys missing, duplicates)."""
    def keys(records: list[tuple[bytes | None, bytes]], field: str) -> Counter:
        return Counter(tuple(r[f] for f in field.split(",")) if "," in field else r[field]
                       for r in (json.loads(v) for _, v in records))

    got_forecasts = keys(consume(bootstrap, f"{prefix}forecasts", expected=10**7,
                                 timeout=timeout, until=lambda got: forecasts <= set(
                                     keys(got, "symbol,ts"))), "symbol,ts")
    got_texts = keys(consume(bootstrap, f"{prefix}sentiment", expected=10**7, timeout=60,
                             until=lambda got: texts <= set(keys(got, "id"))), "id")
    assert set(got_forecasts) <= forecasts, "forecasts for ticks that were never produced"
    assert set(got_texts) <= texts, "sentiment for texts that were never produced"
    lost = (forecasts - set(got_forecasts)) | (texts - set(got_texts))
    duplicates = sum(n - 1 for n in got_forecasts.values()) + sum(
        n - 1 for n in got_texts.values())
    return len(got_forecasts) + len(got_texts), lost, duplicates


@pytest.mark.parametrize("round_", [1, 2])
def test_two_workers_starting_together_process_every_event(
        kafka_bootstrap: str, tmp_path, store: ModelStore, round_: int) -> None:
    """Two workers join one group at once while 80k events wait, and rebalance: every event
    gets its output, counted by unique key against the expected set. Faust's post-recovery
    queue clearing (``KeepFetchedOnResume``) and its seek race (``SeekWithFlowStopped``) each
    lost events here in some runs; two rounds give the race two chances."""
    import uuid

    from tickcast_bench.harness import (
        BenchConfig,
        Target,
        delete_topics,
        expected_outputs,
        produce_input,
        run_topic_specs,
    )
    from tickcast_bench.processes import Workers

    from tickcast.streams.topics import ensure_topics

    prefix = f"stall{uuid.uuid4().hex[:6]}-"
    config = BenchConfig(ticks=60_000, symbols=50, texts=20_000)
    ensure_topics([kafka_bootstrap], run_topic_specs(kafka_bootstrap, prefix, 8))
    try:
        produce_input(kafka_bootstrap, prefix, config)
        forecasts, texts = expected_outputs(config, window=WINDOW)
        target = Target(bootstrap=kafka_bootstrap, model_dir=store.root)
        with Workers(2, target, log_dir=tmp_path, name=f"{prefix}app", prefix=prefix,
                     app_id=f"{prefix}app", partitions=8) as workers:
            workers.wait_ready()
            unique, lost, duplicates = _unique_outputs(kafka_bootstrap, prefix, forecasts,
                                                       texts, timeout=150)
        print(f"\ntwo workers joining, round {round_}: {len(forecasts) + len(texts)} outputs "
              f"expected, {unique} unique, {len(lost)} lost, {duplicates} duplicates")
        assert not lost, f"lost e.g. {sorted(lost, key=str)[:5]}; logs: {workers.logs}"
        assert unique == len(forecasts) + len(texts)
    finally:
        delete_topics(kafka_bootstrap, prefix)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own (its data dir in tmp_path), free to stop and restart."""
    from tests.helpers import free_port

    broker = LocalKafka(kafka_home=REPO / "deploy" / "kafka", state_dir=tmp_path / "broker",
                        port=free_port(), controller_port=free_port())
    broker.up(wait=120)
    try:
        yield broker
    finally:
        broker.down()


def _texts(start: int, n: int) -> list[tuple[bytes, bytes]]:
    words = ["great gain, strong buy", "awful loss, terrible news", "fine day", "bad outlook"]
    return [(f"r{i}".encode(), json.dumps({"id": f"r{i}", "ts": 1_700_000_000_000 + i,
                                           "text": words[i % 4], "label": int(i % 4 in (0, 2))})
             .encode()) for i in range(start, start + n)]


def test_broker_stop_and_start_workers_reconnect_and_lose_nothing(
        own_broker, start_worker, store: ModelStore) -> None:
    from tests.integration.conftest import produce

    bootstrap = own_broker.bootstrap
    worker = start_worker(TICKCAST_KAFKA_BOOTSTRAP=bootstrap, TICKCAST_MODEL_DIR=str(store.root))
    prefix = worker.prefix
    ticks = _ticks(4, 200, name="B")
    half = len(ticks) // 2

    def send(tick_part: list[Tick], texts: list[tuple[bytes, bytes]]) -> None:
        produce(bootstrap, [(f"{prefix}prices", s.encode(), json.dumps(
            {"symbol": s, "ts": ts, "price": p}).encode()) for s, ts, p in tick_part]
            + [(f"{prefix}texts", k, v) for k, v in texts])

    def outputs() -> float:
        return sum(worker.value("tickcast_events_out_total", topic=t) or 0
                   for t in ("forecasts", "sentiment"))

    def window_labels() -> float:
        return sum(worker.value("tickcast_sentiment_auc_window_labels", model="rnn",
                                label=label) or 0 for label in ("0", "1"))

    send(ticks[:half], _texts(0, 200))
    first_wave = half - 4 * (WINDOW - 1) + 200
    wait_for(lambda: outputs() >= first_wave, "the first wave's outputs", timeout=90)
    labels_before = window_labels()
    scored_before = worker.value("tickcast_forecast_window_size") or 0

    own_broker.down()
    time.sleep(8)  # long enough for fetches, commits and heartbeats to fail
    assert worker.proc.poll() is None, f"the worker died with the broker:\n{worker.log()}"
    own_broker.up(wait=120)

    send(ticks[half:], _texts(200, 200))
    wait_for(lambda: outputs() >= first_wave + (len(ticks) - half) + 200,
             "the second wave's outputs after the broker came back", timeout=120)
    assert worker.proc.poll() is None
    lost, _ = _forecast_loss(bootstrap, prefix, ticks, title="broker stop/start")
    assert not lost
    sent = {f"r{i}" for i in range(400)}

    def ids(records: list[tuple[bytes | None, bytes]]) -> set[str]:
        return {json.loads(v)["id"] for _, v in records}

    sentiment = ids(consume(bootstrap, f"{prefix}sentiment", expected=10_000, timeout=30,
                            until=lambda got: sent <= ids(got)))
    scored_after = worker.value("tickcast_forecast_window_size") or 0
    print(f"texts: 400 sent, {len(sentiment)} scored; AUC window {labels_before:.0f} -> "
          f"{window_labels():.0f} labels; forecast window {scored_before:.0f} -> "
          f"{scored_after:.0f}")
    assert sentiment == sent
    # Rolling metrics continue across the outage: the windows grew, they were not reset.
    assert labels_before == 200
    assert window_labels() == 400
    assert scored_after > scored_before


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_burst_of_ten_times_the_rate_is_absorbed_lag_recovers_memory_bounded(
        start_worker, store: ModelStore) -> None:
    worker = start_worker(TICKCAST_MODEL_DIR=str(store.root))
    symbols, normal = 20, 200  # ticks/s
    ticks = _ticks(symbols, 400, name="U")  # 8,000 ticks: 5 s normal, 3 s at 10x, then normal
    phases = [(ticks[:1_000], normal), (ticks[1_000:7_000], normal * 10),
              (ticks[7_000:], normal)]
    done = threading.Event()

    def feed() -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=worker.bootstrap, acks=1, linger_ms=5)
        for part, rate in phases:
            started = time.monotonic()
            for i, (symbol, ts, price) in enumerate(part):
                producer.send(f"{worker.prefix}prices", key=symbol.encode(), value=json.dumps(
                    {"symbol": symbol, "ts": ts, "price": price}).encode())
                if i % 50 == 0:
                    time.sleep(max(0.0, started + i / rate - time.monotonic()))
        producer.flush()
        producer.close()
        done.set()

    rss_before = _rss_mib(worker.proc.pid)
    feeder = threading.Thread(target=feed)
    feeder.start()
    max_lag, rss_peak = 0.0, rss_before
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        max_lag = max(max_lag, worker.value("tickcast_consumer_lag", topic="prices") or 0)
        rss_peak = max(rss_peak, _rss_mib(worker.proc.pid))
        if done.is_set() and max_lag > 0 and worker.value(
                "tickcast_consumer_lag", topic="prices") == 0:
            break
        time.sleep(0.25)
    feeder.join(timeout=10)
    final_lag = worker.value("tickcast_consumer_lag", topic="prices")
    print(f"\nburst: {len(ticks)} ticks ({normal}/s, then {normal * 10}/s for 6,000 ticks); "
          f"max exported lag {max_lag:.0f}, final {final_lag:.0f}; RSS {rss_before:.0f} -> "
          f"peak {rss_peak:.0f} MiB")
    assert done.is_set()
    assert max_lag > 0, "the burst never showed as consumer lag"
    assert final_lag == 0, "lag did not recover"
    assert rss_peak - rss_before < 200, "memory grew with the burst"
    lost, _ = _forecast_loss(worker.bootstrap, worker.prefix, ticks, title="burst")
    assert not lost


CRASH_HOOK = """
import os

if os.environ.get("TEST_CRASH_BATCH"):  # the sentiment agent raises on this batch
    from tickcast.streams.sentiment import processor as _processor

    _process, _calls = _processor.SentimentProcessor.process, [0]

    def _crashing(self, batch):
        _calls[0] += 1
        if _calls[0] == int(os.environ["TEST_CRASH_BATCH"]):
            raise RuntimeError("injected by the test")
        return _process(self, batch)

    _processor.SentimentProcessor.process = _crashing
"""


def test_an_agent_that_raises_exits_the_worker_and_a_restart_redelivers_its_batch(
        start_worker, tmp_path: Path) -> None:
    """Faust would restart the agent in place: the failed batch was then never output or
    committed until a restart, and the worker ignored SIGTERM (its shutdown waited for
    that batch). The worker exits instead, and its replacement outputs the batch."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASH_HOOK, encoding="utf-8")
    first = start_worker(TICKCAST_BATCH_SIZE="10", PYTHONPATH=str(hook), TEST_CRASH_BATCH="2")
    texts = [(f"{first.prefix}texts", b"k",
              json.dumps({"id": f"c{i}", "ts": 1, "text": "a good day"}).encode())
             for i in range(50)]
    for start in range(0, len(texts), 10):
        produce(first.bootstrap, texts[start:start + 10])
        time.sleep(0.5)
    assert first.proc.wait(timeout=60) == EXIT_AGENT_CRASHED
    assert "injected by the test" in first.log()
    assert f"exiting with status {EXIT_AGENT_CRASHED}" in first.log()
    second = start_worker(prefix=first.prefix)
    records = consume(second.bootstrap, f"{first.prefix}sentiment", expected=len(texts))
    assert {json.loads(value)["id"] for _, value in records} == {f"c{i}" for i in range(50)}
