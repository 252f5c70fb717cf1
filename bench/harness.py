"""The benchmark run: one broker, the same input, every pipeline measured in turn.

1. Input is produced before any clock starts: ``ticks`` random-walk ticks over ``symbols``
   symbols and ``texts`` labelled texts (the shipped sample, cycled with fresh ids).
2. Each pipeline consumes it from the beginning under its own consumer group: tickcast (1 and
   2 workers), the raw ceiling, the same passthrough as a Faust agent, and the per-message
   baseline. A pipeline's clock starts once its first outputs are out and runs to its last
   output; for tickcast, from the first poll of its metrics that sees outputs (counting only
   the outputs after it), for a peer from the end of its first batch.
   One more tickcast run reads ``texts_only`` texts and no ticks: RNN + VADER scoring alone.
3. Latency: a fresh worker, ticks offered at a fixed rate; each forecast's Kafka timestamp
   minus the time its tick was sent.
4. Micro-benchmarks of inference per batch size.
Everything is reported as measured, with ratios against the baseline and ceiling measured in
the same run.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tickcast_bench.processes import (
    BenchError,
    Child,
    Target,
    Workers,
    cores_busy,
    machine_ticks,
    proc_stats,
)
from tickcast_bench.timeline import Sampler, broker_pauses, describe_worst, timeline, worst

from tickcast.streams.settings import child_environ

if TYPE_CHECKING:
    from tickcast.localkafka import LocalKafka
    from tickcast.streams.topics import TopicSpec

__all__ = [
    "TS_BASE",
    "BenchConfig",
    "LoadProducer",
    "Target",
    "balanced_symbols",
    "challenger_store",
    "delete_topics",
    "expected_outputs",
    "local_broker",
    "local_broker_at",
    "local_gc_log",
    "machine",
    "point_only_store",
    "produce_input",
    "quix_installed",
    "run_bench",
    "run_latency",
    "run_pipeline",
    "run_tickcast",
    "run_topic_specs",
    "served_forecaster",
    "table",
    "text_ids",
    "tokens_only_store",
]

PIPELINE_TIMEOUT_S = 900.0
QUIX_KINDS = {"quix_passthrough": "passthrough", "quix_pipeline": "pipeline"}
"""The Quix Streams peers (:mod:`tickcast_bench.quix`): run name -> its kind."""


def quix_installed() -> bool:
    """Whether the optional peer can run (``pip install -e './bench[quix]'``)."""
    import importlib.util

    return importlib.util.find_spec("quixstreams") is not None


@dataclass(frozen=True, slots=True)
class BenchConfig:
    ticks: int = 200_000
    symbols: int = 50
    texts: int = 50_000
    baseline_seconds: float = 20.0
    latency_rate: float = 1000.0
    latency_seconds: float = 60.0
    two_workers: bool = True
    partitions: int = 8
    texts_only: int = 50_000
    """Texts of the texts-only run (RNN + VADER alone); 0 skips it."""
    keep_topics: bool = False
    """Keep the run's topics afterwards. Deleted by default: every run creates ~300
    partitions, and a broker holding many thousands of them answers more slowly."""

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(ticks=4000, symbols=10, texts=1000, baseline_seconds=5.0,
                   latency_rate=200.0, latency_seconds=3.0, two_workers=False,
                   texts_only=1000)


# -- input -------------------------------------------------------------------------------------
def balanced_symbols(count: int, partitions: int) -> list[str]:
    """``count`` symbol names (``S000``, ``S001``, ... skipping some) whose keys land evenly on
    ``partitions`` under Kafka's default partitioner: ``count // partitions`` or one more per
    partition.

    With the first names as they come, murmur2 spreads them unevenly, and how much of the input
    each of two workers gets would depend on which partitions it is given: the two-worker
    ratio would measure that luck. Real keys are skewed too, but the bench measures workers.
    """
    from kafka.partitioner.default import murmur2

    target = [count // partitions + (p < count % partitions) for p in range(partitions)]
    taken = [0] * partitions
    names: list[str] = []
    i = 0
    while len(names) < count:
        name = f"S{i:03d}"
        partition = (murmur2(name.encode()) & 0x7FFFFFFF) % partitions
        if taken[partition] < target[partition]:
            taken[partition] += 1
            names.append(name)
        i += 1
    return names


TS_BASE = 1_700_000_000_000
"""Event time of the first tick (and of every text); ticks are a second apart per symbol."""


def input_records(config: BenchConfig) -> Iterator[tuple[str, bytes, bytes]]:
    """The run's input as ``(topic, key, value)``: ticks in event-time order, then texts."""
    from tickcast.training.data import sample_texts

    rng = np.random.default_rng(1)
    steps = config.ticks // config.symbols
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (steps, config.symbols)), axis=0))
    symbols = balanced_symbols(config.symbols, config.partitions)
    for step in range(steps):
        for s, symbol in enumerate(symbols):
            yield "prices", symbol.encode(), json.dumps(
                {"symbol": symbol, "ts": TS_BASE + step * 1000,
                 "price": round(float(prices[step, s]), 4)}).encode()
    sample = sample_texts()
    for i, text_id in enumerate(text_ids(config)):
        row = sample.iloc[i % len(sample)]
        yield "texts", text_id.encode(), json.dumps(
            {"id": text_id, "ts": TS_BASE, "text": row["text"], "label": int(row["label"])}
        ).encode()


