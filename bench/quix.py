"""A Quix Streams 3.x peer in the bench, runnable as its own process (``pip install
'./bench[quix]'``).

* **passthrough** — a Quix ``Application`` forwarding every record of ``prices`` and ``texts``
  unchanged (raw bytes) to ``bench-quix-out``: what Quix's consumer path alone allows.
  ``--send sink`` (default) produces from a streaming sink and counts records once the broker
  has acknowledged them, as the ceiling and Faust passthroughs count; ``--send topic`` uses
  ``StreamingDataFrame.to_topic`` (the app's producer, delivery confirmed at each checkpoint)
  and counts records as they are handed to the producer.
* **pipeline** — tickcast's job as a Quix user would write it: a stateful ``apply`` keeps each
  symbol's last ``W`` closes in Quix state (keyed by the message key, the symbol) and emits
  the window once full; VADER scores each text in an ``apply``. Inference is batched in
  ``BatchingSink`` subclasses: at every checkpoint each topic partition's batch becomes one
  ``Forecaster.predict`` call, forecasts with their intervals (or one
  ``SentimentRNN.score_with_vader`` call, given the VADER scores the ``apply`` computed), and
  the records go to ``bench-quix-forecasts`` /
  ``bench-quix-sentiment``, delivered before the checkpoint commits the input offsets. Same
  models, loaded through ``load_latest``.

Quix runs everything, inference included, in its one poll loop: consumption waits while a
checkpoint's batches are scored. ``--commit-interval`` (0.2 s) sets how long a batch fills.

``python -m tickcast_bench.quix KIND --bootstrap ... --progress FILE ...`` appends
``{"count": n, "t": seconds}`` lines to the progress file, as :mod:`tickcast_bench.pipelines`
does. Quix names its state changelog ``changelog__{group}--{topic}--default``: outside the
run's prefix, so the process deletes its group's internal topics when it stops
(``--keep-internal-topics`` keeps them; :func:`delete_internal_topics` after a killed run).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from tickcast_bench.pipelines import Progress, add_run_arguments

if TYPE_CHECKING:
    import numpy as np
    from quixstreams import Application
    from quixstreams.kafka import Producer

    from tickcast.models.predictors import Forecaster, SentimentRNN
    from tickcast.streams.events import PriceTick, TextEvent
    from tickcast.streams.sentiment.scoring import VaderScorer

__all__ = [
    "COMMIT_INTERVAL_S",
    "ForecastWriter",
    "KafkaOut",
    "PriceWindow",
    "SentimentWriter",
    "ThreadSafeProgress",
    "delete_internal_topics",
    "internal_topic_prefixes",
    "main",
    "roll_window",
]

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S: Final = 0.2
"""Checkpoint interval: a batch is what a topic partition brings in this long (or less while
the previous checkpoint's inference ran), and no output waits much longer than this."""
POLL_TIMEOUT_S: Final = 0.1
"""Quix's consumer poll blocks up to this long when no message is ready; the checkpoint is
only looked at between polls, so it bounds how late an idle checkpoint commits."""
PRODUCER_CONFIG: Final = {"acks": "all", "linger.ms": 5, "enable.idempotence": True}
"""As tickcast's producer: acks from all in-sync replicas, 5 ms linger."""

Send = Literal["sink", "topic"]


# -- progress ----------------------------------------------------------------------------------
class ThreadSafeProgress:
    """:class:`Progress` behind a lock, with a daemon thread recording the count every
    ``every`` seconds: Quix has no timer, and the last point must be written once the input
    runs out (the Faust pipelines use an ``app.timer`` for this)."""

    def __init__(self, progress: Progress, *, every: float = 0.1) -> None:
        self._progress, self._lock, self._every = progress, threading.Lock(), every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._clock_started = False

    def first_event(self, *_: Any) -> None:
        """Start the clock at the first input event (an ``on_message_processed`` callback).

        Outputs are counted once delivered, at a checkpoint; :class:`Progress` would start
        the clock at the first count, leaving the first checkpoint's work out of the time
        but its outputs in the count. This writes the point it writes then (count 0) now."""
        if self._clock_started:
            return
        with self._lock:
            self._clock_started = True
            with open(self._progress.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"count": self._progress.count, "t": time.time()}) + "\n")

    @property
    def count(self) -> int:
        return self._progress.count

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self.tick(0)

    def tick(self, n: int = 1) -> None:
        with self._lock:
            self._progress.tick(n)

    def _run(self) -> None:
        while not self._stopped.wait(self._every):
            self.tick(0)


