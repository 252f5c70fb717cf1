"""The benchmark run: one broker, the same input, three pipelines measured in turn.

1. Input is produced before any clock starts: ``ticks`` random-walk ticks over ``symbols``
   symbols and ``texts`` labelled texts (the shipped sample, cycled with fresh ids).
2. Each pipeline consumes it from the beginning under its own consumer group:
   tickcast (1 and 2 workers), the per-message baseline, the raw ceiling, and the same
   passthrough as a Faust agent. Rate = outputs /
   seconds from "ready" (partitions assigned) to the last output. One more tickcast run
   reads ``texts_only`` texts and no ticks: the rate of RNN + VADER scoring alone.
3. Latency: a fresh worker, ticks offered at a fixed rate; each forecast's Kafka timestamp
   minus the time its tick was sent.
4. Micro-benchmarks of inference per batch size.
Everything is reported as measured, with ratios against the baseline and ceiling measured in
the same run. Linux only (CPU and RSS come from /proc).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tickcast.demo import scrape

if TYPE_CHECKING:
    from tickcast.streams.topics import TopicSpec

__all__ = ["BenchConfig", "delete_topics", "run_bench", "run_topic_specs"]


@dataclass(frozen=True, slots=True)
class BenchConfig:
    ticks: int = 200_000
    symbols: int = 50
    texts: int = 50_000
    baseline_seconds: float = 20.0
    latency_rate: float = 1000.0
    latency_seconds: float = 20.0
    two_workers: bool = True
    partitions: int = 8
    texts_only: int = 50_000
    """Texts of the texts-only run (RNN + VADER alone); 0 skips it."""
    keep_topics: bool = False
    """Keep the run's topics afterwards. Deleted by default: ~300 partitions a run would
    otherwise pile up in the broker (a local broker holding ~10k partitions from earlier
    runs measured a p99 latency two to three times higher than a fresh one)."""

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(ticks=4000, symbols=10, texts=1000, baseline_seconds=5.0,
                   latency_rate=200.0, latency_seconds=3.0, two_workers=False,
                   texts_only=1000)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of a live process, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0.0
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cpu, peak


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, all cores, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _cores_busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Cores the whole machine kept busy between two :func:`_machine_ticks` readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total * (os.cpu_count() or 1) if total > 0 else 0.0


# -- input -------------------------------------------------------------------------------------
def balanced_symbols(count: int, partitions: int) -> list[str]:
    """``count`` symbol names (``S000``, ``S001``, ... skipping some) whose keys land evenly on
    ``partitions`` under Kafka's default partitioner: ``count // partitions`` or one more per
    partition.

    With the first 50 names as they come, murmur2 puts 15 symbols on one of 8 partitions and
    1 on another: one of two workers then holds anywhere from half to 78 % of the ticks,
    depending on which partitions it is given, and the two-worker ratio measures that luck.
    Real keys are skewed too, but the bench measures the workers.
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


def produce_input(bootstrap: str, prefix: str, config: BenchConfig) -> dict[str, int]:
    from kafka import KafkaProducer

    from tickcast.training.data import sample_texts

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=256 * 1024, compression_type=None)
    rng = np.random.default_rng(1)
    steps = config.ticks // config.symbols
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (steps, config.symbols)), axis=0))
    base = 1_700_000_000_000
    symbols = balanced_symbols(config.symbols, config.partitions)
    for step in range(steps):
        for s, symbol in enumerate(symbols):
            value = json.dumps({"symbol": symbol, "ts": base + step * 1000,
                                "price": round(float(prices[step, s]), 4)}).encode()
            producer.send(f"{prefix}prices", key=symbol.encode(), value=value)
    sample = sample_texts()
    for i in range(config.texts):
        row = sample.iloc[i % len(sample)]
        text_id = f"{row['id']}#{i}"
        producer.send(f"{prefix}texts", key=text_id.encode(), value=json.dumps(
            {"id": text_id, "ts": base, "text": row["text"], "label": int(row["label"])}
        ).encode())
    producer.flush()
    producer.close()
    return {"prices": steps * config.symbols, "texts": config.texts}