def produce_input(bootstrap: str, prefix: str, config: BenchConfig) -> dict[str, int]:
    """The run's input on ``{prefix}prices`` and ``{prefix}texts``; counts per topic."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=256 * 1024, compression_type=None)
    for topic, key, value in input_records(config):
        producer.send(f"{prefix}{topic}", key=key, value=value)
    producer.flush()
    producer.close()
    return {"prices": config.ticks // config.symbols * config.symbols, "texts": config.texts}


def run_backtest(config: BenchConfig, target: Target, *, state: Path) -> dict[str, Any]:
    """``tickcast backtest``'s engine on the run's input, in this process, with the served
    forecaster and sentiment model: events/s from the first event fed to the outputs written
    (loading the models is not counted)."""
    from tickcast.backtest import Backtest, Inputs
    from tickcast.models.registry import ModelStore
    from tickcast.streams.messages import InMessage
    from tickcast.streams.serving import load_model
    from tickcast.streams.settings import Settings

    store = ModelStore(target.model_dir)
    models = [load_model(store, kind, name, store.latest(name) or "",  # type: ignore[arg-type]
                         threads=target.inference_threads)
              for kind, name in (("forecaster", target.forecaster),
                                 ("sentiment", target.sentiment))]
    inputs = Inputs()
    for n, (topic, key, value) in enumerate(input_records(config)):
        (inputs.prices if topic == "prices" else inputs.texts).append(
            InMessage(topic, 0, n, key, value))
    settings = Settings(kafka_bootstrap=target.bootstrap, model_dir=target.model_dir)
    peak0 = _rss_peak_mib()
    started = time.perf_counter()
    Backtest(settings=settings, forecasters=[models[0]], sentiments=[models[1]],
             every=1000).run(inputs, state / "backtest")
    seconds = time.perf_counter() - started
    events = len(inputs.prices) + len(inputs.texts)
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds,
            "rss_peak_mib": max(_rss_peak_mib(), peak0)}


def _rss_peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def challenger_store(target: Target, state: Path) -> Path:
    """A model store with the served forecaster and sentiment model and, as each one's
    challenger in shadow, a copy of it under another version: a worker then runs every
    model twice per batch, as with a real challenger of the same architecture."""
    from tickcast.models.registry import ModelStore

    source = ModelStore(target.model_dir)
    root = state / "challenger-store"
    shutil.rmtree(root, ignore_errors=True)
    store = ModelStore(root)
    for name in (target.forecaster, target.sentiment):
        version = source.latest(name)
        if version is None:
            raise BenchError(f"no LATEST {name} in {target.model_dir}")
        shutil.copytree(source.path(name, version), store.path(name, version))
        store.promote(name, version)
        rival = f"{version}-challenger"
        shutil.copytree(source.path(name, version), store.path(name, rival))
        manifest_path = store.path(name, rival) / "manifest.json"
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest["version"] = rival
        manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
        store.set_challenger(name, rival)
    return root


def _has_side_inputs(target: Target) -> bool:
    from tickcast.models.artifacts import PREPROCESSING_FILE
    from tickcast.models.registry import ModelStore

    store = ModelStore(target.model_dir)
    version = store.latest(target.sentiment)
    if version is None:
        return False
    state = json.loads((store.path(target.sentiment, version) / PREPROCESSING_FILE)
                       .read_text(encoding="utf-8"))
    return bool(state.get("side_inputs"))


class _Twin:
    """A model store holding the served model of one kind as it is and, of the other, a
    *twin* written by the caller: :meth:`source` gives the served artifact to derive it from,
    :meth:`write` stores the twin and makes it ``LATEST``."""

    def __init__(self, target: Target, state: Path, folder: str, *, keep: str,
                 twin: str) -> None:
        from tickcast.models.registry import ModelStore

        self.source_store = ModelStore(target.model_dir)
        self.root = state / folder
        shutil.rmtree(self.root, ignore_errors=True)
        self.store = ModelStore(self.root)
        self.target, self.name = target, twin
        version = self._latest(keep)
        shutil.copytree(self.source_store.path(keep, version), self.store.path(keep, version))
        self.store.promote(keep, version)
        self.version = self._latest(twin)

    def _latest(self, name: str) -> str:
        version = self.source_store.latest(name)
        if version is None:
            raise BenchError(f"no LATEST {name} in {self.target.model_dir}")
        return version

    def source(self) -> tuple[Path, dict[str, Any]]:
        """The served artifact's folder and its preprocessing state."""
        from tickcast.models.artifacts import PREPROCESSING_FILE

        path = self.source_store.path(self.name, self.version)
        return path, json.loads((path / PREPROCESSING_FILE).read_text(encoding="utf-8"))

    def write(self, model: Any, preprocessing: dict[str, Any], *, kind: Any, suffix: str,
              input_spec: dict[str, Any], twin_of: str) -> Path:
        """Store ``model`` as version ``<served>-<suffix>``; ``twin_of`` names the data field
        that records the served version."""
        from tickcast.models.artifacts import MODEL_FILE, PREPROCESSING_FILE, write_artifact

        def write_files(folder: Path) -> None:
            model.save(folder / MODEL_FILE)
            (folder / PREPROCESSING_FILE).write_text(json.dumps(preprocessing),
                                                     encoding="utf-8")

        version = f"{self.version}-{suffix}"
        write_artifact(self.root / self.name, name=self.name, kind=kind, version=version,
                       write_files=write_files, metrics={}, input_spec=input_spec,
                       data={twin_of: self.version})
        self.store.promote(self.name, version)
        return self.root


