"""``tickcast bench``: the benchmark run (the ``tickcast_bench`` package in ``bench/``)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
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
    bench.add_argument("--scale", nargs="*", choices=SCALE_DIMENSIONS, metavar="DIM",
                       help="instead of the normal run, scale curves: one fresh worker per "
                            "point as the work grows, for each DIM of "
                            f"{', '.join(SCALE_DIMENSIONS)} (none given: all); writes "
                            "scale-<time>.json and a PNG per DIM to --out")
    bench.add_argument("--stores", type=_stores,
                       help="with --scale symbols: the state stores to measure, a comma list "
                            f"of {', '.join(SCALE_STORES)} [memory,rocksdb]")
    bench.set_defaults(run=run)


SCALE_DIMENSIONS = ("symbols", "pending", "windows")
"""``--scale`` choices (``tickcast_bench.scale.DIMENSIONS``: the bench is imported only when
a run needs it)."""
SCALE_STORES = ("memory", "rocksdb")


def _stores(raw: str) -> tuple[str, ...]:
    stores = tuple(s.strip() for s in raw.split(",") if s.strip())
    unknown = [s for s in stores if s not in SCALE_STORES]
    if not stores or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(SCALE_STORES)}, "
                                         f"got {raw!r}")
    return tuple(dict.fromkeys(stores))


def _bench_installed() -> None:
    try:
        import tickcast_bench.harness  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "tickcast_bench":
            raise  # a broken import inside the bench is a bug
        raise UsageError("the benchmarks are not installed: they live in the repository's "
                         "bench/ folder (`make setup`, or `pip install -e bench`)") from None


def _prepare(args: argparse.Namespace, context: Context) -> Any:
    """The run's target (models trained if missing), its state and --out folders ready."""
    from tickcast_bench.harness import Target

    from tickcast.demo import ensure_models
    from tickcast.streams.settings import writable_dir

    settings = context.settings
    writable_dir(settings.state_dir, "TICKCAST_STATE_DIR")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
    ensure_models(settings)
    return Target(bootstrap=settings.kafka_bootstrap, model_dir=settings.model_dir.resolve(),
                  forecaster=settings.forecaster_model, sentiment=settings.sentiment_model,
                  inference_threads=settings.inference_threads)


def _on_broker(context: Context, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``measure()`` with the local broker started for it if it is the one configured and
    nothing answers there (stopped afterwards only then)."""
    from tickcast.localkafka import LocalKafka

    settings = context.settings
    broker = LocalKafka.from_settings(context.tools, state_dir=settings.state_dir)
    started = broker.up_for(settings.kafka_bootstrap)
    try:
        return measure()
    finally:
        if started:
            broker.down()


def run(args: argparse.Namespace, context: Context) -> int:
    _bench_installed()
    if args.scale is not None:
        return run_scale(args, context)
    if args.stores is not None:
        raise UsageError("--stores goes with --scale")
    from tickcast_bench.harness import BenchConfig, run_bench, table

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
    target = _prepare(args, context)
    results = _on_broker(context, lambda: run_bench(
        config, target, state=settings.state_dir / "bench", log=_progress))
    path = args.out / time.strftime("bench-%Y%m%dT%H%M%SZ.json", time.gmtime())
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n" + table(results) + f"\n\nresults: {path}")
    return 0


def _progress(message: str) -> None:
    print(message, flush=True)


def run_scale(args: argparse.Namespace, context: Context) -> int:
    """``tickcast bench --scale``: the scale curves of ``tickcast_bench.scale``."""
    from tickcast_bench.scale import ScaleConfig, plot_scale, scale_table
    from tickcast_bench.scale import run_scale as measure

    ignored = [flag for flag, value in (("--texts", args.texts),
                                        ("--texts-only", args.texts_only),
                                        ("--one-worker", args.one_worker or None))
               if value is not None]
    if ignored:
        raise UsageError(f"--scale does not take {', '.join(ignored)} (the normal run's)")
    settings = context.settings
    config = ScaleConfig.quick() if args.quick else ScaleConfig()
    changes: dict[str, Any] = {"dimensions": tuple(args.scale) or config.dimensions}
    if args.ticks:
        changes["ticks"] = args.ticks
    if args.stores:
        changes["stores"] = args.stores
    if args.keep_topics:
        changes["keep_topics"] = True
    config = replace(config, **changes)  # checked here, before the broker or models
    target = _prepare(args, context)
    stamp = time.strftime("scale-%Y%m%dT%H%M%SZ", time.gmtime())
    results = _on_broker(context, lambda: measure(
        config, target, state=settings.state_dir / "bench", log=_progress))
    path = args.out / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    plots = plot_scale(results, args.out / stamp)
    print("\n" + scale_table(results) + f"\nresults: {path}\nplots: "
          + ", ".join(str(p) for p in plots))
    return 1 if results.get("failed") else 0
