"""``tickcast produce``: replay a dataset or CSV into Kafka, or stream generated texts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from tickcast.cli.common import (
    EPILOG,
    Context,
    existing_file,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from tickcast.errors import UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    produce = sub.add_parser("produce", help="replay a dataset or CSV into Kafka",
                             description="Replay the bundled gold closes (prices) or labelled "
                             "texts (texts), or your own CSV, at a set rate; or stream texts "
                             "from the text generator (texts --generated).", epilog=EPILOG)
    produce.add_argument("kind", choices=["prices", "texts"])
    produce.add_argument("--csv", type=existing_file, help="prices: date,close|price; texts: "
                         "id,text[,label]. Default: the bundled dataset")
    produce.add_argument("--rate", type=non_negative_float, default=0.0,
                         help="records per second; 0 (default) sends as fast as possible")
    produce.add_argument("--limit", type=positive_int, help="stop after this many records")
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
    produce.add_argument("--temperature", type=positive_float, default=0.8,
                         help="--generated: sampling temperature [0.8]")
    produce.add_argument("--max-length", type=positive_int, default=280,
                         help="--generated: at most this many characters after the prompt [280]")
    produce.add_argument("--seed", type=non_negative_int,
                         help="--generated: seed of the sampler [random]")
    produce.add_argument("--no-progress", action="store_true", help="no progress bar")
    produce.set_defaults(run=run)


def _check(args: argparse.Namespace) -> None:
    """Refuse what cannot be honoured before any broker is contacted."""
    if args.prompt and not args.generated:
        raise UsageError("--prompt applies to --generated texts only")
    if not args.generated:
        return
    if args.kind != "texts":
        raise UsageError("--generated produces texts, not prices")
    if args.csv is not None:
        raise UsageError("--generated and --csv exclude each other")
    if args.labels not in (None, "none"):
        raise UsageError(f"--labels {args.labels}: generated texts are never labelled (a "
                         "label from our own classifier would make the AUC circular)")


def run(args: argparse.Namespace, context: Context) -> int:
    from tickcast.replay import Replay, price_events, read_csv, text_events
    from tickcast.streams.topics import ensure_topics, topic_specs
    from tickcast.training.data import gold_closes, sample_texts

    _check(args)
    settings = context.settings
    total: int | None
    if args.generated:
        records, total = _generated(args, context), None
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


def _generated(args: argparse.Namespace, context: Context) -> Iterator[tuple[str, bytes, bytes]]:
    from tickcast.cli.generate import load_generator
    from tickcast.replay import generated_text_events

    generator = load_generator(context, None)
    texts = generator.stream(prompts=args.prompt or [""], temperature=args.temperature,
                             seed=args.seed, max_length=args.max_length)
    return generated_text_events(texts)
