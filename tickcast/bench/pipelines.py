"""The two pipelines tickcast is compared with, each runnable as its own process.

* **baseline** — what common tutorials do: a Faust agent that calls Keras ``model.predict``
  once per event (one window, one text), on the same models.
* **ceiling** — a raw aiokafka consume → produce passthrough: no model, no Faust, no JSON.
* **faust** — the same passthrough as a Faust agent, run as tickcast runs Faust (its app
  class and consumer, batches taken as its agents take them, records sent straight to the
  producer, acked after delivery): what the Faust consumer path alone allows tickcast on
  this machine, the part of the gap to the ceiling no model work can close. Variants for
  comparison: ``BENCH_FAUST_APP=stock`` runs a plain ``faust.App`` (Faust's own consumer),
  ``BENCH_FAUST_TAKE=noack_take`` batches with Faust's ``Stream.noack_take``, and
  ``BENCH_FAUST_SEND=topic`` sends through Faust's ``Topic.send`` -- what tickcast used
  before ``streams/app.py``'s consumer, ``streams/batching.py`` and ``streams/delivery.py``.

``python -m tickcast.bench.pipelines baseline|ceiling|faust`` reads its configuration from the
environment (set by the harness) and appends ``{"count": n, "t": seconds}`` lines to
``BENCH_PROGRESS`` once a second; Faust's data directory is ``BENCH_DATADIR``, which the
harness removes afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import defaultdict, deque
from pathlib import Path

__all__ = ["main"]


class Progress:
    """Counts processed events; the clock starts at the first one (count 0 at that instant)
    and a point is written every 0.1 s."""

    def __init__(self, path: Path) -> None:
        self.path, self.count = path, 0
        self._last: float | None = None

    def _write(self) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"count": self.count, "t": time.time()}) + "\n")

    def tick(self, n: int = 1) -> None:
        now = time.monotonic()
        if self._last is None:
            if n == 0:
                return
            self._write()  # count 0 at the first event: the clock starts here
            self._last = now
        self.count += n
        if now - self._last >= 0.1:
            self._last = now
            self._write()


async def ceiling(bootstrap: str, topics: list[str], out_topic: str, group: str,
                  progress: Progress) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=True,
                                max_poll_records=2000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=-1, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            futures = [await producer.send(out_topic, key=m.key, value=m.value)
                       for records in batches.values() for m in records]
            if futures:
                await asyncio.gather(*futures)
                progress.tick(len(futures))
            else:
                progress.tick(0)
    finally:
        await consumer.stop()
        await producer.stop()


def faust_passthrough(bootstrap: str, prefix: str, app_id: str, out_topic: str, datadir: Path,
                progress: Progress) -> None:
    """A Faust agent that forwards every record of ``prices`` and ``texts`` unchanged."""
    import faust

    from tickcast.streams.app import TickcastApp
    from tickcast.streams.batching import batches

    app_class = faust.App if os.environ.get("BENCH_FAUST_APP") == "stock" else TickcastApp
    app = app_class(app_id, broker=f"kafka://{bootstrap}", web_enabled=False, env={},
                    value_serializer="raw", key_serializer="raw", autodiscover=False,
                    topic_disable_leader=True, consumer_auto_offset_reset="earliest",
                    producer_linger=0.005, producer_acks=-1, datadir=str(datadir))

    via_topic = os.environ.get("BENCH_FAUST_SEND") == "topic"
    noack_take = os.environ.get("BENCH_FAUST_TAKE") == "noack_take"
    out = app.topic(out_topic, key_serializer="raw", value_serializer="raw")

    @app.agent(app.topic(f"{prefix}prices", f"{prefix}texts", key_serializer="raw",
                         value_serializer="raw"))
    async def forward(stream: faust.StreamT) -> None:
        taken = (stream.noack_take(256, within=0.01) if noack_take
                 else batches(stream, size=256, within=0.01))
        async for events in taken:
            if via_topic:  # Faust's Topic.send, what tickcast used before streams/delivery.py
                futures = [await out.send(key=e.message.key, value=e.message.value)
                           for e in events]
            else:
                producer = app.producer
                futures = [await producer.send(out_topic, e.message.key, e.message.value,
                                               None, None, None) for e in events]
            await asyncio.gather(*futures)
            for event in events:
                await stream.ack(event)
            progress.tick(len(events))

    @app.timer(0.2)
    async def flush_progress() -> None:
        progress.tick(0)  # records the last count once the input runs out

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


def baseline(bootstrap: str, prefix: str, app_id: str, model_dir: Path, datadir: Path,
             progress: Progress) -> None:
    """Per-message ``model.predict``: the pattern tickcast replaces."""
    import faust
    import numpy as np
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from tickcast.models.predictors import load_predictor
    from tickcast.models.registry import ModelStore

    store = ModelStore(model_dir)
    forecaster = load_predictor(store.path("gold-lstm", store.latest("gold-lstm") or ""))
    rnn = load_predictor(store.path("sentiment-rnn", store.latest("sentiment-rnn") or ""))
    vader = SentimentIntensityAnalyzer()
    app = faust.App(app_id, broker=f"kafka://{bootstrap}", web_enabled=False, env={},
                    value_serializer="json", key_serializer="raw", autodiscover=False,
                    topic_disable_leader=True, consumer_auto_offset_reset="earliest",
                    datadir=str(datadir))
    out = app.topic(f"{prefix}bench-baseline-out", value_serializer="json")
    windows: dict[str, deque] = defaultdict(lambda: deque(maxlen=forecaster.window))

    @app.agent(app.topic(f"{prefix}prices", value_serializer="json"))
    async def prices(stream: faust.StreamT) -> None:
        async for tick in stream:
            window = windows[tick["symbol"]]
            window.append(tick["price"])
            if len(window) == forecaster.window:
                x = forecaster.scaler.inputs(np.asarray([window]))
                y = forecaster.model.predict(x, verbose=0)
                await out.send(value={"forecast": float(y[0, 0])})
            progress.tick()

    @app.agent(app.topic(f"{prefix}texts", value_serializer="json"))
    async def texts(stream: faust.StreamT) -> None:
        async for text in stream:
            compound = vader.polarity_scores(text["text"])["compound"]
            ids = rnn.vocabulary.encode_batch([text["text"]])  # type: ignore[union-attr]
            score = rnn.model.predict(ids, verbose=0)
            await out.send(value={"vader": compound, "rnn": float(score[0, 0])})
            progress.tick()

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


def main() -> None:
    kind = sys.argv[1]
    env = os.environ
    progress = Progress(Path(env["BENCH_PROGRESS"]))
    if kind == "ceiling":
        asyncio.run(ceiling(env["BENCH_BOOTSTRAP"], [f"{env['BENCH_PREFIX']}prices",
                                                     f"{env['BENCH_PREFIX']}texts"],
                            f"{env['BENCH_PREFIX']}bench-ceiling-out", env["BENCH_GROUP"],
                            progress))
    elif kind == "faust":
        faust_passthrough(env["BENCH_BOOTSTRAP"], env["BENCH_PREFIX"], env["BENCH_GROUP"],
                    f"{env['BENCH_PREFIX']}bench-faust-out", Path(env["BENCH_DATADIR"]),
                    progress)
    else:
        baseline(env["BENCH_BOOTSTRAP"], env["BENCH_PREFIX"], env["BENCH_GROUP"],
                 Path(env["BENCH_MODEL_DIR"]), Path(env["BENCH_DATADIR"]), progress)


if __name__ == "__main__":
    main()