def point_only_store(target: Target, state: Path) -> Path:
    """A model store with the served sentiment model and, as the forecaster, the served one's
    *point-only twin*: the same network and weights with the Dense head cut to its first
    (point) output and no interval head in its preprocessing. Its forecasts equal the
    served model's; what a worker saves on it is exactly the intervals' cost."""
    from tickcast.models.artifacts import MODEL_FILE
    from tickcast.models.backend import keras
    from tickcast.models.predictors import load_keras_model

    twins = _Twin(target, state, "point-only-store", keep=target.sentiment,
                  twin=target.forecaster)
    path, preprocessing = twins.source()
    if "intervals" not in preprocessing:
        raise BenchError(f"{target.forecaster}/{twins.version} has no intervals to leave out")
    del preprocessing["intervals"]
    model = load_keras_model(path / MODEL_FILE)
    config = model.get_config()
    head = model.layers[-1]
    for layer in config["layers"]:
        if layer["config"]["name"] == head.name:
            layer["config"]["units"] = 1
    twin = keras().Model.from_config(config)
    for layer, original in zip(twin.layers, model.layers, strict=True):
        weights = original.get_weights()
        if original is head:
            weights = [weights[0][:, :1], weights[1][:1]]
        layer.set_weights(weights)
    return twins.write(twin, preprocessing, kind="forecaster", suffix="point",
                       input_spec={"window": preprocessing["window"]},
                       twin_of="point_only_twin_of")


def tokens_only_store(target: Target, state: Path) -> Path:
    """A model store with the served forecaster and, as the sentiment model, a *tokens-only
    twin* of the served one: the same embedding, lexicon and LSTM weights, without the side
    inputs and the head that joins them (the output layer reads the LSTM's features, as a
    model without side inputs does). Its scores are not the served model's; its cost per
    text is that of the tokens-only shape, so the texts/s it reaches against the served
    model's is what the side inputs cost."""
    from tickcast.models.architectures import build_sentiment_rnn
    from tickcast.models.artifacts import MODEL_FILE
    from tickcast.models.predictors import load_keras_model

    twins = _Twin(target, state, "tokens-only-store", keep=target.forecaster,
                  twin=target.sentiment)
    path, preprocessing = twins.source()
    if not preprocessing.get("side_inputs"):
        raise BenchError(f"{target.sentiment}/{twins.version} has no side inputs to leave out")
    del preprocessing["side_inputs"]
    model = load_keras_model(path / MODEL_FILE)
    embedding = model.get_layer("embedding")
    twin = build_sentiment_rnn(
        vocab_size=int(embedding.input_dim), max_len=int(preprocessing["max_len"]),
        embed_dim=int(embedding.output_dim),
        units=int(model.get_layer("bilstm").forward_layer.units),
        lexicon=(model.get_layer("lexicon").get_weights()[0]
                 if any(layer.name == "lexicon" for layer in model.layers) else None))
    for layer in twin.layers:
        if layer.weights and layer.name != "p_positive":
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return twins.write(twin, preprocessing, kind="sentiment", suffix="tokens",
                       input_spec={"max_len": preprocessing["max_len"]},
                       twin_of="tokens_only_twin_of")


def text_ids(config: BenchConfig) -> list[str]:
    """Ids of the texts :func:`produce_input` sends, in order."""
    from tickcast.training.data import sample_texts

    ids = list(sample_texts()["id"])
    return [f"{ids[i % len(ids)]}#{i}" for i in range(config.texts)]


def expected_outputs(config: BenchConfig, *, window: int
                     ) -> tuple[set[tuple[str, int]], set[str]]:
    """What a run's input must produce, by identity: the ``(symbol, ts)`` of every forecast
    (every tick after each symbol's first ``window - 1``) and the id of every sentiment record."""
    steps = config.ticks // config.symbols
    symbols = balanced_symbols(config.symbols, config.partitions)
    forecasts = {(symbol, TS_BASE + step * 1000)
                 for step in range(window - 1, steps) for symbol in symbols}
    return forecasts, set(text_ids(config))


