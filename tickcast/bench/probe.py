"""Steady-state throughput of one worker on a backlog: the probe used to measure each
optimisation in the README's "what changed" table.

``python -m tickcast.bench.probe --ticks 200000 --texts 0`` produces the backlog to fresh
topics on the local broker (``TICKCAST_KAFKA_BOOTSTRAP``), starts one worker, lets it warm up,
then reports outputs/s and the worker's CPU (cores) over a fixed span. Unlike ``tickcast
bench`` it leaves start-up and the tail of the backlog out, so two commits compare on the part
that optimisation changes. ``--prefix`` reuses a backlog produced earlier.

``--passthrough`` runs the bench's Faust passthrough (no model) on the backlog instead of a
worker; ``BENCH_FAUST_APP``, ``BENCH_FAUST_TAKE`` and ``BENCH_FAUST_SEND`` pick its variant
(see :mod:`tickcast.bench.pipelines`).

``--latency RATE`` measures tick -> forecast latency instead, as ``tickcast bench`` does: one
worker, ``RATE`` ticks/s offered for ``--seconds``, on topics of its own, deleted afterwards.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from tickcast.bench.harness import (
        BenchConfig,
        _free_port,
        _outputs,
        _proc_stats,
        _wait_ready,
        _worker_env,
        produce_input,
        run_topic_specs,
    )
    from tickcast.streams.settings import Settings
    from tickcast.streams.topics import ensure_topics

    parser = argparse.ArgumentParser(prog="python -m tickcast.bench.probe",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=200_000, help="ticks in the backlog")
    parser.add_argument("--texts", type=int, default=0, help="labelled texts in the backlog")
    parser.add_argument("--prefix", help="reuse the backlog on topics with this prefix")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds between the worker being ready (partitions assigned) "
                        "and measuring")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds measured")
    parser.add_argument("--state", type=Path, default=Path(".tickcast/probe"))
    parser.add_argument("--latency", type=float, metavar="RATE",
                        help="measure latency at RATE ticks/s offered instead of throughput")
    parser.add_argument("--passthrough", action="store_true",
                        help="run the bench's Faust passthrough on the backlog instead of a "
                        "worker (BENCH_FAUST_APP/TAKE/SEND pick its variant)")
    args = parser.parse_args(argv)
    if args.latency is not None:
        return _latency(args.latency, args.seconds, args.state)

    settings = Settings.from_env()
    bootstrap = settings.kafka_bootstrap
    prefix, produced = args.prefix, args.prefix is None
    if prefix is None:
        prefix = f"probe{uuid.uuid4().hex[:6]}-"
        ensure_topics(settings.bootstrap_servers, run_topic_specs(bootstrap, prefix, 8))
        print(f"producing {args.ticks} ticks and {args.texts} texts to {prefix}* ...",
              flush=True)
        produce_input(bootstrap, prefix, BenchConfig(ticks=args.ticks, symbols=50,
                                                     texts=args.texts))
    args.state.mkdir(parents=True, exist_ok=True)
    if args.passthrough:
        return _passthrough(bootstrap, prefix, args.ticks + args.texts if produced else None,
                            args.state)
    port = _free_port()
    app_id = f"{prefix}probe-{uuid.uuid4().hex[:4]}"
    env = _worker_env(bootstrap, prefix, app_id, port, args.state / app_id,
                      settings.model_dir.resolve(), 8)
    with open(args.state / f"{app_id}.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "tickcast", "worker"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    url = [f"http://127.0.0.1:{port}/metrics"]
    try:
        try:
            _wait_ready(url, [worker], logs=log.name)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        time.sleep(args.warmup)
        before, cpu_before, started = _outputs(url), _proc_stats(worker.pid)[0], time.monotonic()
        time.sleep(args.seconds)
        after, cpu_after = _outputs(url), _proc_stats(worker.pid)[0]
        span = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    print(f"backlog {prefix}: {(after - before) / span:,.0f} outputs/s over {span:.0f} s, "
          f"worker CPU {(cpu_after - cpu_before) / span:.2f} cores, {after:,.0f} outputs in "
          "all")
    if produced and after >= 0.9 * (args.ticks + args.texts):
        print("warning: the backlog ran out during the span; produce a larger one",
              file=sys.stderr)
    return 0


def _passthrough(bootstrap: str, prefix: str, expected: int | None, state: Path) -> int:
    from tickcast.bench.harness import run_pipeline
    from tickcast.streams.topics import TopicSpec, ensure_topics

    ensure_topics([bootstrap], [TopicSpec(f"{prefix}bench-faust-out", 8, 1)])
    if expected is None:  # a backlog produced earlier: count what its topics hold
        expected = _backlog(bootstrap, prefix)
    result = run_pipeline("faust", bootstrap, prefix, state=state, model_dir=state,
                          seconds=None, expected=expected)
    print(f"backlog {prefix}: Faust passthrough {result['events_per_s']:,.0f} events/s over "
          f"{result['seconds']:.0f} s ({result['events']:,} events)")
    return 0


def _backlog(bootstrap: str, prefix: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(f"{prefix}{name}", p) for name in ("prices", "texts")
                 for p in consumer.partitions_for_topic(f"{prefix}{name}") or ()]
        begin, end = consumer.beginning_offsets(parts), consumer.end_offsets(parts)
        return sum(end[tp] - begin[tp] for tp in parts)
    finally:
        consumer.close()


def _latency(rate: float, seconds: float, state: Path) -> int:
    from tickcast.bench.harness import delete_topics, run_latency
    from tickcast.streams.settings import Settings

    if rate <= 0 or seconds <= 0:
        print("error: --latency and --seconds must be > 0", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    prefix = f"plat{uuid.uuid4().hex[:6]}-"
    state.mkdir(parents=True, exist_ok=True)
    try:
        result = run_latency(settings.kafka_bootstrap, rate=rate, seconds=seconds, state=state,
                             model_dir=settings.model_dir.resolve(), partitions=8,
                             prefix=prefix)
    finally:
        delete_topics(settings.kafka_bootstrap, prefix)
    print(f"latency at {result['offered_per_s']:,.0f} ticks/s offered: p50 "
          f"{result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms, p99 "
          f"{result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms "
          f"({result['forecasts']:,} forecasts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
