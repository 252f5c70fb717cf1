"""The Faust application: built from :class:`Settings`, run by ``tickcast worker``."""

from __future__ import annotations

import asyncio
import logging
import os
import types
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent
from prometheus_client import disable_created_metrics

from tickcast.models.registry import ModelStore
from tickcast.streams.metrics import INPUT_TOPICS, Metrics, serve_metrics
from tickcast.streams.prices.agents import register_price_agent
from tickcast.streams.prices.processor import PriceProcessor
from tickcast.streams.sentiment.agents import register_sentiment_agent
from tickcast.streams.sentiment.join import LabelJoin
from tickcast.streams.sentiment.processor import SentimentProcessor
from tickcast.streams.sentiment.scoring import VaderScorer
from tickcast.streams.serving import ModelManager
from tickcast.streams.settings import Settings
from tickcast.streams.topics import ensure_topics, topic_specs

__all__ = ["EXIT_AGENT_CRASHED", "DeliverWithoutTasks", "KeepFetchedOnResume",
           "SeekWithFlowStopped", "Service", "TickcastApp", "build_app", "make_worker",
           "run_worker"]

log = logging.getLogger(__name__)

EXIT_AGENT_CRASHED: Final = 70
"""Exit status of a worker whose agent raised (``EX_SOFTWARE``)."""


class KeepFetchedOnResume(FlowControlEvent):
    """Flow control that clears the stream queues only when flow really resumes.

    Faust's recovery ends with: resume the stream partitions, seek them to their committed
    offsets, then ``flow_control.resume()`` -- which clears every stream queue even when flow
    was never suspended. The fetcher keeps running during the seek, so events fetched
    *after* the seek (their read offsets already recorded) are thrown away and never fetched
    again: a permanent hole in the acked offsets, the partition's commits stall, its outputs
    are missing until a restart (faust-streaming issue #596). When flow was suspended, the
    queues were cleared at the suspend and a clear on resume is harmless; when it was not,
    everything queued was fetched after the seek and must be kept.
    """

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()


class SeekWithFlowStopped(faust_aiokafka.Consumer):
    """Faust's consumer, with fetching stopped while it seeks to the committed offsets.

    Faust seeks on the consumer thread and records the new read offsets on the event loop
    afterwards; if flow is active (it is at the end of table recovery), the fetcher runs in
    between. Records fetched from the new position are then judged against a stale read
    offset -- left by a delivery that straddled the rebalance -- and dropped as already
    read; the next record's offset jumps past them and Faust books the jump as a "gap"
    (meant for compacted topics) and commits over it: events silently lost. Seen in 1 of
    ~20 two-worker runs, 26 ticks. With flow stopped no fetch interleaves with the seek.
    """

    async def perform_seek(self) -> None:
        flowing = self.flow_active
        if flowing:
            self.stop_flow()
        try:
            await super().perform_seek()
        finally:
            if flowing:
                self.resume_flow()


@types.coroutine
def _resume(coro: Any, blocker: Any) -> Generator[Any, None, Any]:
    """Run the rest of ``coro``, whose first step already yielded ``blocker``, under the
    task awaiting this: every later step, cancellation included, is passed through as
    ``yield from`` would."""
    while True:
        try:
            yield blocker
        except BaseException as exc:  # noqa: BLE001 - thrown in by the task: forward it
            try:
                blocker = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                blocker = coro.send(None)
            except StopIteration as stop:
                return stop.value


async def _rest(coro: Any, blocker: Any) -> Any:
    return await _resume(coro, blocker)  # a native coroutine: what ``wait_first`` accepts