# -- tickcast ------------------------------------------------------------------------------------
def run_tickcast(target: Target, prefix: str, expected: int, *, workers: int, state: Path,
                 partitions: int, timeout: float = PIPELINE_TIMEOUT_S) -> dict[str, Any]:
    """``workers`` tickcast workers on the backlog under ``prefix`` until they have produced
    ``expected`` outputs (by their ``events_out`` counters: a throughput figure, not a check
    of what was produced)."""
    app_id = f"{prefix}tc{workers}-{uuid.uuid4().hex[:4]}"
    started = time.monotonic()
    with Workers(workers, target, log_dir=state, name=app_id, prefix=prefix, app_id=app_id,
                 partitions=partitions) as group:
        group.wait_ready()
        ready = time.monotonic()
        ready_s = ready - started
        machine0, cpu0 = machine_ticks(), group.cpu_seconds()
        done, first, first_count = 0.0, None, 0.0
        while done < expected:
            if time.monotonic() - ready > timeout:
                raise BenchError(f"{done:.0f}/{expected} outputs after {timeout:.0f}s; see "
                                 f"{group.logs}")
            time.sleep(0.2)
            counts = group.outputs_by_worker()
            done = sum(counts)
            if first is None and min(counts) > 0 and done < expected:
                # The clock starts at the first poll that sees outputs from every worker, with
                # what they were then, as a peer's starts once its first batch is through
                # (Progress): no worker's start-up is counted, whichever is last to start.
                first, first_count = time.monotonic(), done
                machine0, cpu0 = machine_ticks(), group.cpu_seconds()
        end = time.monotonic()
        stats = group.stats()
        machine_busy = cores_busy(machine0, machine_ticks())
    if first is None:  # everything came out before a poll saw any: a tiny input
        first, first_count = ready, 0.0
    cpu = sum(s[0] for s in stats)
    return {"workers": workers, "outputs": done, "events": expected - first_count,
            "seconds": end - first,
            "events_per_s": (expected - first_count) / (end - first), "ready_s": ready_s,
            "first_output_s": first - ready,
            "events_per_s_from_ready": expected / (end - ready),
            "rss_peak_mib": max(s[1] for s in stats), "cpu_s_per_1k_events": cpu / expected * 1000,
            "worker_cores": (cpu - cpu0) / (end - first), "machine_cores_busy": machine_busy}


# -- baseline and ceiling ---------------------------------------------------------------------
def run_pipeline(kind: str, target: Target, prefix: str, *, state: Path,
                 seconds: float | None, expected: int | None, variant: tuple[str, ...] = (),
                 timeout: float = PIPELINE_TIMEOUT_S) -> dict[str, Any]:
    """One of :mod:`tickcast_bench.pipelines` (or a Quix peer of :data:`QUIX_KINDS`) on the
    backlog: until ``expected`` events, or for ``seconds`` from its first event. ``variant``:
    extra arguments of the pipeline."""
    scratch = state / f"{kind}-{uuid.uuid4().hex[:6]}"  # removed after the run
    scratch.mkdir(parents=True)
    progress = scratch / "progress.jsonl"
    common = ["--bootstrap", target.bootstrap, "--prefix", prefix,
              "--group", f"{prefix}{kind}-{uuid.uuid4().hex[:4]}", "--progress", str(progress),
              "--model-dir", str(target.model_dir), "--forecaster", target.forecaster,
              "--sentiment", target.sentiment]
    if kind in QUIX_KINDS:
        argv = [sys.executable, "-m", "tickcast_bench.quix", QUIX_KINDS[kind], *common,
                "--state-dir", str(scratch / "quix"),
                "--inference-threads", str(target.inference_threads), *variant]
    else:
        argv = [sys.executable, "-m", "tickcast_bench.pipelines", kind, *common,
                "--datadir", str(scratch / "faust"), *variant]
    log = state / f"{kind}.log"
    points: list[dict[str, float]] = []
    try:
        with Child(argv, log=log, env=child_environ()) as child:
            points = _follow(child, progress, seconds=seconds, expected=expected,
                             timeout=timeout)
            cpu, rss = proc_stats(child.pid)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    first, last = points[0], points[-1]
    span = max(last["t"] - first["t"], 1e-9)
    return {"events": last["count"] - first["count"], "seconds": span,
            "events_per_s": (last["count"] - first["count"]) / span, "rss_peak_mib": rss,
            "cpu_s_per_1k_events": cpu / max(last["count"], 1) * 1000}


