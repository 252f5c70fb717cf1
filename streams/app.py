"""The Faust application: built from :class:`Settings`, run by ``tickcast worker``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import faust
from faust.types import TP
from prometheus_client import disable_created_metrics
from tickcast.streams.metrics import INPUT_TOPICS, Metrics, serve_metrics
from tickcast.streams.sentiment.agents import register_sentiment_agent
from tickcast.streams.sentiment.join import LabelJoin
from tickcast.streams.sentiment.processor import SentimentProcessor
from tickcast.streams.sentiment.scoring import VaderScorer
from tickcast.streams.settings import Settings
from tickcast.streams.topics import ensure_topics, topic_specs

__all__ = ["Service", "build_app", "run_worker"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Service:
    """A configured worker: the Faust app plus the state its agents share."""

    settings: Settings
    app: faust.App
    metrics: Metrics
    sentiment: SentimentProcessor


def build_app(settings: Settings, *, metrics: Metrics | None = None) -> Service:
    """Create the Faust app and register its agents (no network, no threads)."""
    metrics = metrics or Metrics()
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers],
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        env={},  # Settings is the only reader of the environment
        datadir=str(settings.state_dir / "faust"),
        topic_disable_leader=True,
        table_standby_replicas=0,
        web_enabled=False,  # /metrics is served by prometheus-client instead
        store="memory://",
        topic_replication_factor=settings.topic_replication,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
    )
    sentiment = SentimentProcessor(
        vader=VaderScorer(),
        join=LabelJoin(window_size=settings.auc_window, pending_max=settings.pending_max),
        metrics=metrics,
        max_event_bytes=settings.max_event_bytes,
    )
    register_sentiment_agent(app, settings=settings, processor=sentiment)
    _export_assignment(app, settings, metrics)
    return Service(settings=settings, app=app, metrics=metrics, sentiment=sentiment)


def _export_assignment(app: faust.App, settings: Settings, metrics: Metrics) -> None:
    logical = {settings.topic(name): name for name in INPUT_TOPICS}

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: faust.App, assigned: set[TP], **kwargs: object) -> None:
        counts = dict.fromkeys(INPUT_TOPICS, 0)
        for tp in assigned:
            if tp.topic in logical:
                counts[logical[tp.topic]] += 1
        for name, n in counts.items():
            metrics.assigned_partitions.labels(topic=name).set(n)


def run_worker(settings: Settings) -> None:
    """Declare topics, serve ``/metrics`` and run one worker until SIGINT/SIGTERM."""
    created = ensure_topics(settings.bootstrap_servers, topic_specs(settings))
    if created:
        log.info("created topics: %s", ", ".join(created))
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    disable_created_metrics()  # *_created series double the scrape for no dashboard use
    service = build_app(settings)
    port = serve_metrics(service.metrics, addr=settings.metrics_addr, port=settings.metrics_port)
    print(f"tickcast worker: metrics on http://{settings.metrics_addr}:{port}/metrics, "
          f"Kafka {settings.kafka_bootstrap}", flush=True)
    worker = faust.Worker(service.app, loglevel=settings.log_level.upper(),
                          quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
