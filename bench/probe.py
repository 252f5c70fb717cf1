"""Steady-state throughput of one worker on a backlog, or its latency at a fixed rate.

``python -m tickcast_bench.probe --ticks 200000 --texts 0`` produces the backlog to fresh
topics on the broker (``TICKCAST_KAFKA_BOOTSTRAP``), starts one worker, lets it warm up, then
reports outputs/s and the worker's CPU (cores) over a fixed span. Unlike ``tickcast bench`` it
leaves start-up and the tail of the backlog out, so two versions of the code compare on the
steady state. ``--prefix`` reuses a backlog produced earlier.

``--workers N`` runs a group of N workers instead of one; the warm-up starts once every worker
is producing. ``--broker-requests`` also reports, from the local broker, its produce, fetch and
offset-commit requests per 1,000 outputs over the span and its CPU per output
(:mod:`tickcast_bench.brokerstats`).

``--passthrough`` runs the bench's Faust passthrough (no model) on the backlog instead of a
worker; ``--app``, ``--take`` and ``--send`` pick its variant (see
:mod:`tickcast_bench.pipelines`).

``--latency RATE`` measures tick -> forecast latency instead, as ``tickcast bench`` does: one
worker, ``RATE`` ticks/s offered for ``--seconds`` (default 60), on topics of its own, deleted
afterwards; ``--runs N`` repeats it with a fresh worker each time and counts the runs that meet
the objective (p99 <= 50 ms and max <= 250 ms). Each run prints its worst second and that
second's dominant stage; ``--json`` keeps every run's per-second timeline. The protocol
includes the first run after a fresh broker: ``--fresh-broker`` stops the local broker
(``tickcast kafka``), empties its data directory and starts it again before the first run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

from tickcast_bench import brokerstats
from tickcast_bench.harness import (
    BenchConfig,
    Target,
    challenger_store,
    delete_topics,
    local_broker,
    local_broker_at,
    local_gc_log,
    produce_input,
    run_latency,
    run_pipeline,
    run_topic_specs,
)
from tickcast_bench.pipelines import add_variant_arguments, variant_arguments
from tickcast_bench.processes import BenchError, Workers
from tickcast_bench.timeline import describe_worst

from tickcast.streams.settings import Settings

__all__ = ["main"]

PARTITIONS = 8


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tickcast_bench.probe",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=200_000, help="ticks in the backlog")
    parser.add_argument("--texts", type=int, default=0, help="labelled texts in the backlog")
    parser.add_argument("--prefix", help="reuse the backlog on topics with this prefix")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds between every worker producing outputs (its start-up "
                        "over) and measuring")
    parser.add_argument("--seconds", type=float,
                        help="seconds measured (default 15; 60 with --latency)")
    parser.add_argument("--state", type=Path, default=Path(".tickcast/probe"))
    parser.add_argument("--latency", type=float, metavar="RATE",
                        help="measure latency at RATE ticks/s offered instead of throughput")
    parser.add_argument("--runs", type=int, default=1,
                        help="latency runs, each with a fresh worker (default 1)")
    parser.add_argument("--json", type=Path, help="write the latency runs (with their "
                        "per-second timelines) to this file")
    parser.add_argument("--fresh-broker", action="store_true",
                        help="restart the local broker on an empty data directory first")
    parser.add_argument("--worker-setting", action="append", default=[], metavar="NAME=VALUE",
                        type=_setting, help="a TICKCAST_* setting of the worker (repeatable), "
                        "e.g. TICKCAST_BATCHES_IN_FLIGHT=16: one candidate change per run")
    parser.add_argument("--challenger", action="store_true",
                        help="the worker shadows a copy of each served model as its "
                        "challenger (every model runs twice per batch)")
    parser.add_argument("--passthrough", action="store_true",
                        help="run the bench's Faust passthrough on the backlog instead of a "
                        "worker")
    parser.add_argument("--workers", type=int, default=1, choices=range(1, 9), metavar="N",
                        help="throughput: workers in the group (default 1); each worker's "
                        "outputs count from when every worker is producing")
    parser.add_argument("--broker-requests", action="store_true",
                        help="throughput, on the local broker: its produce, fetch and "
                        "offset-commit requests per 1,000 outputs over the span, and its CPU "
                        "per output (read over JMX with java)")
    add_variant_arguments(parser, "--passthrough")
    return parser.parse_args(argv)


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("TICKCAST_"):
        raise argparse.ArgumentTypeError(f"expected TICKCAST_NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.seconds is None:
        args.seconds = 60.0 if args.latency is not None else 15.0
    settings = Settings.from_env()
    target = Target(bootstrap=settings.kafka_bootstrap, model_dir=settings.model_dir.resolve(),
                    forecaster=settings.forecaster_model, sentiment=settings.sentiment_model,
                    settings=tuple(args.worker_setting))
    if args.challenger:
        args.state.mkdir(parents=True, exist_ok=True)
        target = replace(target, model_dir=challenger_store(target, args.state))
    try:
        if args.latency is not None:
            return _latency(target, args)
        return _throughput(target, args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _throughput(target: Target, args: argparse.Namespace) -> int:
    from tickcast.streams.topics import ensure_topics

    prefix, produced = args.prefix, args.prefix is None
    if prefix is None:
        prefix = f"probe{uuid.uuid4().hex[:6]}-"
        ensure_topics([target.bootstrap], run_topic_specs(target.bootstrap, prefix, PARTITIONS))
        print(f"producing {args.ticks} ticks and {args.texts} texts to {prefix}* ...",
              flush=True)
        produce_input(target.bootstrap, prefix, BenchConfig(ticks=args.ticks, symbols=50,
                                                            texts=args.texts))
    args.state.mkdir(parents=True, exist_ok=True)
    if args.passthrough:
        return _passthrough(target, prefix, args.ticks + args.texts if produced else None, args)
    broker_pid = _local_broker_pid(target) if args.broker_requests else None
    app_id = f"{prefix}probe-{uuid.uuid4().hex[:4]}"
    with Workers(args.workers, target, log_dir=args.state, name=app_id, prefix=prefix,
                 app_id=app_id, partitions=PARTITIONS) as worker:
        worker.wait_ready()
        worker.wait_producing()
        time.sleep(args.warmup)
        broker_before = brokerstats.sample(broker_pid) if broker_pid else None
        before, cpu_before, started = worker.outputs(), worker.cpu_seconds(), time.monotonic()
        time.sleep(args.seconds)
        after, cpu_after = worker.outputs(), worker.cpu_seconds()
        span = time.monotonic() - started
        broker_after = brokerstats.sample(broker_pid) if broker_pid else None
    if after <= before:
        raise BenchError(f"no outputs over the {span:.0f} s span: the backlog ran out (produce "
                         "a larger one) or the workers are stuck; see " + worker.logs)
    workers = f"{args.workers} workers' " if args.workers > 1 else "worker "
    print(f"backlog {prefix}: {(after - before) / span:,.0f} outputs/s over {span:.0f} s, "
          f"{workers}CPU {(cpu_after - cpu_before) / span:.2f} cores, "
          f"{(cpu_after - cpu_before) / (after - before) * 1e6:.1f} µs per output, "
          f"{after:,.0f} outputs in all")
    if broker_before and broker_after:
        rates = brokerstats.per_thousand(broker_before, broker_after, after - before)
        shown = ", ".join(f"{name} {rates.get(name, 0.0):.2f}" for name in brokerstats.SHOWN)
        print(f"broker requests per 1,000 outputs: {shown}; broker CPU "
              f"{rates['cpu_us']:.1f} µs per output")
    if produced and after >= 0.9 * (args.ticks + args.texts):
        print("warning: the backlog ran out during the span; produce a larger one",
              file=sys.stderr)
    return 0


def _local_broker_pid(target: Target) -> int:
    """The pid of the local broker (``tickcast kafka up``), which must be the target."""
    broker = local_broker_at(target.bootstrap)
    pid = broker.status().pid if broker else None
    if pid is None:
        raise BenchError(f"--broker-requests reads the local broker (`tickcast kafka up`); "
                         f"none runs at {target.bootstrap}")
    return pid


def _passthrough(target: Target, prefix: str, expected: int | None,
                 args: argparse.Namespace) -> int:
    from tickcast.streams.topics import TopicSpec, ensure_topics

    ensure_topics([target.bootstrap], [TopicSpec(f"{prefix}bench-faust-out", PARTITIONS, 1)])
    if expected is None:  # a backlog produced earlier: count what its topics hold
        expected = _backlog(target.bootstrap, prefix)
    result = run_pipeline("faust", target, prefix, state=args.state, seconds=None,
                          expected=expected,
                          variant=variant_arguments(args))
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


SLO_P99_MS = 50.0
SLO_MAX_MS = 250.0


def _latency(target: Target, args: argparse.Namespace) -> int:
    if args.latency <= 0 or args.seconds <= 0 or args.runs < 1:
        print("error: --latency and --seconds must be > 0, --runs >= 1", file=sys.stderr)
        return 2
    args.state.mkdir(parents=True, exist_ok=True)
    if args.fresh_broker:
        _fresh_broker()
    results = []
    for run in range(1, args.runs + 1):
        prefix = f"plat{uuid.uuid4().hex[:6]}-"
        try:
            result = run_latency(target, rate=args.latency, seconds=args.seconds,
                                 state=args.state, partitions=PARTITIONS, prefix=prefix,
                                 broker_gc_log=local_gc_log(target.bootstrap))
        finally:
            delete_topics(target.bootstrap, prefix)
        result["run"] = run
        result["meets_objective"] = (result["p99_ms"] <= SLO_P99_MS
                                     and result["max_ms"] <= SLO_MAX_MS)
        results.append(result)
        print(f"run {run}/{args.runs}: latency at {result['offered_per_s']:,.0f} ticks/s "
              f"offered: p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms, p99 "
              f"{result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms "
              f"({result['forecasts']:,} forecasts, ready in {result['ready_s']:.1f} s, "
              f"{result['rebalances_after_ready']:.0f} rebalance(s) after ready)", flush=True)
        print(f"  {describe_worst(result['worst'])}", flush=True)
        if args.json is not None:  # after every run: a long series keeps what it measured
            args.json.write_text(json.dumps({"rate": args.latency, "seconds": args.seconds,
                                             "fresh_broker": args.fresh_broker,
                                             "runs": results}, indent=1))
    met = sum(r["meets_objective"] for r in results)
    if args.runs > 1:
        print(f"{met}/{len(results)} runs met p99 <= {SLO_P99_MS:.0f} ms and max <= "
              f"{SLO_MAX_MS:.0f} ms; p99 by run: "
              + ", ".join(f"{r['p99_ms']:.0f}" for r in results) + " ms; max by run: "
              + ", ".join(f"{r['max_ms']:.0f}" for r in results) + " ms")
    return 0


def _fresh_broker() -> None:
    """Stop the local broker, empty its data directory, start it again."""
    broker = local_broker()
    broker.down()
    shutil.rmtree(broker.data_dir, ignore_errors=True)
    broker.up()
    print(f"fresh broker: {broker.status().describe()}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