def _follow(child: Child, progress: Path, *, seconds: float | None, expected: int | None,
            timeout: float) -> list[dict[str, float]]:
    """The pipeline's progress points until it is done; :class:`BenchError` if it exits or
    stalls first."""
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.5)
        if child.exited():
            raise BenchError(f"the pipeline exited; see {child.log_path}")
        points = ([json.loads(line) for line in progress.read_text().splitlines()]
                  if progress.exists() else [])
        if points:
            if expected is not None and points[-1]["count"] >= expected:
                return points
            if seconds is not None and points[-1]["t"] - points[0]["t"] >= seconds:
                return points
        if time.monotonic() > deadline:
            got = f"{points[-1]['count']:.0f} events" if points else "no event"
            raise BenchError(f"the pipeline processed {got} in {timeout:.0f}s; see "
                             f"{child.log_path}")


# -- latency --------------------------------------------------------------------------------------
LOAD_LINGER_MS = 0
"""Each tick of the latency run goes out on its own: the latency measured has no producer
batching in it. (On a broker started seconds before, librdkafka's acknowledgements then lag
by up to a second or more for the first seconds, with 0 or with Kafka's default 5 ms; the
first run after a fresh broker shows it in ``produce_ack``.)"""


class LoadProducer:
    """The latency run's tick producer (``acks=1``, :data:`LOAD_LINGER_MS`), ``on_ack``
    called once the broker has a tick.

    librdkafka (``confluent-kafka``, installed with the Quix peer) when it is there: it sends
    from a C thread, and the bench shares the cores with the worker and the broker it
    measures (kafka-python, the fallback, took about 0.6 of a core at 1,000 sends/s here).
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        """Connected, with ``topic``'s partitions known, before it returns: the run's clock
        must not start on the producer's own start-up."""
        try:
            from confluent_kafka import Producer
        except ImportError:
            from kafka import KafkaProducer

            self.kind = "kafka-python"
            self._kp = KafkaProducer(bootstrap_servers=bootstrap, acks=1,
                                     linger_ms=LOAD_LINGER_MS)
            self._kp.partitions_for(topic)
            self._ck = None
        else:
            self.kind = "librdkafka"
            self._ck = Producer({"bootstrap.servers": bootstrap, "acks": "1",
                                 "linger.ms": LOAD_LINGER_MS})
            self._ck.list_topics(topic, timeout=30)
            self._kp = None

    def send(self, topic: str, key: bytes, value: bytes, *, on_ack: Callable[[], None]) -> None:
        if self._ck is not None:
            self._ck.produce(topic, value, key,
                             on_delivery=lambda err, _msg: err is None and on_ack())
            self._ck.poll(0)  # serve the callbacks of earlier sends
        else:
            assert self._kp is not None
            self._kp.send(topic, key=key, value=value).add_callback(lambda _: on_ack())

    def flush(self) -> None:
        if self._ck is not None:
            if self._ck.flush(30):
                raise BenchError("the latency run's producer could not deliver every tick")
        else:
            assert self._kp is not None
            self._kp.flush()

    def close(self) -> None:
        if self._kp is not None:
            self._kp.close()


def run_latency(target: Target, *, rate: float, seconds: float, state: Path, partitions: int,
                prefix: str, broker_gc_log: Path | None = None) -> dict[str, Any]:
    """Tick -> forecast latency of one fresh worker, ``rate`` ticks/s offered for
    ``seconds``, with its per-second :func:`~tickcast_bench.timeline.timeline`.

    The clock starts when the worker is ready (``tickcast_ready``): start-up is not measured,
    but whatever the worker does after saying it is ready is. ``broker_gc_log``: the broker's
    GC log, if it is the local one, for the timeline's ``broker_gc`` stage.
    """
    from kafka import KafkaConsumer

    from tickcast.streams.topics import ensure_topics

    ensure_topics([target.bootstrap], run_topic_specs(target.bootstrap, prefix, partitions))
    app_id = f"{prefix}app"
    started = time.monotonic()
    with Workers(1, target, log_dir=state, name=f"latency-{prefix}", prefix=prefix, app_id=app_id,
                 partitions=partitions) as worker:
        worker.wait_ready()
        ready_s = time.monotonic() - started
        producer = LoadProducer(target.bootstrap, f"{prefix}prices")
        sent: dict[tuple[str, int], float] = {}
        acked: dict[tuple[str, int], float] = {}

        symbols = [f"L{i:02d}" for i in range(10)]
        n = int(rate * seconds)
        with Sampler(worker.urls[0]) as sampler:
            rebalances0 = sampler.samples[0][1].total("tickcast_rebalances_total")
            t0_wall, t0 = time.time(), time.monotonic()
            for i in range(n):
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                symbol, ts = symbols[i % len(symbols)], 1_700_000_000_000 + (i // len(symbols))
                sent[(symbol, ts)] = time.time() * 1000
                producer.send(f"{prefix}prices", symbol.encode(), json.dumps(
                    {"symbol": symbol, "ts": ts, "price": 100.0 + (i % 7) * 0.1}).encode(),
                    on_ack=lambda key=(symbol, ts): acked.__setitem__(key, time.time() * 1000))
            producer.flush()
            offered = n / (time.monotonic() - t0)
            consumer = KafkaConsumer(f"{prefix}forecasts", bootstrap_servers=target.bootstrap,
                                     auto_offset_reset="earliest", consumer_timeout_ms=5000)
            latencies: list[tuple[float, float]] = []
            for message in consumer:
                record = json.loads(message.value)
                at = sent.get((record["symbol"], record["ts"]))
                if at is not None:
                    latencies.append((at / 1000, message.timestamp - at))
            consumer.close()
            producer.close()
        rebalances = sampler.samples[-1][1].total("tickcast_rebalances_total") - rebalances0
    if not latencies:
        raise BenchError(f"no forecast arrived for {n} ticks; see {state}/latency-{prefix}-0.log")
    lat = np.asarray([latency for _, latency in latencies])
    rows = timeline(latencies, sampler.samples, t0=t0_wall, seconds=math.ceil(seconds),
                    acks=[(sent[k] / 1000, acked[k] - sent[k]) for k in acked],
                    pauses=(broker_pauses(broker_gc_log, since=t0_wall)
                            if broker_gc_log is not None else ()))
    return {"offered_per_s": offered, "forecasts": len(lat), "ready_s": ready_s, "t0": t0_wall,
            "load_producer": producer.kind,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()),
            "rebalances_after_ready": rebalances, "worst": worst(rows), "timeline": rows}


