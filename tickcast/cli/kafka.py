"""``tickcast kafka`` (the local broker) and ``tickcast topics`` (the pipeline's topics)."""

from __future__ import annotations

import argparse
from typing import Any

from tickcast.cli.common import EPILOG, Context

__all__ = ["register"]


def register(sub: Any) -> None:
    kafka = sub.add_parser("kafka", help="run a local single-node Kafka (KRaft) broker",
                           description="Resolve the Apache Kafka jars with Maven and run one "
                           "KRaft broker on loopback; its data survives down/up.", epilog=EPILOG)
    kafka.add_argument("action", choices=["up", "down", "status", "fetch"],
                       help="up: start (idempotent); down: stop; status; fetch: resolve jars")
    kafka.set_defaults(run=run_kafka)
    topics = sub.add_parser("topics", help="create the pipeline's topics (idempotent)",
                            epilog=EPILOG)
    topics.set_defaults(run=run_topics)


def run_kafka(args: argparse.Namespace, context: Context) -> int:
    from tickcast.localkafka import LocalKafka

    broker = LocalKafka.from_settings(context.tools, state_dir=context.settings.state_dir)
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


def run_topics(args: argparse.Namespace, context: Context) -> int:
    from tickcast.streams.topics import ensure_topics, topic_specs

    settings = context.settings
    specs = topic_specs(settings)
    created = set(ensure_topics(settings.bootstrap_servers, specs,
                                security=settings.kafka_security))
    for spec in specs:
        config = ",".join(f"{k}={v}" for k, v in spec.config.items())
        state = "created" if spec.name in created else "exists"
        print(f"{spec.name:<24} partitions={spec.partitions:<3} {state} {config}".rstrip())
    return 0
