"""The Faust application, wired from :class:`Settings`: agents, tasks and timers.

:func:`build_app` creates the app and registers everything a worker runs; it opens no
connection, starts no thread and loads no model (:mod:`tickcast.streams.worker` does).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tickcast.models.registry import ModelStore
from tickcast.streams.faust_internals import TickcastApp
from tickcast.streams.gate import Policy
from tickcast.streams.metrics import Metrics
from tickcast.streams.monitoring import (
    export_assignment,
    export_commits,
    export_lag,
    export_loop_lag,
    export_readiness,
)
from tickcast.streams.prices.agents import register_price_agent
from tickcast.streams.prices.processor import PriceProcessor
from tickcast.streams.sentiment.agents import register_sentiment_agent
from tickcast.streams.sentiment.join import LabelJoin
from tickcast.streams.sentiment.processor import SentimentProcessor
from tickcast.streams.sentiment.scoring import VaderScorer
from tickcast.streams.serving import ModelManager, follow_model_updates
from tickcast.streams.settings import Settings

__all__ = ["Service", "build_app"]


@dataclass(slots=True)
class Service:
    """A configured worker: the Faust app plus the state its agents share."""

    settings: Settings
    app: TickcastApp
    metrics: Metrics
    models: ModelManager
    sentiment: SentimentProcessor
    prices: PriceProcessor
    executors: dict[str, ThreadPoolExecutor]
    """The threads off the event loop, by what runs there: ``prices`` (each batch's
    inference), ``texts`` (each batch's scoring) and ``models`` (loading and checking a new
    version)."""


def build_app(settings: Settings, *, metrics: Metrics | None = None) -> Service:
    """Create the Faust app and register its agents, the model-updates follower and the
    monitoring timers."""
    metrics = metrics or Metrics()
    app = TickcastApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers],
        broker_credentials=settings.kafka_security.faust_credentials(),
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        env={},  # Settings is the only reader of the environment
        datadir=str(settings.state_dir / "faust"),
        topic_disable_leader=True,
        table_standby_replicas=0,
        web_enabled=False,  # /metrics is served by prometheus-client instead
        store="rocksdb://" if settings.state_store == "rocksdb" else "memory://",
        topic_replication_factor=settings.topic_replication,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=settings.producer_linger_ms / 1000.0,
        broker_commit_every=256,  # bounds what a crash redelivers (see REPLAY_ROOM)
        broker_commit_interval=1.0,
        # A crashed worker's partitions move to the others after 10 s, not Faust's 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
    )
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms
    models = ModelManager(store=ModelStore(settings.model_dir), metrics=metrics,
                          names={"forecaster": settings.forecaster_model,
                                 "sentiment": settings.sentiment_model},
                          max_event_bytes=settings.max_event_bytes,
                          backend=settings.inference_backend,
                          threads=settings.inference_threads, freeze_heap=True)
    # A thread per agent, so a batch of ticks never waits behind a batch of texts (whose
    # scoring is mostly VADER's Python), and one for loading models, so a swap's checks hold up
    # neither. Each agent still runs one batch at a time.
    executors = {name: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tickcast-{name}")
                 for name in ("prices", "texts", "models")}
    gate = Policy(min_events=settings.gate_min_events, max_events=settings.gate_max_events,
                  alpha=settings.gate_alpha)
    sentiment = SentimentProcessor(
        vader=VaderScorer(),
        join=LabelJoin(window_size=settings.auc_window, pending_max=settings.pending_max,
                       ttl_s=settings.pending_ttl_s),
        metrics=metrics,
        max_event_bytes=settings.max_event_bytes,
        rnn=models.sentiment,
        window_size=settings.auc_window,
        challenger=models.sentiment_challenger,
        gate=gate,
    )
    prices = PriceProcessor(metrics=metrics, max_event_bytes=settings.max_event_bytes,
                            eval_window=settings.forecast_window, symbol_cap=settings.symbol_cap,
                            baseline_window=settings.interval_baseline_window,
                            tracking_rate=settings.interval_tracking_rate, gate=gate)
    register_sentiment_agent(app, settings=settings, processor=sentiment,
                             executor=executors["texts"])
    register_price_agent(app, settings=settings, processor=prices, models=models,
                         executor=executors["prices"])
    follow_model_updates(app, settings=settings, models=models, executor=executors["models"])
    export_assignment(app, settings=settings, metrics=metrics)
    export_lag(app, settings=settings, metrics=metrics)
    export_commits(app, metrics=metrics)
    export_loop_lag(app, metrics=metrics)
    export_readiness(app, metrics=metrics)
    return Service(settings=settings, app=app, metrics=metrics, models=models,
                   sentiment=sentiment, prices=prices, executors=executors)