def local_broker() -> LocalKafka:
    """The local broker (``tickcast kafka``) as the environment configures it."""
    from tickcast.localkafka import LocalKafka
    from tickcast.settings import ToolSettings
    from tickcast.streams.settings import Settings

    return LocalKafka.from_settings(ToolSettings.from_env(),
                                    state_dir=Settings.from_env().state_dir)


def local_broker_at(bootstrap: str) -> LocalKafka | None:
    """The local broker if it is the one at ``bootstrap``."""
    broker = local_broker()
    return broker if broker.bootstrap == bootstrap else None


def local_gc_log(bootstrap: str) -> Path | None:
    """The GC log of the local broker if it is the one at ``bootstrap``."""
    broker = local_broker_at(bootstrap)
    return broker.gc_log_path if broker else None


# -- the run --------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                / 2**30, 1)}


SERVED_HINT = ": `tickcast train prices sentiment` trains them"


def served_forecaster(target: Target) -> tuple[Any, Any]:
    """The target's model store and the forecaster its workers serve (a clear error if the
    store has none)."""
    from tickcast.models.predictors import load_latest
    from tickcast.models.registry import ModelStore

    store = ModelStore(target.model_dir)
    return store, load_latest(store, target.forecaster, kind="forecaster", hint=SERVED_HINT)


def run_bench(config: BenchConfig, target: Target, *, state: Path,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole run on fresh topics (deleted afterwards unless ``config.keep_topics``)."""
    from tickcast.models.predictors import load_latest
    from tickcast.streams.topics import TopicSpec, ensure_topics

    state.mkdir(parents=True, exist_ok=True)
    store, forecaster = served_forecaster(target)
    rnn = load_latest(store, target.sentiment, kind="sentiment", hint=SERVED_HINT)
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    specs = run_topic_specs(target.bootstrap, prefix, config.partitions)
    specs += [TopicSpec(f"{prefix}bench-{kind}-out", config.partitions, 1)
              for kind in ("ceiling", "faust", "baseline")]
    ensure_topics([target.bootstrap], specs)
    try:
        return _measure(config, target, prefix=prefix, state=state, log=log,
                        forecaster=forecaster, rnn=rnn)
    finally:
        if not config.keep_topics:
            # Quix's state changelogs are named changelog__<group>--...: outside the prefix.
            deleted = (delete_topics(target.bootstrap, prefix)
                       + delete_topics(target.bootstrap, f"changelog__{prefix}"))
            log(f"deleted the run's {deleted} topics ({prefix}*)")


def run_topic_specs(bootstrap: str, prefix: str, partitions: int) -> list[TopicSpec]:
    """The worker's topics under ``prefix``, as a run creates them."""
    from tickcast.streams.settings import Settings
    from tickcast.streams.topics import topic_specs

    return topic_specs(Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix,
                                topic_partitions=partitions))