class DeliverWithoutTasks(SeekWithFlowStopped):
    """Faust's consumer, delivering a fetched message inline when nothing blocks it.

    Faust's fetch loop hands every message to the streams with ``wait_first(deliver(msg),
    suspend_flow.wait())``, so a rebalance can abandon a delivery that is blocked (a full
    stream queue, flow control suspended): four tasks (mode adds "stopped" and "crashed")
    and an ``asyncio.wait`` per message. Delivery almost never blocks; here its first step
    runs inline, and only a delivery that does block continues under ``wait_first`` as
    before. ``_drain_messages`` is Faust 0.15's, with that one change.
    """

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's loop
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            delivery = callback(message)
                            try:
                                blocker = delivery.send(None)
                            except StopIteration:
                                pass  # delivered without blocking: the usual case
                            else:
                                await self.wait_first(_rest(delivery, blocker),
                                                      self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class TickcastTransport(faust_aiokafka.Transport):
    Consumer = DeliverWithoutTasks


class TickcastApp(faust.App):
    """:class:`faust.App` with :class:`KeepFetchedOnResume` as its flow control and
    :class:`DeliverWithoutTasks` (a :class:`SeekWithFlowStopped`) as its consumer.

    ``on_agent_crash``, when set, is called after Faust's own handling of an exception that
    escaped an agent (which commits what was acknowledged). Faust then restarts the agent in
    place, but the batch it was holding is neither acknowledged nor fetched again: its
    offsets hold that partition's commits, and the worker's shutdown waits for them forever.
    The worker sets a handler that exits instead (see :func:`run_worker`).
    """

    on_agent_crash: Callable[[Any, BaseException], None] | None = None

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        await super()._on_agent_error(agent, exc)
        if self.on_agent_crash is not None:
            self.on_agent_crash(agent, exc)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return KeepFetchedOnResume(loop=self.loop)

    def _new_transport(self) -> TickcastTransport:
        return TickcastTransport(self.conf.broker_consumer, self)


@dataclass(slots=True)
class Service:
    """A configured worker: the Faust app plus the state its agents share."""

    settings: Settings
    app: TickcastApp
    metrics: Metrics
    models: ModelManager
    sentiment: SentimentProcessor
    prices: PriceProcessor


def build_app(settings: Settings, *, metrics: Metrics | None = None) -> Service:
    """Create the Faust app and register its agents (no network, no threads, no models yet:
    :meth:`ModelManager.load_latest` loads them)."""
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
        store="memory://",
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
    models = ModelManager(store=ModelStore(settings.model_dir), metrics=metrics,
                          names={"forecaster": settings.forecaster_model,
                                 "sentiment": settings.sentiment_model})
    # One inference thread: batches of both agents run one at a time, off the event loop.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tickcast-inference")
    sentiment = SentimentProcessor(
        vader=VaderScorer(),
        join=LabelJoin(window_size=settings.auc_window, pending_max=settings.pending_max,
                       ttl_s=settings.pending_ttl_s),
        metrics=metrics,
        max_event_bytes=settings.max_event_bytes,
        rnn=models.sentiment,
        window_size=settings.auc_window,
    )
    prices = PriceProcessor(metrics=metrics, max_event_bytes=settings.max_event_bytes,
                            eval_window=settings.forecast_window, symbol_cap=settings.symbol_cap)
    register_sentiment_agent(app, settings=settings, processor=sentiment, executor=executor)
    register_price_agent(app, settings=settings, processor=prices, models=models,
                         executor=executor)
    _follow_model_updates(app, settings, models, executor)
    _export_assignment(app, settings, metrics)
    _export_lag(app, settings, metrics)
    return Service(settings=settings, app=app, metrics=metrics, models=models,
                   sentiment=sentiment, prices=prices)


def _follow_model_updates(app: faust.App, settings: Settings, models: ModelManager,
                          executor: ThreadPoolExecutor) -> None:
    """Every worker reads all of ``model-updates`` (no consumer group: a broadcast)."""

    @app.task
    async def follow() -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            settings.topic("model-updates"), bootstrap_servers=settings.bootstrap_servers,
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            client_id=f"{settings.app_id}-model-updates",
            **settings.kafka_security.client_kwargs())
        await consumer.start()
        loop = asyncio.get_running_loop()
        try:
            async for message in consumer:
                await loop.run_in_executor(executor, models.apply_raw, message.value)
        finally:
            await consumer.stop()


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


def _export_lag(app: faust.App, settings: Settings, metrics: Metrics) -> None:
    logical = {settings.topic(name): name for name in INPUT_TOPICS}

    @app.timer(interval=5.0)
    async def lag() -> None:
        consumer = app.consumer
        # Faust keeps the offsets it committed; it has no public accessor for them.
        committed = getattr(consumer, "_committed_offset", {})
        totals = dict.fromkeys(INPUT_TOPICS, 0)
        for tp in consumer.assignment():
            if tp.topic in logical:
                done = committed.get(tp)
                highwater = consumer.highwater(tp)
                if highwater is not None and highwater >= 0:
                    totals[logical[tp.topic]] += max(highwater - (done or 0), 0)
        for name, value in totals.items():
            metrics.consumer_lag.labels(topic=name).set(value)


def run_worker(settings: Settings) -> None:
    """Declare topics, serve ``/metrics`` and run one worker until SIGINT/SIGTERM."""
    created = ensure_topics(settings.bootstrap_servers, topic_specs(settings),
                            security=settings.kafka_security)
    if created:
        log.info("created topics: %s", ", ".join(created))
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    disable_created_metrics()  # *_created series double the scrape for no dashboard use
    service = build_app(settings)
    service.app.on_agent_crash = _exit_on_agent_crash
    service.models.load_latest()  # before consuming: the first batch has its models
    port = serve_metrics(service.metrics, addr=settings.metrics_addr, port=settings.metrics_port)
    print(f"tickcast worker: metrics on http://{settings.metrics_addr}:{port}/metrics, "
          f"Kafka {settings.kafka_bootstrap} ({settings.kafka_security.describe()})",
          flush=True)
    make_worker(service).execute_from_commandline()


def _exit_on_agent_crash(agent: Any, exc: BaseException) -> None:
    """Crash-only: exit at once, so a restart redelivers the failed batch from the last commit.

    Nothing delivered is lost: inputs are acknowledged (and committed) only after their
    outputs and state writes are delivered, and Faust has just committed those.
    """
    log.critical("agent %s crashed; exiting with status %d so that a restart redelivers its "
                 "batch from the last commit", getattr(agent, "name", agent), EXIT_AGENT_CRASHED,
                 exc_info=exc)
    logging.shutdown()  # flush the log handlers: os._exit skips interpreter shutdown
    os._exit(EXIT_AGENT_CRASHED)


def make_worker(service: Service) -> faust.Worker:
    """The Faust worker that runs ``service`` (``web_enabled=False`` is honoured by it)."""
    worker = faust.Worker(service.app, loglevel=service.settings.log_level.upper(),
                          quiet=True, redirect_stdouts=False)
    # At WARNING and above Faust's terminal spinner sets the root logger to DEBUG (so it can
    # spin on every record): every debug call on the hot path then builds a LogRecord.
    worker.spinner = None
    return worker