# -- the pipeline's steps (no Quix in them: unit-tested on their own) --------------------------
class StateLike(Protocol):
    """What :func:`roll_window` needs of ``quixstreams.State``."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class PriceWindow:
    """A tick whose symbol's window is full: ``closes`` are the last ``W``, the tick's last."""

    tick: PriceTick
    closes: list[float]


WINDOW_STATE_KEY: Final = "window"


def roll_window(state: StateLike, tick: PriceTick, window: int) -> list[float] | None:
    """Append ``tick``'s price to its symbol's last ``window`` closes (kept in ``state``, which
    Quix scopes to the message key); the closes once there are ``window`` of them, else None.

    A tick not newer than the newest seen is ignored (tickcast dead-letters it; a redelivery
    after a crash needs no replay here, since Quix rolls state back with the offsets)."""
    saved = state.get(WINDOW_STATE_KEY)
    if saved is not None and tick.ts <= saved["ts"]:
        return None
    closes: list[float] = [] if saved is None else saved["closes"]
    closes.append(tick.price)
    del closes[:-window]
    state.set(WINDOW_STATE_KEY, {"ts": tick.ts, "closes": closes})
    return closes if len(closes) == window else None


SendRecord = Callable[[bytes, bytes], None]
"""Sends one record: ``(key, value)``."""


class ForecastWriter:
    """A batch of full windows -> one ``predict`` call -> one Forecast record each, with the
    model's intervals (as served before tickcast's per-symbol tracking)."""

    def __init__(self, forecaster: Forecaster, send: SendRecord) -> None:
        self.forecaster, self.send = forecaster, send

    def __call__(self, items: Sequence[tuple[PriceWindow, int | None]]) -> int:
        """``items``: ``(window, Kafka timestamp of its tick in ms)``; returns records sent."""
        import numpy as np

        from tickcast.streams.events import Forecast, interval_fields

        if not items:
            return 0
        windows = np.asarray([w.closes for w, _ in items], dtype=np.float64)
        prediction = self.forecaster.predict(windows)
        bounds = (prediction.bounds.reshape(len(items), -1).tolist()
                  if prediction.bounds is not None else [None] * len(items))
        now_ms, version, sent = int(time.time() * 1000), self.forecaster.version, 0
        for (item, timestamp_ms), value, interval in zip(items, prediction.prices, bounds,
                                                         strict=True):
            forecast = float(value)
            if not math.isfinite(forecast) or (interval is not None and not all(
                    math.isfinite(b) for b in interval)):
                # tickcast dead-letters these
                log.warning("non-finite forecast for %s ts=%d", item.tick.symbol, item.tick.ts)
                continue
            tick = item.tick
            record = Forecast(symbol=tick.symbol, ts=tick.ts, last_price=float(item.closes[-1]),
                              forecast=forecast, horizon=1, model_version=version, id=tick.id,
                              processed_at=now_ms,
                              latency_ms=now_ms - timestamp_ms if timestamp_ms else None,
                              **(interval_fields(interval) if interval is not None else {}))
            self.send(tick.symbol.encode(), record.to_bytes())
            sent += 1
        return sent


RNN_THRESHOLD: Final = 0.5
VADER_THRESHOLD: Final = 0.05


class SentimentWriter:
    """A batch of VADER-scored texts -> one RNN call (given the VADER scores, as the worker
    does) -> a sentiment record each, field for field as tickcast's ``SentimentProcessor``
    writes them."""

    def __init__(self, rnn: SentimentRNN, vader_version: str, send: SendRecord) -> None:
        self.rnn, self.vader_version, self.send = rnn, vader_version, send

    def __call__(self, items: Sequence[tuple[tuple[TextEvent, np.ndarray], int | None]]
                 ) -> int:
        """``items``: ``((text, VADER's (4,) scores), Kafka timestamp)``; returns records."""
        import numpy as np

        from tickcast.streams.events import SentimentScore
        from tickcast.streams.sentiment.scoring import VaderScorer

        if not items:
            return 0
        vader = np.vstack([row for (_, row), _ in items])
        rnn_scores = self.rnn.score_with_vader([text.text for (text, _), _ in items], vader)
        now_ms = int(time.time() * 1000)
        vader_scores = VaderScorer.probabilities(vader)
        for ((text, _), _), vader_score, rnn_score in zip(items, vader_scores, rnn_scores,
                                                          strict=True):
            compound = round(vader_score * 2.0 - 1.0, 4)
            record = SentimentScore(
                id=text.id, ts=text.ts, vader_compound=compound, vader_score=vader_score,
                vader_version=self.vader_version, rnn_score=float(rnn_score),
                rnn_version=self.rnn.version, scored_at=now_ms, symbol=text.symbol,
                label=text.label,
                agree=(rnn_score >= RNN_THRESHOLD) == (compound >= VADER_THRESHOLD))
            self.send(text.id.encode(), record.to_bytes())
        return len(items)


def price_step(window: int, max_bytes: int
               ) -> Callable[[bytes, StateLike], PriceWindow | None]:
    """The stateful ``apply`` of ``prices``: raw value -> a full window, or None."""
    from tickcast.streams.events import EventError, decode_price

    def step(value: bytes, state: StateLike) -> PriceWindow | None:
        try:
            tick = decode_price(value, max_bytes=max_bytes)
        except EventError as exc:  # tickcast dead-letters it; the bench's input has none
            log.warning("dropped a price: %s", exc.message)
            return None
        closes = roll_window(state, tick, window)
        return None if closes is None else PriceWindow(tick, closes)

    return step


def text_step(vader: VaderScorer, max_bytes: int
              ) -> Callable[[bytes], tuple[TextEvent, np.ndarray] | None]:
    """The ``apply`` of ``texts``: raw value -> ``(text, VADER's (4,) scores)``, or None."""
    from tickcast.streams.events import EventError, decode_text

    def step(value: bytes) -> tuple[TextEvent, np.ndarray] | None:
        try:
            text = decode_text(value, max_bytes=max_bytes)
        except EventError as exc:
            log.warning("dropped a text: %s", exc.message)
            return None
        return text, vader.scores_batch([text.text])[0]

    return step


# -- Kafka output and the sinks ----------------------------------------------------------------
class KafkaOut:
    """Records to one topic through a Quix ``Producer``; :meth:`flush` returns only once the
    broker has acknowledged every record sent, and raises if one was not."""

    def __init__(self, producer: Producer, topic: str, *, flush_timeout: float = 30.0) -> None:
        self.producer, self.topic, self.flush_timeout = producer, topic, flush_timeout
        self._error: str | None = None

    def connect(self) -> None:
        """Create the producer now (it connects in the background), not at the first record:
        the first checkpoint would wait for the connection and the producer id."""
        self.producer.poll(0)

    def send(self, key: bytes, value: bytes) -> None:
        self.producer.produce(self.topic, value, key, on_delivery=self._delivered)

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None and self._error is None:
            self._error = str(error)

    def flush(self) -> None:
        left = self.producer.flush(self.flush_timeout)
        if left or self._error:
            error, self._error = self._error, None
            raise RuntimeError(f"{self.topic}: {left} record(s) undelivered after "
                               f"{self.flush_timeout}s; first delivery error: {error}")


def _sink_classes() -> tuple[type, type]:
    """``(BatchSink, ForwardSink)``, defined once quixstreams is imported."""
    from quixstreams.sinks import BaseSink, BatchingSink, SinkBatch

    class BatchSink(BatchingSink):
        """Each batch (one topic partition's records of one checkpoint) goes to ``writer``
        in one call; on flush the records are delivered, then counted."""

        def __init__(self, writer: Callable[[list[tuple[Any, int | None]]], int],
                     out: KafkaOut, progress: ThreadSafeProgress) -> None:
            super().__init__()
            self.writer, self.out, self.progress, self.pending = writer, out, progress, 0

        def setup(self) -> None:
            self.out.connect()

        def write(self, batch: SinkBatch) -> None:
            self.pending += self.writer([(item.value, item.timestamp) for item in batch])

        def flush(self) -> None:
            super().flush()  # write() per batch
            self.out.flush()
            self.progress.tick(self.pending)
            self.pending = 0

    class ForwardSink(BaseSink):
        """Streaming: each record is produced as it arrives; on flush, delivered and counted."""

        def __init__(self, out: KafkaOut, progress: ThreadSafeProgress) -> None:
            super().__init__()
            self.out, self.progress, self.pending = out, progress, 0

        def setup(self) -> None:
            self.out.connect()

        def add(self, value: Any, key: Any, timestamp: int, headers: Any, topic: str,
                partition: int, offset: int) -> None:
            self.out.send(key, value)
            self.pending += 1

        def flush(self) -> None:
            self.out.flush()
            self.progress.tick(self.pending)
            self.pending = 0

    return BatchSink, ForwardSink


# -- the applications --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    bootstrap: str
    prefix: str
    group: str
    state_dir: Path
    partitions: int = 8
    commit_interval: float = COMMIT_INTERVAL_S
    commit_every: int = 0


def _application(config: RunConfig, **extra: Any) -> Application:
    from quixstreams import Application

    return Application(
        broker_address=config.bootstrap, consumer_group=config.group,
        auto_offset_reset="earliest", commit_interval=config.commit_interval,
        commit_every=config.commit_every, producer_extra_config=dict(PRODUCER_CONFIG),
        state_dir=config.state_dir, consumer_poll_timeout=POLL_TIMEOUT_S,
        processing_guarantee="at-least-once", loglevel="WARNING", **extra)


def _producer(config: RunConfig) -> Producer:
    from quixstreams.kafka import Producer

    return Producer(config.bootstrap, extra_config=dict(PRODUCER_CONFIG))


def _raw_topic(app: Application, name: str, partitions: int | None = None) -> Any:
    """A topic of raw bytes; created with ``partitions`` when given and missing."""
    from quixstreams.models import TopicConfig

    config = None if partitions is None else TopicConfig(num_partitions=partitions,
                                                         replication_factor=1)
    return app.topic(name, key_deserializer="bytes", value_deserializer="bytes",
                     key_serializer="bytes", value_serializer="bytes", config=config)


def passthrough(config: RunConfig, progress: ThreadSafeProgress, *, send: Send = "sink"
                ) -> Application:
    """Every record of ``prices`` and ``texts``, unchanged, to ``bench-quix-out``."""
    def count(_topic: str, _partition: int, _offset: int) -> None:
        progress.tick(1)

    app = _application(config, on_message_processed=count if send == "topic"
                       else progress.first_event)
    out_name = f"{config.prefix}bench-quix-out"
    out_topic = _raw_topic(app, out_name, config.partitions)
    forward = None
    if send == "sink":
        _, forward_sink = _sink_classes()
        forward = forward_sink(KafkaOut(_producer(config), out_name), progress)
    for name in ("prices", "texts"):
        sdf = app.dataframe(_raw_topic(app, f"{config.prefix}{name}"))
        if forward is not None:
            sdf.sink(forward)
        else:
            sdf.to_topic(out_topic)
    return app


def pipeline(config: RunConfig, progress: ThreadSafeProgress, *, model_dir: Path,
             forecaster_name: str, sentiment_name: str, threads: int = 1) -> Application:
    """prices -> windows in state -> batched LSTM; texts -> VADER -> batched RNN (``threads``:
    ONNX Runtime threads per call, the workers' setting)."""
    from tickcast.models.predictors import load_latest
    from tickcast.models.registry import ModelStore
    from tickcast.streams.sentiment.scoring import VaderScorer
    from tickcast.streams.settings import Settings

    store = ModelStore(model_dir)
    forecaster = load_latest(store, forecaster_name, kind="forecaster", threads=threads)
    rnn = load_latest(store, sentiment_name, kind="sentiment", threads=threads)
    vader = VaderScorer()
    max_bytes = Settings().max_event_bytes

    app = _application(config, on_message_processed=progress.first_event)
    producer = _producer(config)
    batch_sink, _ = _sink_classes()
    outs = {}
    for name in ("forecasts", "sentiment"):
        topic = f"{config.prefix}bench-quix-{name}"
        _raw_topic(app, topic, config.partitions)  # created if missing
        outs[name] = KafkaOut(producer, topic)

    prices = app.dataframe(_raw_topic(app, f"{config.prefix}prices"))
    prices = prices.apply(price_step(forecaster.window, max_bytes), stateful=True)
    prices.filter(lambda window: window is not None).sink(batch_sink(
        ForecastWriter(forecaster, outs["forecasts"].send), outs["forecasts"], progress))

    texts = app.dataframe(_raw_topic(app, f"{config.prefix}texts"))
    texts = texts.apply(text_step(vader, max_bytes))
    texts.filter(lambda scored: scored is not None).sink(batch_sink(
        SentimentWriter(rnn, vader.version, outs["sentiment"].send), outs["sentiment"],
        progress))
    return app


# -- internal topics ---------------------------------------------------------------------------
def internal_topic_prefixes(group: str) -> tuple[str, str]:
    """Name prefixes of the topics Quix creates for consumer group ``group`` (state
    changelogs, repartitions): ``{type}__{group}--...``, outside the run's topic prefix."""
    return f"changelog__{group}--", f"repartition__{group}--"


def delete_internal_topics(bootstrap: str, group: str) -> int:
    """Delete the internal topics of ``group``; returns how many."""
    from tickcast_bench.harness import delete_topics

    return sum(delete_topics(bootstrap, prefix) for prefix in internal_topic_prefixes(group))


# -- command line ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tickcast_bench.quix",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["passthrough", "pipeline"])
    add_run_arguments(parser, models_for="pipeline")
    parser.add_argument("--state-dir", type=Path, required=True, help="Quix's state directory")
    parser.add_argument("--partitions", type=int, default=8,
                        help="partitions of the output topics when created (default 8)")
    parser.add_argument("--commit-interval", type=float, default=COMMIT_INTERVAL_S,
                        help=f"checkpoint interval in seconds (default {COMMIT_INTERVAL_S})")
    parser.add_argument("--commit-every", type=int, default=0,
                        help="also checkpoint after this many input messages (0: never)")
    parser.add_argument("--send", choices=["sink", "topic"], default="sink",
                        help="passthrough: a streaming sink counting acknowledged records "
                        "(default) or StreamingDataFrame.to_topic counting handed-over ones")
    parser.add_argument("--inference-threads", type=int, default=1,
                        help="ONNX Runtime threads per inference call (the workers' "
                             "TICKCAST_INFERENCE_THREADS) [1]")
    parser.add_argument("--keep-internal-topics", action="store_true",
                        help="keep Quix's changelog topics of --group when stopping")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.kind == "pipeline" and args.model_dir is None:
        raise SystemExit("pipeline needs --model-dir")
    config = RunConfig(bootstrap=args.bootstrap, prefix=args.prefix, group=args.group,
                       state_dir=args.state_dir, partitions=args.partitions,
                       commit_interval=args.commit_interval, commit_every=args.commit_every)
    progress = ThreadSafeProgress(Progress(args.progress))
    try:
        if args.kind == "passthrough":
            app = passthrough(config, progress, send=args.send)
        else:
            app = pipeline(config, progress, model_dir=args.model_dir,
                           forecaster_name=args.forecaster, sentiment_name=args.sentiment,
                           threads=args.inference_threads)
        progress.start()
        app.run()  # until SIGTERM or SIGINT (Quix's handlers call app.stop())
    finally:
        progress.stop()
        if not args.keep_internal_topics:
            _delete_internal_topics_quietly(args.bootstrap, args.group)


def _delete_internal_topics_quietly(bootstrap: str, group: str) -> None:
    try:
        delete_internal_topics(bootstrap, group)
    except Exception:  # logged, not raised: never hide why the run stopped
        log.exception("could not delete the internal topics of %s", group)


if __name__ == "__main__":
    main()
