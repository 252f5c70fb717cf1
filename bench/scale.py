"""Scale curves: what one worker costs as its work grows, one dimension at a time.

Each *point* of a curve is one fresh worker (its own app id) on fresh topics under a prefix of
its own, created as a run creates them and deleted afterwards (unless ``keep_topics``). Its
backlog is produced before the worker starts; the clock runs from "ready" (partitions
assigned, tables recovered: ``tickcast_ready``) until the worker's
``tickcast_events_in_total`` for the input topic(s) reaches the backlog (scraped every
:data:`SCRAPE_S`; dead letters count as consumed, and are reported). Every point reports:

* ``events_per_s``: backlog events over those seconds; ``ready_s``: spawn to ready;
* ``rss_ready_mib`` and ``rss_end_mib``: the worker's resident memory (VmRSS) when it
  said it was ready and once the backlog is consumed (what the state added is the
  difference); ``rss_peak_mib``: its peak (VmHWM, start-up and model loading included);
  ``cpu_s_per_1k_events``: its CPU seconds over the measured span per 1,000 events;
* ``topics``: each input topic's own rate over its own active span (from the last scrape
  before its first event to the first scrape that saw its last: at most one scrape interval
  longer than the truth), for backlogs that mix topics.

Dimensions (:class:`ScaleConfig` sets every size):

``symbols``
    The same ``ticks`` over N symbols (:func:`~tickcast_bench.harness.balanced_symbols`),
    for each state store (``TICKCAST_STATE_STORE``), in event-time order (step-major, a
    second apart per symbol). Each symbol's first W - 1 ticks only fill its window, so they
    come first and are timed apart (``warmup``): the point's rate is over the ``ticks`` that
    follow, every one a forecast, so each point does the same work per tick while the state
    held grows with N (:class:`SymbolWorkload`). Ticks are reported by outcome
    (``tickcast_ticks_total``) beside the expected split. Ten *probe* symbols
    (:data:`PROBES`) get W + 20 ticks at the start of the backlog. Once it is consumed (and
    its offsets committed, so every state write is delivered):

    a. the state changelog: what the worker wrote (``tickcast_state_changelog_bytes_total``
       and ``..._records_total``: key + value bytes, a tombstone counting its key), per 1,000
       ticks of the backlog; and the topic (``{app_id}-price-state-changelog``) read from its
       start to its end offsets (``changelog_kept``: what compaction has left by then, with
       ``live_bytes``, the last value per key);
    b. latency at a fixed offered rate: every :data:`PROBE_EVERY`-th tick goes to a probe
       (P0..P9 in turn), the others cycle over the N symbols, each continuing its own event
       time; the latency of a probe tick is its forecast's Kafka timestamp minus the time
       it was sent;
    c. recovery: SIGTERM, then a new worker with the same app id and the same state
       directory; one tick per probe is sent as soon as it is spawned.
       ``recovery_to_first_forecast_s``: spawn to the first of their forecasts (Kafka
       timestamp); a probe whose forecast never comes lost its window (``resumed_probes``
       counts those that did not).

``pending``
    Texts waiting for a label: ``TICKCAST_PENDING_MAX`` = N and N + ``pending_extra`` texts
    without a label, so the join ends with N texts pending. Texts/s and memory against
    ``default``: the default configuration on as many labelled texts as the largest point,
    measured in the same run.

``windows``
    The rolling evaluation windows, ``TICKCAST_AUC_WINDOW`` = ``TICKCAST_FORECAST_WINDOW``
    = w, on a backlog of labelled texts and ticks: texts/s and ticks/s each over its own
    active span, against the smallest w.

A point that fails (a worker that does not start, stalls or exits) is recorded with its
error and the run goes on to the next one.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from tickcast_bench.harness import (
    TS_BASE,
    LoadProducer,
    balanced_symbols,
    delete_topics,
    machine,
    run_topic_specs,
    served_forecaster,
)
from tickcast_bench.processes import BenchError, Target, Workers, proc_stats

from tickcast.errors import TickcastError
from tickcast.scrape import Samples, scrape

if TYPE_CHECKING:
    from kafka import KafkaConsumer

__all__ = [
    "DIMENSIONS",
    "PROBES",
    "PROBE_EVERY",
    "STORES",
    "Continuation",
    "ScaleConfig",
    "SymbolWorkload",
    "changelog_size",
    "labelled_texts",
    "latency_schedule",
    "plot_scale",
    "read_topic",
    "run_scale",
    "scale_table",
    "state_footprint",
    "tick_records",
    "topic_rates",
    "unlabelled_texts",
    "wait_committed",
]

DIMENSIONS: Final = ("symbols", "pending", "windows")
STORES: Final = ("memory", "rocksdb")
PROBES: Final = tuple(f"P{i}" for i in range(10))
PROBE_EXTRA: Final = 20
"""Ticks a probe gets beyond its window: it is forecasting when the backlog ends."""
PROBE_EVERY: Final = 10
"""One tick in this many of the latency run goes to a probe."""
TICK_OUTCOMES: Final = ("forecast", "replayed", "warming_up", "no_model")
SCRAPE_S: Final = 0.25
SETTLE_S: Final = 3.0
"""After the restarted worker has taken the probe ticks, how long a missing probe forecast is
waited for before it counts as lost."""

Record = tuple[str, bytes, bytes]
"""``(logical topic, key, value)``."""


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScaleConfig:
    dimensions: tuple[str, ...] = DIMENSIONS
    """Which curves to measure, in this order."""
    ticks: int = 200_000
    """Measured ticks over the N symbols of each ``symbols`` point (their warm-up and the
    probes' come on top)."""
    symbol_counts: tuple[int, ...] = (50, 500, 5_000, 50_000)
    stores: tuple[str, ...] = STORES
    """State stores of the ``symbols`` points (``TICKCAST_STATE_STORE``)."""
    pending_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    """``TICKCAST_PENDING_MAX`` of the ``pending`` points."""
    pending_extra: int = 20_000
    """Unlabelled texts beyond ``pending_max`` in each ``pending`` point."""
    windows: tuple[int, ...] = (500, 5_000, 50_000)
    """``TICKCAST_AUC_WINDOW`` = ``TICKCAST_FORECAST_WINDOW`` of the ``windows`` points."""
    window_texts: int = 60_000
    window_ticks: int = 100_000
    window_symbols: int = 50
    latency_rate: float = 500.0
    """Ticks/s offered in the ``symbols`` points' latency run."""
    latency_seconds: float = 20.0
    partitions: int = 8
    ready_timeout_s: float = 300.0
    """A worker (or its restart) that is not ready after this long is an error."""
    point_timeout_s: float = 1800.0
    """A backlog not consumed after this long from ready is an error."""
    keep_topics: bool = False
    """Keep each point's topics and its worker's state directory afterwards."""

    def __post_init__(self) -> None:
        unknown = [d for d in self.dimensions if d not in DIMENSIONS]
        if not self.dimensions or unknown:
            raise BenchError(f"scale dimensions {list(self.dimensions)}: expected one or more "
                             f"of {', '.join(DIMENSIONS)}")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise BenchError(f"scale dimensions {list(self.dimensions)} repeat one")
        bad_stores = [s for s in self.stores if s not in STORES]
        if "symbols" in self.dimensions and (not self.stores or bad_stores):
            raise BenchError(f"state stores {list(self.stores)}: expected one or more of "
                             f"{', '.join(STORES)}")
        for name, values, least in (("symbol_counts", self.symbol_counts, 1),
                                    ("pending_sizes", self.pending_sizes, 1),
                                    ("windows", self.windows, 2)):
            if not values or any(v < least for v in values):
                raise BenchError(f"{name}={list(values)}: expected one or more integers "
                                 f">= {least}")
            if list(values) != sorted(set(values)):
                raise BenchError(f"{name}={list(values)}: expected increasing values")
        if self.ticks < max(self.symbol_counts):
            raise BenchError(f"ticks={self.ticks} cannot give each of "
                             f"{max(self.symbol_counts)} symbols a tick: expected ticks >= "
                             "the largest symbol count")
        for name, value in (("pending_extra", self.pending_extra),
                            ("window_texts", self.window_texts),
                            ("window_ticks", self.window_ticks)):
            if value < 0:
                raise BenchError(f"{name}={value}: expected >= 0")
        if not 1 <= self.window_symbols <= max(self.window_ticks, 1):
            raise BenchError(f"window_symbols={self.window_symbols}: expected 1.."
                             f"{max(self.window_ticks, 1)} (window_ticks)")
        if self.window_texts + self.window_ticks == 0:
            raise BenchError("window_texts and window_ticks are both 0: a windows point "
                             "needs a backlog")
        if not (self.latency_rate > 0 and self.latency_seconds > 0
                and self.latency_rate * self.latency_seconds >= PROBE_EVERY):
            raise BenchError(f"latency_rate={self.latency_rate}, latency_seconds="
                             f"{self.latency_seconds}: expected positive values offering at "
                             f"least {PROBE_EVERY} ticks (one probe tick)")
        if not 1 <= self.partitions <= 1024:
            raise BenchError(f"partitions={self.partitions}: expected 1..1024")
        if not (self.ready_timeout_s > 0 and self.point_timeout_s > 0):
            raise BenchError("ready_timeout_s and point_timeout_s must be positive")

    @classmethod
    def quick(cls) -> ScaleConfig:
        """Tiny sizes: a check of the harness (minutes), not figures."""
        return cls(ticks=3000, symbol_counts=(10, 200), pending_sizes=(100, 1000),
                   pending_extra=500, windows=(50, 500), window_texts=1000, window_ticks=2000,
                   window_symbols=10, latency_rate=200.0, latency_seconds=3.0,
                   ready_timeout_s=180.0, point_timeout_s=300.0)


# -- workloads ----------------------------------------------------------------------------------
def _walk(count: int, steps: int, *, seed: int) -> np.ndarray:
    """``(steps, count)`` random-walk prices around 100."""
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (steps, count)), axis=0))