# -- tickcast ------------------------------------------------------------------------------------
def _worker_env(bootstrap: str, prefix: str, app_id: str, port: int, state: Path,
                model_dir: Path, partitions: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    env.update({"TICKCAST_KAFKA_BOOTSTRAP": bootstrap, "TICKCAST_TOPIC_PREFIX": prefix,
                "TICKCAST_APP_ID": app_id, "TICKCAST_METRICS_PORT": str(port),
                "TICKCAST_STATE_DIR": str(state), "TICKCAST_MODEL_DIR": str(model_dir),
                "TICKCAST_TOPIC_PARTITIONS": str(partitions), "TICKCAST_LOG_LEVEL": "warning"})
    return env


def _outputs(urls: list[str]) -> float:
    total = 0.0
    for url in urls:
        samples = scrape(url)
        total += sum(samples.get(("tickcast_events_out_total", (("topic", t),)), 0.0)
                     for t in ("forecasts", "sentiment"))
    return total


def _ready(urls: list[str]) -> bool:
    assigned = 0.0
    for url in urls:
        try:
            samples = scrape(url)
        except OSError:
            return False
        assigned += sum(v for (n, _), v in samples.items()
                        if n == "tickcast_assigned_partitions")
    return assigned > 0


def _wait_ready(urls: list[str], procs: list[subprocess.Popen[bytes]], *, logs: Path | str,
                timeout: float = 120.0) -> None:
    """Until the workers behind ``urls`` own partitions; RuntimeError if one exits first or
    ``timeout`` passes (``logs``: where to look)."""
    deadline = time.monotonic() + timeout
    while not _ready(urls):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"tickcast worker did not become ready; see {logs}")
        time.sleep(0.05)


def run_tickcast(bootstrap: str, prefix: str, expected: int, *, workers: int, state: Path,
                 model_dir: Path, partitions: int, timeout: float = 900.0) -> dict[str, Any]:
    app_id = f"{prefix}tc{workers}-{uuid.uuid4().hex[:4]}"
    procs, urls = [], []
    started = time.monotonic()
    for i in range(workers):
        port = _free_port()
        log = open(state / f"{app_id}-{i}.log", "wb")  # noqa: SIM115 - closed with the proc
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tickcast", "worker"], stdout=log, stderr=subprocess.STDOUT,
            env=_worker_env(bootstrap, prefix, app_id, port, state / f"w{i}", model_dir,
                            partitions)))
        urls.append(f"http://127.0.0.1:{port}/metrics")
    try:
        _wait_ready(urls, procs, logs=state)
        ready_s = time.monotonic() - started
        t0 = time.monotonic()
        machine0, cpu0 = _machine_ticks(), sum(_proc_stats(p.pid)[0] for p in procs)
        done = 0.0
        while done < expected:
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{done:.0f}/{expected} outputs after {timeout:.0f}s")
            time.sleep(0.2)
            done = _outputs(urls)
        seconds = time.monotonic() - t0
        stats = [_proc_stats(p.pid) for p in procs]
        machine = _cores_busy(machine0, _machine_ticks())
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    cpu = sum(s[0] for s in stats)
    return {"workers": workers, "events": expected, "seconds": seconds,
            "events_per_s": expected / seconds, "ready_s": ready_s,
            "rss_peak_mib": max(s[1] for s in stats), "cpu_s_per_1k_events": cpu / expected * 1000,
            "worker_cores": (cpu - cpu0) / seconds, "machine_cores_busy": machine}


# -- baseline and ceiling ---------------------------------------------------------------------
def run_pipeline(kind: str, bootstrap: str, prefix: str, *, state: Path, model_dir: Path,
                 seconds: float | None, expected: int | None) -> dict[str, Any]:
    scratch = state / f"{kind}-{uuid.uuid4().hex[:6]}"  # removed after the run
    scratch.mkdir(parents=True)
    progress = scratch / "progress.jsonl"
    env = {**os.environ, "BENCH_BOOTSTRAP": bootstrap, "BENCH_PREFIX": prefix,
           "BENCH_GROUP": f"{prefix}{kind}-{uuid.uuid4().hex[:4]}", "BENCH_PROGRESS": str(progress),
           "BENCH_MODEL_DIR": str(model_dir), "BENCH_DATADIR": str(scratch / "faust")}
    with open(state / f"{kind}.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tickcast.bench.pipelines", kind],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        points: list[dict[str, float]] = []
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited; see {state / (kind + '.log')}")
            if progress.exists():
                points = [json.loads(line) for line in progress.read_text().splitlines()]
            first = points[0] if points else None
            if first is None:
                continue
            if expected is not None and points[-1]["count"] >= expected:
                break
            if seconds is not None and points[-1]["t"] - first["t"] >= seconds:
                break
        cpu, rss = _proc_stats(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)
    first, last = points[0], points[-1]
    span = max(last["t"] - first["t"], 1e-9)
    return {"events": last["count"] - first["count"], "seconds": span,
            "events_per_s": (last["count"] - first["count"]) / span, "rss_peak_mib": rss,
            "cpu_s_per_1k_events": cpu / max(last["count"], 1) * 1000}


