"""The pipelines tickcast is compared with, each runnable as its own process.

* **baseline** — what common tutorials do: a Faust agent that calls Keras ``model.predict``
  once per event (one window, one text), on the same models.
* **ceiling** — a raw aiokafka consume → produce passthrough: no model, no Faust, no JSON.
* **faust** — the same passthrough as a Faust agent, run as tickcast runs Faust (its app
  class and consumer, batches taken as its agents take them, records sent straight to the
  producer, acked after delivery): what the Faust consumer path alone allows tickcast on
  this machine, the part of the gap to the ceiling no model work can close. Variants for
  comparison: ``--app stock`` runs a plain ``faust.App`` (Faust's own consumer), ``--take
  noack_take`` batches with Faust's ``Stream.noack_take``, and ``--send topic`` sends through
  Faust's ``Topic.send``.

``python -m tickcast_bench.pipelines KIND --bootstrap ... --progress FILE ...`` (the harness
builds the command) appends ``{"count": n, "t": seconds}`` lines to the progress file as it
goes; Faust's data directory is ``--datadir``, which the harness removes afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict, deque
from pathlib import Path

__all__ = ["add_run_arguments", "add_variant_arguments", "main", "variant_arguments"]


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
                      progress: Progress, *, app_kind: str = "tickcast",
                      take: str = "batches", send: str = "producer") -> None:
    """A Faust agent that forwards every record of ``prices`` and ``texts`` unchanged."""
    import faust

    from tickcast.streams.faust_internals import TickcastApp, batches

    app_class = faust.App if app_kind == "stock" else TickcastApp
    app = app_class(app_id, broker=f"kafka://{bootstrap}", web_enabled=False, env={},
                    value_serializer="raw", key_serializer="raw", autodiscover=False,
                    topic_disable_leader=True, consumer_auto_offset_reset="earliest",
                    producer_linger=0.005, producer_acks=-1, datadir=str(datadir))

    via_topic = send == "topic"
    noack_take = take == "noack_take"
    out = app.topic(out_topic, key_serializer="raw", value_serializer="raw")

    @app.agent(app.topic(f"{prefix}prices", f"{prefix}texts", key_serializer="raw",
                         value_serializer="raw"))
    async def forward(stream: faust.StreamT) -> None:
        taken = (stream.noack_take(256, within=0.01) if noack_take
                 else batches(stream, size=256, within=0.01))
        async for events in taken:
            if via_topic:  # Faust's Topic.send
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
             progress: Progress, *, forecaster_name: str, sentiment_name: str) -> None:
    """Per-message ``model.predict``: the pattern tickcast replaces."""
    import faust
    import numpy as np
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from tickcast.models.predictors import load_latest
    from tickcast.models.preprocessing import vader_scores
    from tickcast.models.registry import ModelStore

    store = ModelStore(model_dir)
    forecaster = load_latest(store, forecaster_name, kind="forecaster")
    rnn = load_latest(store, sentiment_name, kind="sentiment")
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
            body = [text["text"]]
            scores = vader_scores(body, vader)  # VADER once, its scores reused by the RNN
            ids = rnn.vocabulary.encode_batch(body)  # type: ignore[union-attr]
            x = [ids, scores[:, rnn.vocabulary.side_columns]] if rnn.needs_vader else ids
            score = rnn.model.predict(x, verbose=0)
            await out.send(value={"vader": float(scores[0, 3]), "rnn": float(score[0, 0])})
            progress.tick()

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tickcast_bench.pipelines",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["ceiling", "faust", "baseline"])
    add_run_arguments(parser, models_for="baseline")
    parser.add_argument("--datadir", type=Path, required=True, help="Faust's data directory")
    add_variant_arguments(parser, "faust")
    return parser.parse_args(argv)


def add_run_arguments(parser: argparse.ArgumentParser, *, models_for: str) -> None:
    """What every bench pipeline process takes from the harness: broker, backlog, consumer
    group, progress file, and the models (used by the ``models_for`` kind)."""
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True, help="topic prefix of the backlog")
    parser.add_argument("--group", required=True, help="consumer group")
    parser.add_argument("--progress", type=Path, required=True, help="progress file to append")
    parser.add_argument("--model-dir", type=Path, help=f"{models_for}: the model store")
    parser.add_argument("--forecaster", default="gold-lstm",
                        help=f"{models_for}: forecaster name")
    parser.add_argument("--sentiment", default="sentiment-rnn", help=f"{models_for}: RNN name")


def add_variant_arguments(parser: argparse.ArgumentParser, applies_to: str) -> None:
    """``--app``, ``--take`` and ``--send``: which Faust passthrough runs."""
    parser.add_argument("--app", choices=["tickcast", "stock"], default="tickcast",
                        help=f"{applies_to}: TickcastApp (default) or a plain faust.App")
    parser.add_argument("--take", choices=["batches", "noack_take"], default="batches",
                        help=f"{applies_to}: tickcast's batch taker (default) or "
                        "Stream.noack_take")
    parser.add_argument("--send", choices=["producer", "topic"], default="producer",
                        help=f"{applies_to}: straight to the producer (default) or Topic.send")


def variant_arguments(args: argparse.Namespace) -> tuple[str, ...]:
    """The arguments that run the variant ``args`` chose (see :func:`add_variant_arguments`)."""
    return ("--app", args.app, "--take", args.take, "--send", args.send)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    progress = Progress(args.progress)
    prefix = args.prefix
    if args.kind == "ceiling":
        asyncio.run(ceiling(args.bootstrap, [f"{prefix}prices", f"{prefix}texts"],
                            f"{prefix}bench-ceiling-out", args.group, progress))
    elif args.kind == "faust":
        faust_passthrough(args.bootstrap, prefix, args.group, f"{prefix}bench-faust-out",
                          args.datadir, progress, app_kind=args.app, take=args.take,
                          send=args.send)
    else:
        if args.model_dir is None:
            raise SystemExit("baseline needs --model-dir")
        baseline(args.bootstrap, prefix, args.group, args.model_dir, args.datadir, progress,
                 forecaster_name=args.forecaster, sentiment_name=args.sentiment)


if __name__ == "__main__":
    main()