def delete_topics(bootstrap: str, prefix: str) -> int:
    """Delete every topic whose name starts with ``prefix`` (a run's, Faust's internal ones
    included); returns how many."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tickcast-bench")
    try:
        names = [t for t in admin.list_topics() if t.startswith(prefix)]
        if names:
            admin.delete_topics(names)
        return len(names)
    finally:
        admin.close()


def _measure(config: BenchConfig, target: Target, *, prefix: str, state: Path,
             log: Callable[[str], None], forecaster: Any, rnn: Any) -> dict[str, Any]:
    from tickcast_bench.micro import micro_benchmarks

    from tickcast.streams.topics import ensure_topics
    from tickcast.training.data import sample_texts

    log(f"producing {config.ticks} ticks over {config.symbols} symbols and {config.texts} "
        f"texts to {prefix}* ...")
    counts = produce_input(target.bootstrap, prefix, config)
    expected = (counts["prices"] - config.symbols * (forecaster.window - 1)) + counts["texts"]
    results: dict[str, Any] = {"config": asdict(config), "machine": machine(),
                               "models": {"lstm": forecaster.version, "rnn": rnn.version},
                               "inference_threads": target.inference_threads,
                               "input": counts, "expected_outputs": expected, "prefix": prefix}
    log("tickcast, 1 worker ...")
    results["tickcast"] = run_tickcast(target, prefix, expected, workers=1, state=state,
                                       partitions=config.partitions)
    if config.two_workers:
        log("tickcast, 2 workers ...")
        results["tickcast_2_workers"] = run_tickcast(target, prefix, expected, workers=2,
                                                     state=state, partitions=config.partitions)
    log("tickcast, 1 worker with a challenger in shadow for each model ...")
    shadowed = replace(target, model_dir=challenger_store(target, state))
    results["tickcast_challenger"] = run_tickcast(shadowed, prefix, expected, workers=1,
                                                  state=state, partitions=config.partitions)
    log("tickcast, 1 worker, the forecaster's point-only twin (no intervals) ...")
    point_only = replace(target, model_dir=point_only_store(target, state))
    results["tickcast_point_only"] = run_tickcast(point_only, prefix, expected, workers=1,
                                                  state=state, partitions=config.partitions)
    log("backtest: the same input through tickcast backtest's engine, no broker ...")
    results["backtest"] = run_backtest(config, target, state=state)
    if config.texts_only:
        log(f"tickcast, 1 worker, {config.texts_only} texts only (RNN + VADER) ...")
        text_prefix = f"{prefix}t-"
        ensure_topics([target.bootstrap],
                      run_topic_specs(target.bootstrap, text_prefix, config.partitions))
        only = produce_input(target.bootstrap, text_prefix,
                             replace(config, ticks=0, texts=config.texts_only))
        results["tickcast_texts_only"] = run_tickcast(
            target, text_prefix, only["texts"], workers=1, state=state,
            partitions=config.partitions)
        if _has_side_inputs(target):
            # Twin and served model alternated, twice each, after the run above: the run just
            # after the texts are produced meets a busier broker than the next ones.
            tokens_only = replace(target, model_dir=tokens_only_store(target, state))
            pairs: dict[str, list[dict[str, Any]]] = {"side_inputs": [], "tokens_only": []}
            for i in range(2):
                for key, which in (("tokens_only", tokens_only), ("side_inputs", target)):
                    log(f"tickcast, 1 worker, the same {config.texts_only} texts, "
                        + ("the sentiment model's tokens-only twin (no side inputs)"
                           if key == "tokens_only" else "the served model")
                        + f", pair {i + 1} of 2 ...")
                    pairs[key].append(run_tickcast(
                        which, text_prefix, only["texts"], workers=1, state=state,
                        partitions=config.partitions))
            results["texts_side_input_pairs"] = pairs
            results["tickcast_texts_tokens_only"] = pairs["tokens_only"][0]
    everything = counts["prices"] + counts["texts"]
    log("ceiling: raw aiokafka passthrough ...")
    results["ceiling"] = run_pipeline("ceiling", target, prefix, state=state, seconds=None,
                                      expected=everything)
    log("faust passthrough: a Faust agent forwarding every record, no model ...")
    results["faust_passthrough"] = run_pipeline("faust", target, prefix, state=state,
                                                seconds=None, expected=everything)
    if quix_installed():
        log("quix passthrough: a Quix Streams app forwarding every record, no model ...")
        results["quix_passthrough"] = run_pipeline("quix_passthrough", target, prefix,
                                                   state=state, seconds=None,
                                                   expected=everything)
        log("quix pipeline: tickcast's job on Quix Streams, inference batched in sinks ...")
        results["quix_pipeline"] = run_pipeline("quix_pipeline", target, prefix, state=state,
                                                seconds=None, expected=expected)
    else:
        log("quix peers skipped: quixstreams is not installed (pip install -e './bench[quix]')")
    log(f"baseline: per-message model.predict, {config.baseline_seconds:.0f}s ...")
    results["baseline"] = run_pipeline("baseline", target, prefix, state=state,
                                       seconds=config.baseline_seconds, expected=None)
    log(f"latency at {config.latency_rate:.0f} ticks/s for {config.latency_seconds:.0f}s ...")
    results["latency"] = run_latency(target, rate=config.latency_rate,
                                     seconds=config.latency_seconds, state=state,
                                     partitions=config.partitions, prefix=f"{prefix}lat-",
                                     broker_gc_log=local_gc_log(target.bootstrap))
    log(f"latency with a challenger in shadow, {config.latency_rate:.0f} ticks/s ...")
    results["latency_challenger"] = run_latency(
        shadowed, rate=config.latency_rate, seconds=config.latency_seconds, state=state,
        partitions=config.partitions, prefix=f"{prefix}latc-",
        broker_gc_log=local_gc_log(target.bootstrap))
    log("inference micro-benchmarks ...")
    results["micro"] = micro_benchmarks(forecaster, rnn, list(sample_texts()["text"].head(256)))
    results["ratios"] = _ratios(results, two_workers=config.two_workers)
    return results


def _ratios(results: dict[str, Any], *, two_workers: bool) -> dict[str, float]:
    tc = results["tickcast"]["events_per_s"]
    ratios = {
        "tickcast_over_ceiling": tc / results["ceiling"]["events_per_s"],
        "faust_passthrough_over_ceiling": (results["faust_passthrough"]["events_per_s"]
                                           / results["ceiling"]["events_per_s"]),
        "tickcast_over_faust_passthrough": tc / results["faust_passthrough"]["events_per_s"],
        "tickcast_over_baseline": tc / results["baseline"]["events_per_s"],
    }
    if "tickcast_challenger" in results:
        ratios["challenger_over_tickcast"] = results["tickcast_challenger"]["events_per_s"] / tc
    if "tickcast_point_only" in results:
        ratios["intervals_over_point_only"] = (
            tc / results["tickcast_point_only"]["events_per_s"])
    if "texts_side_input_pairs" in results:  # mean of the alternated runs of each
        pairs = results["texts_side_input_pairs"]
        ratios["side_inputs_over_tokens_only"] = float(
            np.mean([r["events_per_s"] for r in pairs["side_inputs"]])
            / np.mean([r["events_per_s"] for r in pairs["tokens_only"]]))
    if "backtest" in results:
        ratios["backtest_over_tickcast"] = results["backtest"]["events_per_s"] / tc
    if "quix_pipeline" in results:
        ratios["tickcast_over_quix_pipeline"] = tc / results["quix_pipeline"]["events_per_s"]
        ratios["quix_passthrough_over_faust_passthrough"] = (
            results["quix_passthrough"]["events_per_s"]
            / results["faust_passthrough"]["events_per_s"])
    if two_workers:
        two = results["tickcast_2_workers"]
        ratios["two_workers_over_one"] = two["events_per_s"] / tc
        # Per busy core of the whole machine: what a second worker adds once the cores the
        # broker and the rest take are counted.
        ratios["per_busy_core_two_over_one"] = (
            (two["events_per_s"] / two["machine_cores_busy"])
            / (tc / results["tickcast"]["machine_cores_busy"]))
    return ratios


def table(results: dict[str, Any]) -> str:
    """The run as Markdown tables (what ``tickcast bench`` prints)."""
    rows = [("pipeline", "events/s", "ready s", "peak RSS MiB", "CPU s / 1k events",
             "worker cores", "machine cores busy")]
    for name in ("tickcast", "tickcast_2_workers", "tickcast_challenger", "tickcast_point_only",
                 "tickcast_texts_only", "tickcast_texts_tokens_only",
                 "backtest", "ceiling", "faust_passthrough", "quix_passthrough",
                 "quix_pipeline", "baseline"):
        r = results.get(name)
        if r:
            rows.append((name.replace("_", " "), f"{r['events_per_s']:,.0f}",
                         f"{r['ready_s']:.1f}" if "ready_s" in r else "",
                         f"{r['rss_peak_mib']:.0f}",
                         f"{r['cpu_s_per_1k_events']:.2f}" if "cpu_s_per_1k_events" in r
                         else "",
                         f"{r['worker_cores']:.2f}" if "worker_cores" in r else "",
                         f"{r['machine_cores_busy']:.2f}" if "machine_cores_busy" in r
                         else ""))
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    ratios = results["ratios"]
    lat = results["latency"]
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {v:.2f}x |" for k, v in ratios.items()]
    lines += ["", f"Latency tick → forecast at {lat['offered_per_s']:.0f} ticks/s offered: "
              f"p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} "
              f"ms, max {lat['max_ms']:.0f} ms ({lat['forecasts']} forecasts); "
              f"{describe_worst(lat.get('worst'))}.", ""]
    shadow = results.get("latency_challenger")
    if shadow:
        lines += [f"With a challenger in shadow: p50 {shadow['p50_ms']:.0f} ms, p99 "
                  f"{shadow['p99_ms']:.0f} ms, max {shadow['max_ms']:.0f} ms "
                  f"({shadow['forecasts']} forecasts); "
                  f"{describe_worst(shadow.get('worst'))}.", ""]
    lines += ["| model | batch | predict ms | serving ms | serving backend | speed-up | items/s "
              "| max abs diff |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {m['model']} | {m['batch']} | {m['predict_ms']:.2f} | "
              f"{m['serving_ms']:.3f} | {m['backend']} | {m['speedup']:.0f}x | "
              f"{m['serving_items_per_s']:,.0f} | {m['max_abs_diff']:.1e} |"
              for m in results["micro"]]
    return "\n".join(lines)