# -- latency --------------------------------------------------------------------------------------
def run_latency(bootstrap: str, *, rate: float, seconds: float, state: Path, model_dir: Path,
                partitions: int, prefix: str) -> dict[str, Any]:
    from kafka import KafkaConsumer, KafkaProducer

    from tickcast.streams.topics import ensure_topics

    ensure_topics([bootstrap], run_topic_specs(bootstrap, prefix, partitions))
    port = _free_port()
    env = _worker_env(bootstrap, prefix, f"{prefix}app", port, state / "lat", model_dir,
                      partitions)
    with open(state / "latency-worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "tickcast", "worker"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        _wait_ready([url], [worker], logs=state / "latency-worker.log")
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
        sent: dict[tuple[str, int], float] = {}
        symbols = [f"L{i:02d}" for i in range(10)]
        n = int(rate * seconds)
        t0 = time.monotonic()
        for i in range(n):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            symbol, ts = symbols[i % len(symbols)], 1_700_000_000_000 + (i // len(symbols))
            sent[(symbol, ts)] = time.time() * 1000
            producer.send(f"{prefix}prices", key=symbol.encode(), value=json.dumps(
                {"symbol": symbol, "ts": ts, "price": 100.0 + (i % 7) * 0.1}).encode())
        producer.flush()
        offered = n / (time.monotonic() - t0)
        consumer = KafkaConsumer(f"{prefix}forecasts", bootstrap_servers=bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=5000)
        latencies = []
        for message in consumer:
            record = json.loads(message.value)
            key = (record["symbol"], record["ts"])
            if key in sent:
                latencies.append(message.timestamp - sent[key])
        consumer.close()
        producer.close()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    lat = np.asarray(latencies)
    return {"offered_per_s": offered, "forecasts": len(lat),
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max())}


# -- the run --------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                / 2**30, 1)}


def run_bench(config: BenchConfig, *, bootstrap: str, model_dir: Path, state: Path,
              log: Any = print) -> dict[str, Any]:
    from tickcast.models.predictors import load_predictor
    from tickcast.models.registry import ModelStore
    from tickcast.streams.topics import TopicSpec, ensure_topics

    state.mkdir(parents=True, exist_ok=True)
    store = ModelStore(model_dir)
    forecaster = load_predictor(store.path("gold-lstm", store.latest("gold-lstm") or "-"))
    rnn = load_predictor(store.path("sentiment-rnn", store.latest("sentiment-rnn") or "-"))
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    specs = run_topic_specs(bootstrap, prefix, config.partitions)
    specs += [TopicSpec(f"{prefix}bench-{kind}-out", config.partitions, 1)
              for kind in ("ceiling", "faust", "baseline")]
    ensure_topics([bootstrap], specs)
    try:
        return _measure(config, bootstrap=bootstrap, prefix=prefix, model_dir=model_dir,
                        state=state, log=log, forecaster=forecaster, rnn=rnn)
    finally:
        if not config.keep_topics:
            deleted = delete_topics(bootstrap, prefix)
            log(f"deleted the run's {deleted} topics ({prefix}*)")


def run_topic_specs(bootstrap: str, prefix: str, partitions: int) -> list[TopicSpec]:
    """The worker's topics under ``prefix``, as a run creates them."""
    from tickcast.streams.settings import Settings
    from tickcast.streams.topics import topic_specs

    return topic_specs(Settings.from_env({}, kafka_bootstrap=bootstrap, topic_prefix=prefix,
                                         topic_partitions=partitions))


def delete_topics(bootstrap: str, prefix: str) -> int:
    """Delete every topic whose name starts with ``prefix`` (a bench run's, Faust's internal
    ones included); returns how many."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tickcast-bench")
    try:
        names = [t for t in admin.list_topics() if t.startswith(prefix)]
        if names:
            admin.delete_topics(names)
        return len(names)
    finally:
        admin.close()


def _measure(config: BenchConfig, *, bootstrap: str, prefix: str, model_dir: Path,
             state: Path, log: Any, forecaster: Any, rnn: Any) -> dict[str, Any]:
    from tickcast.bench.micro import micro_benchmarks
    from tickcast.streams.topics import ensure_topics
    from tickcast.training.data import sample_texts

    log(f"producing {config.ticks} ticks over {config.symbols} symbols and {config.texts} "
        f"texts to {prefix}* ...")
    counts = produce_input(bootstrap, prefix, config)
    window = forecaster.window  # type: ignore[union-attr]
    expected = (counts["prices"] - config.symbols * (window - 1)) + counts["texts"]
    results: dict[str, Any] = {"config": asdict(config), "machine": machine(),
                               "models": {"lstm": forecaster.version, "rnn": rnn.version},
                               "input": counts, "expected_outputs": expected, "prefix": prefix}
    log("tickcast, 1 worker ...")
    results["tickcast"] = run_tickcast(bootstrap, prefix, expected, workers=1, state=state,
                                       model_dir=model_dir, partitions=config.partitions)
    if config.two_workers:
        log("tickcast, 2 workers ...")
        results["tickcast_2_workers"] = run_tickcast(
            bootstrap, prefix, expected, workers=2, state=state, model_dir=model_dir,
            partitions=config.partitions)
    if config.texts_only:
        log(f"tickcast, 1 worker, {config.texts_only} texts only (RNN + VADER) ...")
        text_prefix = f"{prefix}t-"
        ensure_topics([bootstrap], run_topic_specs(bootstrap, text_prefix, config.partitions))
        only = produce_input(bootstrap, text_prefix,
                             replace(config, ticks=0, texts=config.texts_only))
        results["tickcast_texts_only"] = run_tickcast(
            bootstrap, text_prefix, only["texts"], workers=1, state=state,
            model_dir=model_dir, partitions=config.partitions)
    log("ceiling: raw aiokafka passthrough ...")
    results["ceiling"] = run_pipeline("ceiling", bootstrap, prefix, state=state,
                                      model_dir=model_dir, seconds=None,
                                      expected=counts["prices"] + counts["texts"])
    log("faust passthrough: a Faust agent forwarding every record, no model ...")
    results["faust_passthrough"] = run_pipeline(
        "faust", bootstrap, prefix, state=state, model_dir=model_dir, seconds=None,
        expected=counts["prices"] + counts["texts"])
    log(f"baseline: per-message model.predict, {config.baseline_seconds:.0f}s ...")
    results["baseline"] = run_pipeline("baseline", bootstrap, prefix, state=state,
                                       model_dir=model_dir, seconds=config.baseline_seconds,
                                       expected=None)
    log(f"latency at {config.latency_rate:.0f} ticks/s for {config.latency_seconds:.0f}s ...")
    results["latency"] = run_latency(bootstrap, rate=config.latency_rate,
                                     seconds=config.latency_seconds, state=state,
                                     model_dir=model_dir, partitions=config.partitions,
                                     prefix=f"{prefix}lat-")
    log("inference micro-benchmarks ...")
    results["micro"] = micro_benchmarks(forecaster, rnn,  # type: ignore[arg-type]
                                        list(sample_texts()["text"].head(256)))
    tc = results["tickcast"]["events_per_s"]
    results["ratios"] = {
        "tickcast_over_ceiling": tc / results["ceiling"]["events_per_s"],
        "faust_passthrough_over_ceiling": (results["faust_passthrough"]["events_per_s"]
                                           / results["ceiling"]["events_per_s"]),
        "tickcast_over_faust_passthrough": tc / results["faust_passthrough"]["events_per_s"],
        "tickcast_over_baseline": tc / results["baseline"]["events_per_s"],
    }
    if config.two_workers:
        results["ratios"]["two_workers_over_one"] = (
            results["tickcast_2_workers"]["events_per_s"] / tc)
    return results


def table(results: dict[str, Any]) -> str:
    rows = [("pipeline", "events/s", "ready s", "peak RSS MiB", "CPU s / 1k events",
             "worker cores", "machine cores busy")]
    for name in ("tickcast", "tickcast_2_workers", "tickcast_texts_only", "ceiling",
                 "faust_passthrough", "baseline"):
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
              f"ms ({lat['forecasts']} forecasts).", "",
              "| model | batch | predict ms | tf.function ms | speed-up | items/s | max abs diff |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {m['model']} | {m['batch']} | {m['predict_ms']:.2f} | "
              f"{m['tf_function_ms']:.2f} | {m['speedup']:.0f}x | "
              f"{m['tf_function_items_per_s']:,.0f} | {m['max_abs_diff']:.1e} |"
              for m in results["micro"]]
    return "\n".join(lines)