def _tick(symbol: str, ts: int, price: float) -> Record:
    return "prices", symbol.encode(), json.dumps(
        {"symbol": symbol, "ts": ts, "price": round(price, 4)}).encode()


def tick_records(symbols: Sequence[str], steps: int, *, seed: int = 1) -> Iterator[Record]:
    """``steps`` ticks of each of ``symbols`` in event-time order (step-major), a second
    apart per symbol from :data:`~tickcast_bench.harness.TS_BASE`."""
    prices = _walk(len(symbols), steps, seed=seed)
    for step in range(steps):
        ts = TS_BASE + step * 1000
        row = prices[step].tolist()
        for s, symbol in enumerate(symbols):
            yield _tick(symbol, ts, row[s])


@dataclass(frozen=True, slots=True)
class SymbolWorkload:
    """A ``symbols`` point's backlog, in event-time order within each part:

    1. the probes' ``window + 20`` ticks each;
    2. *warm-up*: each symbol's first ``window - 1`` ticks, which only fill its window;
    3. *measured*: ``measured_steps`` more ticks of each symbol, every one forecast.

    The clock of the point's rate covers part 3 alone, so every point measures the same work
    per tick (a forecast and its state write) whatever the number of symbols; parts 1-2 are
    timed apart (``warmup``)."""

    symbols: tuple[str, ...]
    measured_steps: int
    """Measured ticks per symbol."""
    window: int
    """The served forecaster's window."""
    probes: tuple[str, ...] = PROBES

    @classmethod
    def build(cls, *, ticks: int, count: int, partitions: int, window: int) -> SymbolWorkload:
        """``ticks`` measured ticks spread evenly over ``count`` symbols (the remainder is
        dropped)."""
        if count < 1 or ticks < count:
            raise BenchError(f"{ticks} ticks cannot give each of {count} symbols one")
        return cls(tuple(balanced_symbols(count, partitions)), ticks // count, window)

    @property
    def warm_steps(self) -> int:
        return self.window - 1

    @property
    def steps(self) -> int:
        """Ticks per symbol, warm-up included."""
        return self.warm_steps + self.measured_steps

    @property
    def probe_ticks(self) -> int:
        return self.window + PROBE_EXTRA

    @property
    def measured_ticks(self) -> int:
        return len(self.symbols) * self.measured_steps

    @property
    def warmup_ticks(self) -> int:
        """Ticks before the measured part: the probes' and every symbol's warm-up."""
        return len(self.symbols) * self.warm_steps + len(self.probes) * self.probe_ticks

    @property
    def ticks(self) -> int:
        """Every tick of the backlog, the probes' included."""
        return self.warmup_ticks + self.measured_ticks

    def expected_outcomes(self) -> dict[str, int]:
        """``tickcast_ticks_total`` by outcome once the backlog is consumed: each symbol's
        first ``window - 1`` ticks warm its window up, every later one is forecast."""
        warm = self.window - 1
        forecast = self.measured_ticks + len(self.probes) * (self.probe_ticks - warm)
        return {"forecast": forecast, "warming_up": self.ticks - forecast}

    def records(self) -> Iterator[Record]:
        yield from tick_records(self.probes, self.probe_ticks, seed=3)
        yield from tick_records(self.symbols, self.steps, seed=1)

    def continuation(self) -> Continuation:
        """Ticks after the backlog, each symbol's continuing its own time and price."""
        last: dict[str, tuple[int, float]] = {}
        for names, steps, seed in ((self.probes, self.probe_ticks, 3),
                                   (self.symbols, self.steps, 1)):
            row = _walk(len(names), steps, seed=seed)[-1].tolist()
            ts = TS_BASE + (steps - 1) * 1000
            last.update((name, (ts, price)) for name, price in zip(names, row, strict=True))
        return Continuation(last)


class Continuation:
    """Each symbol's next tick after its newest: one second later, the price a step of the
    same random walk on."""

    def __init__(self, last: Mapping[str, tuple[int, float]], *, seed: int = 2) -> None:
        self._last = dict(last)
        self._rng = np.random.default_rng(seed)

    def tick(self, symbol: str) -> tuple[int, bytes]:
        """``(ts, value)`` of ``symbol``'s next tick."""
        ts, price = self._last[symbol]
        ts, price = ts + 1000, price * math.exp(float(self._rng.normal(0, 0.01)))
        self._last[symbol] = ts, price
        return ts, _tick(symbol, ts, price)[2]


def latency_schedule(workload: SymbolWorkload, n: int) -> Iterator[tuple[str, bool]]:
    """The symbol of each of the latency run's ``n`` ticks and whether it is a probe: every
    :data:`PROBE_EVERY`-th (from the first) goes to the probes in turn, the others cycle over
    the workload's symbols."""
    probes, symbols = workload.probes, workload.symbols
    for i in range(n):
        if i % PROBE_EVERY == 0:
            yield probes[(i // PROBE_EVERY) % len(probes)], True
        else:
            yield symbols[(i - i // PROBE_EVERY - 1) % len(symbols)], False


def _texts(count: int, *, tag: str, labelled: bool) -> Iterator[Record]:
    from tickcast.training.data import sample_texts

    sample = sample_texts()
    ids, bodies = list(sample["id"]), list(sample["text"])
    labels = [int(v) for v in sample["label"]]
    for i in range(count):
        j = i % len(ids)
        text_id = f"{ids[j]}#{tag}{i}"
        event: dict[str, Any] = {"id": text_id, "ts": TS_BASE, "text": bodies[j]}
        if labelled:
            event["label"] = labels[j]
        yield "texts", text_id.encode(), json.dumps(event).encode()


def unlabelled_texts(count: int, *, tag: str = "u") -> Iterator[Record]:
    """``count`` texts (the shipped sample, cycled) with fresh ids and no label: each one
    waits in the join for a label that never comes."""
    return _texts(count, tag=tag, labelled=False)


def labelled_texts(count: int, *, tag: str = "l") -> Iterator[Record]:
    """``count`` texts with fresh ids and their label inline (matched as they are scored)."""
    return _texts(count, tag=tag, labelled=True)


# -- measurements -------------------------------------------------------------------------------
def changelog_size(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[str, int]:
    """Size of a changelog's ``(key, value)`` records: ``bytes`` (key + value; a tombstone
    counts its key), ``records``, ``tombstones``, ``keys`` (live keys at the end) and
    ``live_bytes`` (what compaction would leave: each live key's last record)."""
    total = count = tombstones = 0
    live: dict[bytes, int] = {}
    for key, value in records:
        k = key or b""
        size = len(k) + (len(value) if value is not None else 0)
        total += size
        count += 1
        if value is None:
            tombstones += 1
            live.pop(k, None)
        else:
            live[k] = size
    return {"records": count, "tombstones": tombstones, "bytes": total, "keys": len(live),
            "live_bytes": sum(live.values())}


def topic_rates(series: Sequence[tuple[float, Mapping[str, float]]],
                totals: Mapping[str, int]) -> dict[str, dict[str, float]]:
    """Each topic's rate over its own active span, from ``(seconds, {topic: consumed})``
    scrapes in time order: from the last scrape before its first event (or the first scrape)
    to the first scrape that saw all ``totals[topic]``. Topics not finished are left out."""
    out: dict[str, dict[str, float]] = {}
    for topic, total in totals.items():
        if total <= 0 or not series:
            continue
        start = series[0][0]
        for t, counts in series:
            if counts.get(topic, 0.0) > 0:
                break
            start = t
        end = next((t for t, counts in series if counts.get(topic, 0.0) >= total), None)
        if end is None:
            continue
        seconds = max(end - start, 1e-9)
        out[topic] = {"events": total, "seconds": seconds, "events_per_s": total / seconds}
    return out


def _produce(bootstrap: str, prefix: str, records: Iterable[Record]) -> dict[str, int]:
    """``records`` on the topics under ``prefix``; counts per logical topic."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=256 * 1024, compression_type=None)
    counts: Counter[str] = Counter()
    try:
        for topic, key, value in records:
            producer.send(f"{prefix}{topic}", key=key, value=value)
            counts[topic] += 1
        producer.flush()
    finally:
        producer.close()
    return dict(counts)


def _partitions(consumer: KafkaConsumer, topic: str, *, timeout: float = 30.0) -> list[Any]:
    from kafka import TopicPartition

    deadline = time.monotonic() + timeout
    while not (found := consumer.partitions_for_topic(topic)):
        if time.monotonic() > deadline:
            raise BenchError(f"topic {topic} has no partitions after {timeout:.0f}s")
        time.sleep(0.2)
    return [TopicPartition(topic, p) for p in sorted(found)]


def _reader(bootstrap: str, topic: str) -> KafkaConsumer:
    """A consumer of every partition of ``topic``, positioned at its end now: it reads what
    is written from here on."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False)
    try:
        tps = _partitions(consumer, topic)
        consumer.assign(tps)
        for tp, offset in consumer.end_offsets(tps).items():
            consumer.seek(tp, offset)
    except BaseException:
        consumer.close()
        raise
    return consumer


def read_topic(bootstrap: str, topic: str, *, timeout: float = 300.0
               ) -> Iterator[tuple[bytes | None, bytes | None]]:
    """``(key, value)`` of every record of ``topic`` from its start to its end offsets as
    they are when this starts."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, max_partition_fetch_bytes=8 * 2**20)
    try:
        tps = _partitions(consumer, topic)
        consumer.assign(tps)
        begin, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, begin[tp])
        left = {tp for tp in tps if end[tp] > begin[tp]}
        deadline = time.monotonic() + timeout
        while left:
            if time.monotonic() > deadline:
                raise BenchError(f"reading {topic} took more than {timeout:.0f}s")
            for tp, messages in consumer.poll(timeout_ms=500).items():
                for message in messages:
                    if message.offset < end[tp]:
                        yield message.key, message.value
            for tp in list(left):
                if consumer.position(tp) >= end[tp]:
                    left.discard(tp)
    finally:
        consumer.close()


def wait_committed(bootstrap: str, group: str, topic: str, *, timeout: float = 60.0) -> None:
    """Until ``group`` has committed every offset of ``topic``: an input is acked only once
    its outputs and state writes are delivered, so the changelog is then complete."""
    from kafka import KafkaAdminClient, KafkaConsumer

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tickcast-bench-scale")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        end = consumer.end_offsets(_partitions(consumer, topic))
        deadline = time.monotonic() + timeout
        while True:
            committed = admin.list_group_offsets({group: None}).get(group, {})
            lag = sum(max(offset - (committed[tp].offset if tp in committed else 0), 0)
                      for tp, offset in end.items())
            if lag == 0:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{group} still had {lag} offsets of {topic} to commit "
                                 f"after {timeout:.0f}s")
            time.sleep(0.5)
    finally:
        consumer.close()
        admin.close()


def _rss_mib(pid: int) -> float:
    """Resident memory of a live process now (VmRSS), MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def _events_in(samples: Samples, topic: str) -> float:
    return samples.total("tickcast_events_in_total", topic=topic)


def _outcomes(samples: Samples) -> dict[str, int]:
    return {o: int(samples.total("tickcast_ticks_total", outcome=o)) for o in TICK_OUTCOMES}


def _consume(workers: Workers, totals: Mapping[str, int], *, timeout: float,
             after: int | None = None) -> tuple[dict[str, Any], Samples]:
    """Scrape the (ready) worker until it has consumed ``totals`` events of each topic; the
    point's figures and the last scrape.

    ``after``: the measured span starts once the (single) topic has ``after`` events
    consumed: from the last scrape at or below it (at most one scrape interval early). The
    span before it is reported as ``warmup``."""
    url, child = workers.urls[0], workers.children[0]
    cpu0, rss_ready = proc_stats(child.pid)[0], _rss_mib(child.pid)
    t0 = time.monotonic()
    series: list[tuple[float, dict[str, float]]] = []
    cpus: list[float] = []
    while True:
        if child.exited():
            raise BenchError(f"the worker exited while consuming its backlog; see "
                             f"{workers.logs}")
        try:
            samples = scrape(url)
        except OSError:
            samples = None
        if samples is not None:
            counts = {topic: _events_in(samples, topic) for topic in totals}
            series.append((time.monotonic() - t0, counts))
            cpus.append(proc_stats(child.pid)[0])
            if all(counts[topic] >= n for topic, n in totals.items()):
                break
        if time.monotonic() - t0 > timeout:
            done = series[-1][1] if series else {}
            progress = ", ".join(f"{done.get(t, 0):.0f}/{n} {t}" for t, n in totals.items())
            raise BenchError(f"the worker consumed {progress} after {timeout:.0f}s; see "
                             f"{workers.logs}")
        time.sleep(SCRAPE_S)
    cpu1, rss_peak = proc_stats(child.pid)
    rss_end = _rss_mib(child.pid)
    events = sum(totals.values())
    dead = sum(samples.total("tickcast_events_in_total", topic=topic, outcome="dead_letter")
               for topic in totals)
    start, start_cpu, warmup = 0.0, cpu0, None
    if after is not None:
        (topic,) = totals
        i = max(i for i, (_, counts) in enumerate(series) if counts[topic] <= after or i == 0)
        start, start_cpu = series[i][0], cpus[i]
        done_before = int(series[i][1][topic])
        warmup = {"events": done_before, "seconds": start,
                  "events_per_s": done_before / max(start, 1e-9)}
        events -= done_before
    seconds = max(series[-1][0] - start, 1e-9)
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds,
            "rss_ready_mib": rss_ready, "rss_end_mib": rss_end, "rss_peak_mib": rss_peak,
            "cpu_s_per_1k_events": (cpu1 - start_cpu) / max(events, 1) * 1000,
            "worker_cores": (cpu1 - start_cpu) / seconds, "dead_letters": int(dead),
            "warmup": warmup, "topics": topic_rates(series, totals)}, samples


def _collect(consumer: KafkaConsumer, wanted: Iterable[tuple[str, int]], *,
             idle_s: float, timeout: float) -> dict[tuple[str, int], int]:
    """Kafka timestamps of the forecasts of ``wanted`` ``(symbol, ts)`` that ``consumer``
    reads, until it has them all, reads nothing for ``idle_s``, or ``timeout``."""
    targets = set(wanted)
    found: dict[tuple[str, int], int] = {}
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while len(found) < len(targets) and time.monotonic() < deadline:
        got = consumer.poll(timeout_ms=200)
        if got:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > idle_s:
            break
        for messages in got.values():
            for message in messages:
                record = json.loads(message.value)
                key = (record["symbol"], record["ts"])
                if key in targets and key not in found:
                    found[key] = message.timestamp
    return found


# -- one point ----------------------------------------------------------------------------------
@dataclass(slots=True)
class _Run:
    """What every point of a run shares."""

    config: ScaleConfig
    target: Target
    state: Path
    run_prefix: str
    window: int
    log: Callable[[str], None]
    points: int = 0
    failed: list[str] = field(default_factory=list)

    def prefix(self, tag: str) -> str:
        return f"{self.run_prefix}{tag}-"

    @contextlib.contextmanager
    def topics(self, prefix: str) -> Iterator[None]:
        """The point's topics, created now and deleted (with its worker's state) after it."""
        from tickcast.streams.topics import ensure_topics

        bootstrap = self.target.bootstrap
        ensure_topics([bootstrap], run_topic_specs(bootstrap, prefix, self.config.partitions))
        try:
            yield
        finally:
            if not self.config.keep_topics:
                with contextlib.suppress(TickcastError, OSError):
                    delete_topics(bootstrap, prefix)
                shutil.rmtree(self.state / f"{prefix}app-w0", ignore_errors=True)

    def start(self, target: Target, prefix: str) -> tuple[Workers, float]:
        """One worker of app ``{prefix}app`` (its state in ``{prefix}app-w0``), ready."""
        app_id = f"{prefix}app"
        started = time.monotonic()
        workers = Workers(1, target, log_dir=self.state, name=app_id, prefix=prefix,
                          app_id=app_id, partitions=self.config.partitions)
        try:
            workers.wait_ready(timeout=self.config.ready_timeout_s)
        except BaseException:
            workers.stop()
            raise
        return workers, time.monotonic() - started

    def point(self, name: str, measure: Callable[[], dict[str, Any]],
              **labels: Any) -> dict[str, Any]:
        """``measure()`` with ``labels``; a failure is logged and recorded, not raised."""
        self.points += 1
        started = time.monotonic()
        try:
            result = {**labels, **measure()}
        except TickcastError as exc:
            self.log(f"  {name}: FAILED: {exc}")
            self.failed.append(f"{name}: {exc}")
            return {**labels, "error": str(exc)}
        result["wall_s"] = time.monotonic() - started
        return result


def _with(target: Target, **settings: str) -> Target:
    """``target`` with extra ``TICKCAST_*`` worker settings (these win)."""
    names = {f"TICKCAST_{k.upper()}": v for k, v in settings.items()}
    kept = tuple((k, v) for k, v in target.settings if k not in names)
    return replace(target, settings=kept + tuple(names.items()))


def _symbols_point(run: _Run, count: int, store: str) -> dict[str, Any]:
    config, bootstrap = run.config, run.target.bootstrap
    prefix = run.prefix(f"sym{count}{store[0]}")
    app_id = f"{prefix}app"
    target = _with(run.target, state_store=store)
    workload = SymbolWorkload.build(ticks=config.ticks, count=count,
                                    partitions=config.partitions, window=run.window)
    continuation = workload.continuation()
    with run.topics(prefix):
        counts = _produce(bootstrap, prefix, workload.records())
        workers, ready_s = run.start(target, prefix)
        try:
            measured, samples = _consume(workers, {"prices": workload.ticks},
                                         timeout=config.point_timeout_s,
                                         after=workload.warmup_ticks)
            point: dict[str, Any] = {"prefix": prefix, "input": counts, "ready_s": ready_s,
                                     **measured, "outcomes": _outcomes(samples),
                                     "expected_outcomes": workload.expected_outcomes()}
            point["outcomes_as_expected"] = all(
                point["outcomes"][k] == n for k, n in point["expected_outcomes"].items())
            run.log(f"  warm-up: {measured['warmup']['events']:,} ticks in "
                    f"{measured['warmup']['seconds']:.1f}s; measured: {measured['events']:,} "
                    f"ticks in {measured['seconds']:.1f}s "
                    f"({measured['events_per_s']:,.0f}/s), RSS {measured['rss_ready_mib']:.0f}"
                    f" -> {measured['rss_end_mib']:.0f} MiB; outcomes {point['outcomes']}"
                    + ("" if point["outcomes_as_expected"] else
                       f" (EXPECTED {point['expected_outcomes']})"))
            wait_committed(bootstrap, app_id, f"{prefix}prices")
            # Counted before the batch is produced, so complete once its input is committed.
            final = scrape(workers.urls[0])
            written = {"bytes": int(final.total("tickcast_state_changelog_bytes_total")),
                       "records": int(final.total("tickcast_state_changelog_records_total"))}
            written["bytes_per_1k_ticks"] = written["bytes"] / workload.ticks * 1000
            kept = changelog_size(read_topic(bootstrap, f"{app_id}-price-state-changelog"))
            point.update(changelog_written=written, changelog_kept=kept,
                         changelog_bytes_per_1k_ticks=written["bytes_per_1k_ticks"],
                         changelog_records=written["records"])
            run.log(f"  changelog: {written['records']:,} records, {written['bytes']:,} bytes "
                    f"written ({written['bytes_per_1k_ticks']:,.0f} per 1k ticks); "
                    f"{kept['records']:,} records kept, {kept['keys']:,} live keys")
            point["latency"] = _probe_latency(run, workers, workload, continuation, prefix)
            lat = point["latency"]
            run.log(f"  probe latency at {lat['offered_per_s']:.0f} ticks/s: p50 "
                    f"{_num(lat['p50_ms'], '.0f')} ms, p99 {_num(lat['p99_ms'], '.0f')} ms, "
                    f"{lat['forecasts']}/{lat['probe_ticks']} probe forecasts")
        finally:
            workers.stop()
        point["recovery"] = _recovery(run, target, continuation, prefix)
        rec = point["recovery"]
        run.log(f"  restart: ready in {_num(rec['ready_s'], '.1f')}s, first probe forecast "
                f"after {_num(rec['recovery_to_first_forecast_s'], '.1f')}s, "
                f"{rec['resumed_probes']}/{len(PROBES)} probes resumed")
    return point


def _probe_latency(run: _Run, workers: Workers, workload: SymbolWorkload,
                   continuation: Continuation, prefix: str) -> dict[str, Any]:
    """Ticks at the configured rate (probes among them); latency of the probes' forecasts."""
    config, bootstrap = run.config, run.target.bootstrap
    rate, n = config.latency_rate, int(config.latency_rate * config.latency_seconds)
    topic = f"{prefix}prices"
    consumer = _reader(bootstrap, f"{prefix}forecasts")
    producer = LoadProducer(bootstrap, topic)
    sent: dict[tuple[str, int], float] = {}
    try:
        t0 = time.monotonic()
        for i, (symbol, probe) in enumerate(latency_schedule(workload, n)):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ts, value = continuation.tick(symbol)
            if probe:
                sent[(symbol, ts)] = time.time() * 1000
            producer.send(topic, symbol.encode(), value, on_ack=_ignore)
        producer.flush()
        offered = n / (time.monotonic() - t0)
        found = _collect(consumer, sent, idle_s=5.0, timeout=60.0)
    finally:
        producer.close()
        consumer.close()
    if workers.children[0].exited():
        raise BenchError(f"the worker exited during the latency run; see {workers.logs}")
    lat = np.asarray([found[k] - sent[k] for k in found], dtype=np.float64)
    return {"offered_per_s": offered, "ticks": n, "probe_ticks": len(sent),
            "forecasts": len(lat), "load_producer": producer.kind,
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
            "max_ms": float(lat.max()) if len(lat) else None}


def _ignore() -> None:
    """An acknowledgement nobody waits for."""


def _recovery(run: _Run, target: Target, continuation: Continuation,
              prefix: str) -> dict[str, Any]:
    """Restart on the same app id and state directory; one tick per probe sent at spawn."""
    bootstrap, timeout = run.target.bootstrap, run.config.ready_timeout_s
    app_id = f"{prefix}app"
    first_log = run.state / f"{app_id}-0.log"
    with contextlib.suppress(OSError):  # the restart writes a log of the same name
        first_log.rename(first_log.with_suffix(".before-restart.log"))
    topic = f"{prefix}prices"
    consumer = _reader(bootstrap, f"{prefix}forecasts")
    producer = LoadProducer(bootstrap, topic)  # connected before the spawn
    try:
        spawned_wall, spawned = time.time(), time.monotonic()
        workers = Workers(1, target, log_dir=run.state, name=app_id, prefix=prefix,
                          app_id=app_id, partitions=run.config.partitions)
        try:
            wanted = []
            for probe in PROBES:
                ts, value = continuation.tick(probe)
                wanted.append((probe, ts))
                producer.send(topic, probe.encode(), value, on_ack=_ignore)
            producer.flush()
            return _await_probes(workers, consumer, wanted, spawned=spawned,
                                 spawned_wall=spawned_wall, timeout=timeout)
        finally:
            workers.stop()
    finally:
        producer.close()
        consumer.close()


def _await_probes(workers: Workers, consumer: KafkaConsumer,
                  wanted: Sequence[tuple[str, int]], *, spawned: float, spawned_wall: float,
                  timeout: float) -> dict[str, Any]:
    """Until every probe's forecast arrived, or the restarted worker has taken the probe
    ticks and :data:`SETTLE_S` passed (the missing ones lost their window)."""
    found: dict[tuple[str, int], int] = {}
    ready_s: float | None = None
    settled: float | None = None
    samples = Samples()
    taken = 0.0
    while len(found) < len(wanted):
        found.update(_collect(consumer, [k for k in wanted if k not in found],
                              idle_s=0.0, timeout=0.2))
        now = time.monotonic()
        if workers.children[0].exited():
            raise BenchError(f"the restarted worker exited; see {workers.logs}")
        if ready_s is None and workers.ready():
            ready_s = now - spawned
        if ready_s is not None:
            with contextlib.suppress(OSError):
                samples = scrape(workers.urls[0])
            taken = sum(samples.total("tickcast_ticks_total", outcome=o)
                        for o in ("forecast", "warming_up", "no_model"))
            if settled is None and taken >= len(wanted):
                settled = now
            if settled is not None and now - settled > SETTLE_S:
                break
        if now - spawned > timeout:
            state = ("never became ready" if ready_s is None else
                     f"was ready after {ready_s:.1f}s but took only {taken:.0f} of the "
                     f"{len(wanted)} probe ticks ({len(found)} forecasts)")
            raise BenchError(f"the restarted worker {state} within {timeout:.0f}s; see "
                             f"{workers.logs}")
    with contextlib.suppress(OSError):
        samples = scrape(workers.urls[0])
    first = min(found.values(), default=None)
    last = max(found.values(), default=None)
    return {"ready_s": ready_s, "probes": len(wanted), "resumed_probes": len(found),
            "recovery_to_first_forecast_s": (None if first is None
                                             else (first - spawned_wall * 1000) / 1000),
            "recovery_to_all_probes_s": (None if last is None or len(found) < len(wanted)
                                         else (last - spawned_wall * 1000) / 1000),
            "outcomes": _outcomes(samples),
            "rss_peak_mib": workers.stats()[0][1]}


def _texts_point(run: _Run, target: Target, tag: str, records: Iterable[Record],
                 totals_of: Callable[[dict[str, int]], dict[str, int]]) -> dict[str, Any]:
    """A backlog of ``records`` through one fresh worker of ``target``."""
    prefix = run.prefix(tag)
    with run.topics(prefix):
        counts = _produce(run.target.bootstrap, prefix, records)
        workers, ready_s = run.start(target, prefix)
        try:
            measured, samples = _consume(workers, totals_of(counts),
                                         timeout=run.config.point_timeout_s)
        finally:
            workers.stop()
    topics = measured["topics"]
    run.log(f"  consumed {measured['events']:,} events in {measured['seconds']:.1f}s ("
            + ", ".join(f"{t} {r['events_per_s']:,.0f}/s" for t, r in topics.items())
            + f"), RSS {measured['rss_ready_mib']:.0f} -> {measured['rss_end_mib']:.0f} MiB")
    return {"prefix": prefix, "input": counts, "ready_s": ready_s, **measured,
            "texts_per_s": topics.get("texts", {}).get("events_per_s"),
            "ticks_per_s": topics.get("prices", {}).get("events_per_s"),
            "pending_texts": samples.value("tickcast_sentiment_pending", kind="texts"),
            "outcomes": _outcomes(samples)}


def _only_texts(counts: dict[str, int]) -> dict[str, int]:
    return {"texts": counts.get("texts", 0)}


def _texts_and_ticks(counts: dict[str, int]) -> dict[str, int]:
    return {topic: n for topic, n in counts.items() if n}


# -- the dimensions -----------------------------------------------------------------------------
def _run_symbols(run: _Run) -> dict[str, Any]:
    config = run.config
    points = []
    for count in config.symbol_counts:
        for store in config.stores:
            run.log(f"symbols {count:,} ({store} store): {config.ticks // count * count:,} "
                    f"ticks + {len(PROBES)} probes x {run.window + PROBE_EXTRA} ...")
            points.append(run.point(f"symbols {count} {store}",
                                    lambda c=count, s=store: _symbols_point(run, c, s),
                                    symbols=count, store=store))
    for store in config.stores:
        _ratios([p for p in points if p["store"] == store], "events_per_s")
    return {"points": points}


def _run_pending(run: _Run) -> dict[str, Any]:
    config = run.config
    largest = max(config.pending_sizes) + config.pending_extra
    run.log(f"pending default: {largest:,} labelled texts, default settings ...")
    default = run.point("pending default", lambda: _texts_point(
        run, run.target, "pend-default", labelled_texts(largest), _only_texts),
        pending_max=None, texts=largest)
    points = []
    for size in config.pending_sizes:
        total = size + config.pending_extra
        run.log(f"pending {size:,}: {total:,} unlabelled texts, TICKCAST_PENDING_MAX="
                f"{size} ...")
        points.append(run.point(f"pending {size}", lambda s=size, n=total: _texts_point(
            run, _with(run.target, pending_max=str(s)), f"pend{s}", unlabelled_texts(n),
            _only_texts), pending_max=size, texts=total))
    base = default.get("texts_per_s")
    for p in points:
        p["texts_per_s_over_default"] = (p["texts_per_s"] / base
                                         if base and p.get("texts_per_s") else None)
    return {"default": default, "points": points}


def _run_windows(run: _Run) -> dict[str, Any]:
    config = run.config
    symbols = balanced_symbols(config.window_symbols, config.partitions)
    steps = config.window_ticks // config.window_symbols
    points = []
    for w in config.windows:
        run.log(f"windows {w:,}: {config.window_texts:,} labelled texts + "
                f"{steps * len(symbols):,} ticks, TICKCAST_AUC_WINDOW = "
                f"TICKCAST_FORECAST_WINDOW = {w} ...")

        def records() -> Iterator[Record]:
            yield from tick_records(symbols, steps)
            yield from labelled_texts(config.window_texts)

        points.append(run.point(f"windows {w}", lambda w=w, r=records: _texts_point(
            run, _with(run.target, auc_window=str(w), forecast_window=str(w)), f"win{w}",
            r(), _texts_and_ticks), window=w))
    _ratios(points, "texts_per_s")
    _ratios(points, "ticks_per_s")
    return {"points": points}


def _ratios(points: list[dict[str, Any]], key: str) -> None:
    """``<key>_over_first``: each point's ``key`` against the first point that has one."""
    base = next((p[key] for p in points if p.get(key)), None)
    for p in points:
        p[f"{key}_over_first"] = p[key] / base if base and p.get(key) else None


RUNNERS: Final[Mapping[str, Callable[[_Run], dict[str, Any]]]] = {
    "symbols": _run_symbols, "pending": _run_pending, "windows": _run_windows}


def run_scale(config: ScaleConfig, target: Target, *, state: Path,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every point of ``config.dimensions``, in order; one fresh worker per point."""
    from tickcast.streams.prices.processor import history_keep_for

    state.mkdir(parents=True, exist_ok=True)
    store, forecaster = served_forecaster(target)
    rnn_version = store.latest(target.sentiment)
    run = _Run(config=config, target=target, state=state,
               run_prefix=f"scale{uuid.uuid4().hex[:6]}-", window=int(forecaster.window),
               log=log)
    results: dict[str, Any] = {
        "config": asdict(config), "machine": machine(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": {"lstm": forecaster.version, "rnn": rnn_version},
        "window": run.window, "history_keep": history_keep_for(forecaster),
        "prefix": run.run_prefix, "worker_settings": dict(target.settings)}
    if "symbols" in config.dimensions:
        results["state_footprint"] = footprint = state_footprint(keep=results["history_keep"])
        log(f"state at a full history ({footprint['history_ticks']} ticks), per symbol: "
            f"{footprint['store_kib']:.1f} KiB in the memory store, {footprint['cache_kib']:.1f}"
            f" KiB decoded in the cache, {footprint['changelog_kib']:.1f} KiB of changelog")
    for dimension in config.dimensions:
        results[dimension] = RUNNERS[dimension](run)
    results["failed"] = run.failed
    return results


def state_footprint(*, symbols: int = 2_000, keep: int, ticks: int | None = None
                    ) -> dict[str, float]:
    """Memory of per-symbol state at a *full* history, measured in this process with
    ``tracemalloc`` through the worker's own code: ``symbols`` states of ``ticks`` ticks
    (default ``keep + 100``) written with ``state_writes`` into a memory-store
    :class:`~tickcast.streams.faust_internals.ChangelogTable`, then each read back with
    ``load_state`` as the worker's cache holds it. Per symbol: ``store_kib`` (what the
    memory store holds; the RocksDB store keeps it on disk), ``cache_kib`` (the decoded state,
    either store), ``changelog_kib`` (its records' key + value bytes)."""
    import functools
    import tracemalloc
    from array import array

    from tickcast.streams.faust_internals import TickcastApp, state_table
    from tickcast.streams.prices.processor import SymbolState
    from tickcast.streams.prices.state import load_state, state_writes

    ticks = keep + 100 if ticks is None else ticks
    app = TickcastApp("tickcast-bench-footprint", broker="kafka://127.0.0.1:1",
                      web_enabled=False, autodiscover=False, env={}, store="memory://")
    table = state_table(app, "state", partitions=1)
    prices = _walk(1, ticks, seed=4)[:, 0].tolist()
    times = [TS_BASE + i * 1000 for i in range(ticks)]
    tracemalloc.start()
    try:
        logged = 0
        before = tracemalloc.get_traced_memory()[0]
        for s in range(symbols):
            state = SymbolState(ts=array("q", times[-keep:]), price=array("d", prices[-keep:]),
                                seq=ticks)
            for key, value in state_writes(f"S{s}", state, keep=keep):
                record = table.write(key, value, partition=0)
                logged += len(record[2] or b"") + len(record[3] or b"")
        stored = tracemalloc.get_traced_memory()[0]
        get = functools.partial(table.get, partition=0)
        cache = [load_state(f"S{s}", get, keep=keep) for s in range(symbols)]
        cached = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert all(len(c.ts) == keep for c in cache)
    return {"symbols": symbols, "history_ticks": keep,
            "store_kib": (stored - before) / symbols / 1024,
            "cache_kib": (cached - stored) / symbols / 1024,
            "changelog_kib": logged / symbols / 1024}


# -- report -------------------------------------------------------------------------------------
def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, fmt)


def _markdown(rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return lines + ["| " + " | ".join(r) + " |" for r in rows[1:]]


def _failed(point: Mapping[str, Any], width: int, *head: str) -> tuple[str, ...]:
    return (*head, f"failed: {point['error']}"[:120], *[""] * (width - len(head) - 1))


def scale_table(results: Mapping[str, Any]) -> str:
    """The run as Markdown tables, one per dimension measured."""
    out: list[str] = []
    footprint = results.get("state_footprint")
    if footprint:
        out += [f"State at a full history ({footprint['history_ticks']} ticks), per symbol "
                f"(in-process, {footprint['symbols']:,} symbols): "
                f"{footprint['store_kib']:.1f} KiB in the memory store, "
                f"{footprint['cache_kib']:.1f} KiB decoded in the cache (either store), "
                f"{footprint['changelog_kib']:.1f} KiB of changelog records", ""]
    if "symbols" in results:
        head = ("symbols", "store", "ticks", "events/s", "x first", "ready s", "RSS ready "
                "MiB", "RSS end MiB", "RSS peak MiB", "CPU s / 1k", "forecast", "warming up",
                "changelog B written / 1k ticks", "changelog records written",
                "probe p50 ms", "p99 ms", "max ms", "restart ready s", "first forecast s",
                "resumed probes")
        rows = [head]
        for p in results["symbols"]["points"]:
            if "error" in p:
                rows.append(_failed(p, len(head), f"{p['symbols']:,}", p["store"]))
                continue
            lat, rec, outcomes = p["latency"], p["recovery"], p["outcomes"]
            rows.append((f"{p['symbols']:,}", p["store"], f"{p['events']:,}",
                         f"{p['events_per_s']:,.0f}",
                         _num(p.get("events_per_s_over_first"), ".2f"),
                         f"{p['ready_s']:.1f}", f"{p['rss_ready_mib']:.0f}",
                         f"{p['rss_end_mib']:.0f}", f"{p['rss_peak_mib']:.0f}",
                         f"{p['cpu_s_per_1k_events']:.2f}",
                         f"{outcomes['forecast']:,}", f"{outcomes['warming_up']:,}",
                         f"{p['changelog_bytes_per_1k_ticks']:,.0f}",
                         f"{p['changelog_records']:,}", _num(lat["p50_ms"], ".0f"),
                         _num(lat["p99_ms"], ".0f"), _num(lat["max_ms"], ".0f"),
                         _num(rec["ready_s"], ".1f"),
                         _num(rec["recovery_to_first_forecast_s"], ".1f"),
                         f"{rec['resumed_probes']}/{rec['probes']}"))
        out += ["Symbols: the same ticks over N symbols (+ 10 probe symbols), per state store",
                "", *_markdown(rows), ""]
    if "pending" in results:
        head = ("pending max", "texts", "texts/s", "x default", "ready s", "RSS ready MiB",
                "RSS end MiB", "RSS peak MiB", "CPU s / 1k", "pending texts at end")
        rows = [head]
        pending = results["pending"]
        for p in [pending["default"], *pending["points"]]:
            label = "default" if p["pending_max"] is None else f"{p['pending_max']:,}"
            if "error" in p:
                rows.append(_failed(p, len(head), label, f"{p['texts']:,}"))
                continue
            rows.append((label, f"{p['texts']:,}", _num(p["texts_per_s"], ",.0f"),
                         _num(p.get("texts_per_s_over_default", 1.0
                                    if p["pending_max"] is None else None), ".2f"),
                         f"{p['ready_s']:.1f}", f"{p['rss_ready_mib']:.0f}",
                         f"{p['rss_end_mib']:.0f}", f"{p['rss_peak_mib']:.0f}",
                         f"{p['cpu_s_per_1k_events']:.2f}",
                         _num(p["pending_texts"], ",.0f")))
        out += ["Pending: unlabelled texts waiting for a label (default: labelled texts, "
                "default settings)", "", *_markdown(rows), ""]
    if "windows" in results:
        head = ("window", "texts/s", "x first", "ticks/s", "x first", "events/s", "ready s",
                "RSS ready MiB", "RSS end MiB", "RSS peak MiB", "CPU s / 1k")
        rows = [head]
        for p in results["windows"]["points"]:
            if "error" in p:
                rows.append(_failed(p, len(head), f"{p['window']:,}"))
                continue
            rows.append((f"{p['window']:,}", _num(p["texts_per_s"], ",.0f"),
                         _num(p.get("texts_per_s_over_first"), ".2f"),
                         _num(p["ticks_per_s"], ",.0f"),
                         _num(p.get("ticks_per_s_over_first"), ".2f"),
                         f"{p['events_per_s']:,.0f}", f"{p['ready_s']:.1f}",
                         f"{p['rss_ready_mib']:.0f}", f"{p['rss_end_mib']:.0f}",
                         f"{p['rss_peak_mib']:.0f}", f"{p['cpu_s_per_1k_events']:.2f}"))
        out += ["Windows: TICKCAST_AUC_WINDOW = TICKCAST_FORECAST_WINDOW = w, texts and ticks "
                "each over its own active span", "", *_markdown(rows), ""]
    for failure in results.get("failed", []):
        out.append(f"FAILED {failure}")
    return "\n".join(out).rstrip() + "\n"


def _series(points: Iterable[Mapping[str, Any]], x: str, *path: str
            ) -> tuple[list[float], list[float]]:
    """``(xs, ys)`` of the points that have a value at ``path``."""
    xs, ys = [], []
    for p in points:
        value: Any = p
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if "error" not in p and value is not None and math.isfinite(float(value)):
            xs.append(float(p[x]))
            ys.append(float(value))
    return xs, ys


def _log_x(ax: Any, xs: Iterable[float], *twins: Any) -> None:
    """A log x axis labelled at the sizes measured, a grid, and y axes from 0 with room
    above the data."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ax.set_xscale("log")
    ticks = sorted(set(xs))
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.set_xticklabels([f"{x:,.0f}" for x in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        if len(ticks) == 1:
            ax.set_xlim(ticks[0] / 2, ticks[0] * 2)
    ax.grid(True, alpha=0.3)
    for axis in (ax, *twins):
        top = max((max(line.get_ydata(), default=0.0) for line in axis.get_lines()),
                  default=0.0)
        axis.set_ylim(0, top * 1.15 if top > 0 else 1.0)


def plot_scale(results: Mapping[str, Any], out_prefix: Path) -> list[Path]:
    """One PNG per dimension measured, ``<out_prefix>-<dimension>.png``: throughput against
    the size on a log axis, beside memory (and, for symbols, recovery and the changelog)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written: list[Path] = []

    def save(fig: Figure, dimension: str) -> None:
        FigureCanvasAgg(fig)
        fig.tight_layout()
        path = out_prefix.parent / f"{out_prefix.name}-{dimension}.png"
        fig.savefig(path, dpi=110)
        written.append(path)

    if "symbols" in results:
        points = results["symbols"]["points"]
        stores = list(dict.fromkeys(p["store"] for p in points))
        fig = Figure(figsize=(15, 4.5))
        rate, memory, log = fig.subplots(1, 3)
        recovery, latency = memory.twinx(), log.twinx()
        for i, store in enumerate(stores):
            mine = [p for p in points if p["store"] == store]
            color = f"C{i}"
            rate.plot(*_series(mine, "symbols", "events_per_s"), "o-", color=color,
                      label=store)
            memory.plot(*_series(mine, "symbols", "rss_end_mib"), "o-", color=color,
                        label=f"{store}: RSS at the end")
            recovery.plot(*_series(mine, "symbols", "recovery",
                                   "recovery_to_first_forecast_s"),
                          "s--", color=color, label=f"{store}: restart to forecast")
            log.plot(*_series(mine, "symbols", "changelog_bytes_per_1k_ticks"), "o-",
                     color=color, label=f"{store}: changelog")
            latency.plot(*_series(mine, "symbols", "latency", "p99_ms"), "s--", color=color,
                         label=f"{store}: probe p99")
        rate.set(title="ticks consumed/s", xlabel="symbols", ylabel="events/s")
        memory.set(title="memory and recovery", xlabel="symbols",
                   ylabel="RSS once consumed, MiB")
        recovery.set_ylabel("restart to first probe forecast, s (dashed)")
        log.set(title="changelog and latency", xlabel="symbols",
                ylabel="changelog bytes written / 1k ticks")
        latency.set_ylabel("probe latency p99, ms (dashed)")
        xs = [float(p["symbols"]) for p in points]
        _log_x(rate, xs)
        _log_x(memory, xs, recovery)
        _log_x(log, xs, latency)
        rate.legend()
        save(fig, "symbols")
    if "pending" in results:
        pending = results["pending"]
        points, default = pending["points"], pending["default"]
        fig = Figure(figsize=(10, 4.5))
        rate, memory = fig.subplots(1, 2)
        rate.plot(*_series(points, "pending_max", "texts_per_s"), "o-", label="unlabelled")
        memory.plot(*_series(points, "pending_max", "rss_peak_mib"), "o-", label="peak RSS")
        memory.plot(*_series(points, "pending_max", "rss_end_mib"), "s-",
                    label="RSS at the end")
        memory.plot(*_series(points, "pending_max", "rss_ready_mib"), "o:",
                    label="RSS when ready")
        if "error" not in default:
            rate.axhline(default["texts_per_s"], color="grey", ls="--", label="default")
            memory.axhline(default["rss_end_mib"], color="grey", ls="--",
                           label="default: RSS at the end")
        rate.set(title="texts consumed/s", xlabel="TICKCAST_PENDING_MAX", ylabel="texts/s")
        memory.set(title="memory", xlabel="TICKCAST_PENDING_MAX", ylabel="RSS MiB")
        for ax in (rate, memory):
            _log_x(ax, [float(p["pending_max"]) for p in points])
            ax.legend()
        save(fig, "pending")
    if "windows" in results:
        points = results["windows"]["points"]
        fig = Figure(figsize=(10, 4.5))
        rate, memory = fig.subplots(1, 2)
        rate.plot(*_series(points, "window", "texts_per_s"), "o-", label="texts")
        rate.plot(*_series(points, "window", "ticks_per_s"), "s-", label="ticks")
        memory.plot(*_series(points, "window", "rss_peak_mib"), "o-", label="peak RSS")
        memory.plot(*_series(points, "window", "rss_end_mib"), "s-", label="RSS at the end")
        memory.plot(*_series(points, "window", "rss_ready_mib"), "o:", label="RSS when ready")
        rate.set(title="consumed/s, each over its own span", xlabel="window",
                 ylabel="events/s")
        memory.set(title="memory", xlabel="window", ylabel="RSS MiB")
        for ax in (rate, memory):
            _log_x(ax, [float(p["window"]) for p in points])
            ax.legend()
        save(fig, "windows")
    return written
