"""The ``tickcast`` command line: one console script, one subcommand per job."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

EPILOG = "Configuration comes from TICKCAST_* environment variables; `tickcast config` lists them."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickcast", epilog=EPILOG,
        description="Streaming forecasts and sentiment on Kafka: workers, local broker, replay.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    kafka = sub.add_parser("kafka", help="run a local single-node Kafka (KRaft) broker",
                           description="Resolve the Apache Kafka jars with Maven and run one "
                           "KRaft broker on loopback; its data survives down/up.", epilog=EPILOG)
    kafka.add_argument("action", choices=["up", "down", "status", "fetch"],
                       help="up: start (idempotent); down: stop; status; fetch: resolve jars")
    kafka.set_defaults(func=_cmd_kafka)

    topics = sub.add_parser("topics", help="create the pipeline's topics (idempotent)",
                            epilog=EPILOG)
    topics.set_defaults(func=_cmd_topics)

    worker = sub.add_parser("worker", help="run a stream worker (Faust) with /metrics",
                            description="Declare topics, serve Prometheus /metrics and process "
                            "texts and labels until SIGINT/SIGTERM.", epilog=EPILOG)
    worker.set_defaults(func=_cmd_worker)

    produce = sub.add_parser("produce", help="replay a dataset or CSV into Kafka",
                             description="Replay the bundled gold closes (prices) or labelled "
                             "texts (texts), or your own CSV, at a set rate; or stream texts "
                             "from the text generator (texts --generated).", epilog=EPILOG)
    produce.add_argument("kind", choices=["prices", "texts"])
    produce.add_argument("--csv", type=Path, help="prices: date,close|price; texts: id,text"
                         "[,label]. Default: the bundled dataset")
    produce.add_argument("--rate", type=float, default=0.0,
                         help="records per second; 0 (default) sends as fast as possible")
    produce.add_argument("--limit", type=int, help="stop after this many records")
    produce.add_argument("--symbol", default="XAU", help="symbol of replayed prices [XAU]")
    produce.add_argument("--labels", choices=["inline", "separate", "none"],
                         help="texts: label inside the text event, as a later event on "
                         "`labels`, or not at all [inline]")
    produce.add_argument("--generated", action="store_true",
                         help="texts: sample new texts from the LATEST text generator (`tickcast "
                         "train textgen`), never labelled; endless unless --limit")
    produce.add_argument("--prompt", action="append",
                         help="--generated: start texts with this prompt; repeat for several, "
                         "drawn at random [none]")
    produce.add_argument("--temperature", type=float, default=0.8,
                         help="--generated: sampling temperature [0.8]")
    produce.add_argument("--max-length", type=int, default=280,
                         help="--generated: at most this many characters after the prompt [280]")
    produce.add_argument("--seed", type=int, help="--generated: seed of the sampler [random]")
    produce.add_argument("--no-progress", action="store_true", help="no progress bar")
    produce.set_defaults(func=_cmd_produce)

    demo = sub.add_parser("demo", help="local broker + worker + replay, with a live summary",
                          description="Start the local broker (unless TICKCAST_KAFKA_BOOTSTRAP "
                          "points elsewhere), a worker and a replay of labelled texts; print "
                          "where /metrics is and a live summary. Ctrl-C stops all it started.",
                          epilog=EPILOG)
    demo.add_argument("--rate", type=float, default=50.0, help="texts per second [50]")
    demo.add_argument("--duration", type=float, default=0.0,
                      help="stop after this many seconds; 0 runs until Ctrl-C [0]")
    demo.set_defaults(func=_cmd_demo)

    from tickcast.modelcmds import add_generate_parser, add_models_parser, add_train_parser

    add_train_parser(sub, EPILOG)
    add_models_parser(sub, EPILOG)
    add_generate_parser(sub, EPILOG)

    bench = sub.add_parser("bench", help="throughput, latency and resources vs baseline and "
                           "ceiling, measured in one run",
                           description="Produce a workload to the broker, then measure "
                           "tickcast (1 and 2 workers), a per-message model.predict baseline "
                           "and a raw aiokafka passthrough on it, tick-to-forecast latency at a "
                           "fixed rate, and inference micro-benchmarks. Prints a table and "
                           "writes JSON to bench/results/.", epilog=EPILOG)
    bench.add_argument("--quick", action="store_true", help="a small run (harness check)")
    bench.add_argument("--ticks", type=int, help="ticks to replay [200000]")
    bench.add_argument("--texts", type=int, help="labelled texts to replay [50000]")
    bench.add_argument("--texts-only", type=int,
                       help="texts of the texts-only run, RNN + VADER alone (0 skips it) "
                            "[50000]")
    bench.add_argument("--keep-topics", action="store_true",
                       help="keep the run's topics (deleted afterwards by default)")
    bench.add_argument("--one-worker", action="store_true",
                       help="skip the two-worker scaling run")
    bench.add_argument("--out", type=Path, default=Path("bench/results"),
                       help="folder for the JSON results [bench/results]")
    bench.set_defaults(func=_cmd_bench)

    boards = sub.add_parser("dashboards", help="render the Grafana dashboards' panels to a PNG",
                            description="Query Prometheus for every time-series panel of the "
                            "provisioned dashboards and draw them into one PNG.", epilog=EPILOG)
    boards.add_argument("action", choices=["render"])
    boards.add_argument("--prometheus", default="http://127.0.0.1:9090",
                        help="Prometheus base URL [http://127.0.0.1:9090]")
    boards.add_argument("--minutes", type=float, default=15.0, help="time range [15]")
    boards.add_argument("--out", type=Path, default=Path("dashboards.png"),
                        help="PNG to write [dashboards.png]")
    boards.set_defaults(func=_cmd_dashboards)

    config = sub.add_parser("config", help="list every TICKCAST_* variable, default, meaning")
    config.add_argument("--markdown", action="store_true", help="as a Markdown table")
    config.set_defaults(func=_cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("TICKCAST_LOG_LEVEL", "info").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kafka-python and aiokafka narrate every connection at INFO.
    for noisy in ("kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from tickcast.localkafka import KafkaError
    from tickcast.models.artifacts import ArtifactError
    from tickcast.streams.settings import SettingsError
    from tickcast.streams.topics import TopicError
    from tickcast.training.data import DataError
    from tickcast.training.publish import PublishError

    try:
        return int(args.func(args) or 0)
    except (KafkaError, SettingsError, TopicError, ArtifactError, DataError, PublishError,
            ValueError, OSError) as exc:
        print(f"tickcast {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _version() -> str:
    from tickcast import __version__

    return f"tickcast {__version__}"


def _settings():  # noqa: ANN202 - imported lazily to keep --help fast
    from tickcast.streams.settings import Settings

    return Settings.from_env()


def _local_kafka():  # noqa: ANN202
    from tickcast.localkafka import LocalKafka

    return LocalKafka.from_env(os.environ, state_dir=_settings().state_dir)


def _cmd_kafka(args: argparse.Namespace) -> int:
    broker = _local_kafka()
    if args.action == "fetch":
        broker.resolve(quiet=False)
        print(f"Kafka jars in {broker.lib_dir}")
    elif args.action == "up":
        started = broker.up()
        print(("started: " if started else "already running: ") + broker.status().describe())
    elif args.action == "down":
        print("stopped" if broker.down() else "not running")
    else:
        status = broker.status()
        print(status.describe())
        return 0 if status.answering else 1
    return 0


def _cmd_topics(args: argparse.Namespace) -> int:
    from tickcast.streams.topics import ensure_topics, topic_specs

    settings = _settings()
    specs = topic_specs(settings)
    created = set(ensure_topics(settings.bootstrap_servers, specs,
                                security=settings.kafka_security))
    for spec in specs:
        config = ",".join(f"{k}={v}" for k, v in spec.config.items())
        state = "created" if spec.name in created else "exists"
        print(f"{spec.name:<24} partitions={spec.partitions:<3} {state} {config}".rstrip())
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from tickcast.streams.app import run_worker

    run_worker(_settings())
    return 0


def _cmd_produce(args: argparse.Namespace) -> int:
    from tickcast.replay import Replay, price_events, read_csv, text_events
    from tickcast.streams.topics import ensure_topics, topic_specs
    from tickcast.training.data import gold_closes, sample_texts

    settings = _settings()
    if args.prompt and not args.generated:
        raise ValueError("--prompt applies to --generated texts only")
    total: int | None
    if args.generated:
        records, total = _generated_records(args, settings), None
    elif args.kind == "prices":
        frame = read_csv(args.csv, "prices") if args.csv else gold_closes()
        records = price_events(frame, symbol=args.symbol)
        total = len(frame)
    else:
        labels = args.labels or "inline"
        frame = read_csv(args.csv, "texts") if args.csv else sample_texts()
        records = text_events(frame, label_mode=labels)
        total = len(frame) * (2 if labels == "separate" and "label" in frame else 1)
    ensure_topics(settings.bootstrap_servers, topic_specs(settings),
                  security=settings.kafka_security)
    replay = Replay(bootstrap=settings.bootstrap_servers, topic_prefix=settings.topic_prefix,
                    security=settings.kafka_security)
    try:
        stats = replay.run(records, rate=args.rate, limit=args.limit, total=total,
                           progress=not args.no_progress)
    finally:
        replay.close()
    sent = ", ".join(f"{n} to {settings.topic(t)}" for t, n in sorted(stats.sent.items()))
    print(f"sent {sent or 'nothing'} in {stats.seconds:.1f}s; {stats.failed} failed")
    for error in stats.errors:
        print(f"  {error}", file=sys.stderr)
    return 1 if stats.failed else 0


def _generated_records(args: argparse.Namespace, settings: Any
                       ) -> Iterator[tuple[str, bytes, bytes]]:
    from tickcast.modelcmds import DEFAULT_NAMES, load_generator
    from tickcast.replay import generated_text_events

    if args.kind != "texts":
        raise ValueError("--generated produces texts, not prices")
    if args.csv is not None:
        raise ValueError("--generated and --csv exclude each other")
    if args.labels not in (None, "none"):
        raise ValueError(f"--labels {args.labels}: generated texts are never labelled (a "
                         "label from our own classifier would make the AUC circular)")
    generator = load_generator(settings.model_dir, DEFAULT_NAMES["textgen"])
    texts = generator.stream(prompts=args.prompt or [""], temperature=args.temperature,
                             seed=args.seed, max_length=args.max_length)
    return generated_text_events(texts)


def _cmd_demo(args: argparse.Namespace) -> int:
    from tickcast.demo import run_demo

    return run_demo(_settings(), rate=args.rate, duration=args.duration)


def _cmd_bench(args: argparse.Namespace) -> int:
    import json
    import time
    from dataclasses import replace

    from tickcast.bench.harness import BenchConfig, run_bench, table
    from tickcast.demo import ensure_models
    from tickcast.localkafka import LocalKafka

    settings = _settings()
    config = BenchConfig.quick() if args.quick else BenchConfig()
    if args.ticks:
        config = replace(config, ticks=args.ticks)
    if args.texts:
        config = replace(config, texts=args.texts)
    if args.texts_only is not None:
        config = replace(config, texts_only=args.texts_only)
    if args.one_worker:
        config = replace(config, two_workers=False)
    if args.keep_topics:
        config = replace(config, keep_topics=True)
    ensure_models(settings)
    broker = LocalKafka.from_env(os.environ, state_dir=settings.state_dir)
    started = broker.up_for(settings.kafka_bootstrap)
    try:
        results = run_bench(config, bootstrap=settings.kafka_bootstrap,
                            model_dir=settings.model_dir,
                            state=settings.state_dir / "bench",
                            log=lambda m: print(m, flush=True))
    finally:
        if started:
            broker.down()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / time.strftime("bench-%Y%m%dT%H%M%SZ.json", time.gmtime())
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n" + table(results) + f"\n\nresults: {path}")
    return 0


def _cmd_dashboards(args: argparse.Namespace) -> int:
    from tickcast.dashboards import render

    count = render(args.prometheus.rstrip("/"), args.out, minutes=args.minutes)
    print(f"{count} panels from {args.prometheus} written to {args.out}")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from tickcast.localkafka import LOCAL_ENV
    from tickcast.streams.settings import Settings

    rows = [*Settings.describe(), *LOCAL_ENV]
    if args.markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for var, default, meaning in rows:
            shown = f"`{default}`" if default else "(empty)"
            print(f"| `{var}` | {shown} | {meaning} |")
    else:
        width = max(len(r[0]) for r in rows)
        for var, default, meaning in rows:
            print(f"{var:<{width}}  {default:<18} {meaning}")
    return 0
