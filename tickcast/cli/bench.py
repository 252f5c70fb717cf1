"""``tickcast bench``: the benchmark run (the ``tickcast_bench`` package in ``bench/``)."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from tickcast.cli.common import EPILOG, Context, positive_int
from tickcast.errors import UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    bench = sub.add_parser("bench", help="throughput, latency and resources vs baseline and "
                           "ceiling, measured in one run",
                           description="Produce a workload to the broker, then measure "
                           "tickcast (1 and 2 workers), a per-message model.predict baseline, "
                           "a raw aiokafka passthrough, a Faust passthrough and Quix "
                           "Streams peers (a passthrough and the same pipeline) on it, "
                           "tick-to-forecast latency at a fixed rate with its per-second "
                           "timeline, and inference "
                           "micro-benchmarks. Prints a table and writes JSON to bench/results/. "
                           "Needs the bench package (bench/, installed by `make setup`).",
                           epilog=EPILOG)
    bench.add_argument("--quick", action="store_true", help="a small run (harness check)")
    bench.add_argument("--ticks", type=positive_int, help="ticks to replay [200000]")
    bench.add_argument("--texts", type=positive_int, help="labelled texts to replay [50000]")
    bench.add_argument("--texts-only", type=int,
                       help="texts of the texts-only run, RNN + VADER alone (0 skips it) "
                            "[50000]")
    bench.add_argument("--keep-topics", action="store_true",
                       help="keep the run's topics (deleted afterwards by default)")
    bench.add_argument("--one-worker", action="store_true",
                       help="skip the two-worker scaling run")
    bench.add_argument("--out", type=Path, default=Path("bench/results"),
                       help="folder for the JSON results [bench/results]")
    bench.set_defaults(run=run)


def run(args: argparse.Namespace, context: Context) -> int:
    try:
        from tickcast_bench.harness import BenchConfig, Target, run_bench, table
    except ModuleNotFoundError as exc:
        if exc.name != "tickcast_bench":
            raise  # a broken import inside the bench is a bug
        raise UsageError("the benchmarks are not installed: they live in the repository's "
                         "bench/ folder (`make setup`, or `pip install -e bench`)") from None
    from tickcast.demo import ensure_models
    from tickcast.localkafka import LocalKafka
    from tickcast.streams.settings import writable_dir

    settings = context.settings
    config = BenchConfig.quick() if args.quick else BenchConfig()
    if args.ticks:
        config = replace(config, ticks=args.ticks)
    if args.texts:
        config = replace(config, texts=args.texts)
    if args.texts_only is not None:
        config = replace(config, texts_only=max(args.texts_only, 0))
    if args.one_worker:
        config = replace(config, two_workers=False)
    if args.keep_topics:
        config = replace(config, keep_topics=True)
    writable_dir(settings.state_dir, "TICKCAST_STATE_DIR")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
    ensure_models(settings)
    target = Target(bootstrap=settings.kafka_bootstrap, model_dir=settings.model_dir.resolve(),
                    forecaster=settings.forecaster_model, sentiment=settings.sentiment_model)
    broker = LocalKafka.from_settings(context.tools, state_dir=settings.state_dir)
    started = broker.up_for(settings.kafka_bootstrap)
    try:
        results = run_bench(config, target, state=settings.state_dir / "bench",
                            log=lambda m: print(m, flush=True))
    finally:
        if started:
            broker.down()
    path = args.out / time.strftime("bench-%Y%m%dT%H%M%SZ.json", time.gmtime())
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n" + table(results) + f"\n\nresults: {path}")
    return 0
