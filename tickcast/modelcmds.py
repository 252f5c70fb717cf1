"""``tickcast train``, ``tickcast models`` and ``tickcast generate``: offline training, the model
store, and samples from the text generator."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["add_generate_parser", "add_models_parser", "add_train_parser"]

DEFAULT_NAMES = {"prices": "gold-lstm", "sentiment": "sentiment-rnn", "textgen": "textgen-lstm"}


def add_train_parser(sub: Any, epilog: str) -> None:
    train = sub.add_parser(
        "train", help="train a model, write a versioned artifact, optionally publish it",
        description="Train the LSTM forecaster (prices), the RNN sentiment classifier "
        "(sentiment) or the character LSTM text generator (textgen) on the bundled datasets "
        "or your CSV; writes the artifact with its evaluation report into the model store and "
        "makes it LATEST.", epilog=epilog)
    train.add_argument("tasks", nargs="+", choices=list(DEFAULT_NAMES), metavar="TASK",
                       help="prices, sentiment and/or textgen")
    train.add_argument("--csv", type=Path, help="prices: a date and a close column (see "
                       "--date-column/--close-column); sentiment: text,label[,source][,id]; "
                       "textgen: a text column")
    train.add_argument("--date-column", default="date", help="prices CSV date column [date]")
    train.add_argument("--close-column", default="close",
                       help="prices CSV close column [close]")
    train.add_argument("--name", help="model name (default gold-lstm / sentiment-rnn / "
                       "textgen-lstm)")
    train.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end "
                       "sooner)")
    train.add_argument("--quick", action="store_true",
                       help="small model on little data (sentiment, textgen: the shipped "
                       "1,200-text sample, offline): a pipeline check in seconds, not a useful "
                       "model; also set by TICKCAST_TRAIN_MODE=quick")
    train.add_argument("--if-missing", action="store_true",
                       help="skip a task whose model already has a LATEST version")
    train.add_argument("--no-promote", action="store_true",
                       help="write the artifact but leave LATEST where it is")
    train.add_argument("--publish", action="store_true",
                       help="send a model-updates event after a successful write")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress bars")
    train.set_defaults(func=cmd_train)


def add_models_parser(sub: Any, epilog: str) -> None:
    models = sub.add_parser("models", help="list, show, promote or roll back model versions",
                            epilog=epilog)
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every model and version; * marks LATEST")
    listing.add_argument("name", nargs="?")
    show = actions.add_parser("show", help="a version's manifest (default LATEST) and report")
    show.add_argument("name")
    show.add_argument("version", nargs="?")
    promote = actions.add_parser("promote", help="verify a version and make it LATEST")
    promote.add_argument("name")
    promote.add_argument("version")
    rollback = actions.add_parser("rollback", help="make the previous LATEST version LATEST")
    rollback.add_argument("name")
    for p in (promote, rollback):
        p.add_argument("--publish", action="store_true", help="send a model-updates event")
    models.set_defaults(func=cmd_models)


def _settings() -> Any:
    from tickcast.cli import _settings as settings

    return settings()


def _prices_frame(args: argparse.Namespace) -> tuple[Any, str]:
    import pandas as pd

    from tickcast.training.data import gold_closes
    from tickcast.training.prices import DAILY_FROM

    if args.csv is None:
        gold = gold_closes()
        return gold[gold["date"] >= DAILY_FROM].reset_index(drop=True), "gold_price_data.csv"
    raw = pd.read_csv(args.csv)
    missing = [c for c in (args.date_column, args.close_column) if c not in raw.columns]
    if missing:
        raise ValueError(f"{args.csv}: no column {', '.join(missing)} (columns: "
                         f"{', '.join(map(str, raw.columns))}); see --date-column/--close-column")
    frame = pd.DataFrame({"date": pd.to_datetime(raw[args.date_column], utc=True),
                          "close": pd.to_numeric(raw[args.close_column], errors="coerce")})
    bad = int(frame.isna().any(axis=1).sum() + (frame["close"] <= 0).sum())
    if bad:
        raise ValueError(f"{args.csv}: {bad} rows have an unreadable date or a missing, zero "
                         "or negative close; clean them first")
    return frame, args.csv.name


def _texts_frame(args: argparse.Namespace, settings: Any, *, labelled: bool = True
                 ) -> tuple[Any, str]:
    import pandas as pd

    from tickcast.training.data import fetch_sentiment_corpus, load_rated_texts, sample_texts

    if args.csv is None and args.quick:
        return sample_texts(), "sentiment_sample.csv"  # shipped: offline, seconds
    if args.csv is None:
        print("fetching the human-rated sentiment sets (vaderSentiment 3.3.2 sdist, "
              "checksum-verified, cached) ...", flush=True)
        corpus = fetch_sentiment_corpus(settings.state_dir / "datasets")
        return load_rated_texts(corpus), "hutto_ICWSM_2014"
    frame = pd.read_csv(args.csv)
    need = ("text", "label") if labelled else ("text",)
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValueError(f"{args.csv}: no column {', '.join(missing)}; need {','.join(need)}")
    if labelled and not frame["label"].isin([0, 1]).all():
        raise ValueError(f"{args.csv}: label must be 0 or 1 on every row")
    if "id" not in frame.columns:
        frame["id"] = [f"csv-{i}" for i in range(len(frame))]
    return frame, args.csv.name


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from tickcast.models.registry import ModelStore

    mode = os.environ.get("TICKCAST_TRAIN_MODE", "full")
    if mode not in ("quick", "full"):
        raise ValueError(f"TICKCAST_TRAIN_MODE={mode!r} is invalid: expected quick or full")
    args.quick = args.quick or mode == "quick"
    if args.name and len(args.tasks) > 1:
        raise ValueError("--name applies to one task; train them one at a time")
    store = ModelStore(_settings().model_dir)
    for task in dict.fromkeys(args.tasks):
        name = args.name or DEFAULT_NAMES[task]
        if args.if_missing and store.latest(name) is not None:
            print(f"{name}: LATEST is {store.latest(name)}; skipping (--if-missing)")
            continue
        _train_one(args, task, name)
    return 0


def _train_one(args: argparse.Namespace, task: str, name: str) -> None:
    from dataclasses import replace

    from tickcast.models.registry import ModelStore

    settings = _settings()
    progress = not args.quiet
    if task == "prices":
        from tickcast.training.prices import PriceConfig, train_prices

        frame, source = _prices_frame(args)
        config = PriceConfig.quick() if args.quick else PriceConfig()
        if args.epochs:
            config = replace(config, epochs=args.epochs)
        result: Any = train_prices(frame, store_dir=settings.model_dir, name=name,
                                   config=config, source=source, progress=progress)
        headline = ["lstm_rmse", "naive_rmse", "lstm_mae", "naive_mae", "lstm_mape",
                    "naive_mape", "skill_rmse", "direction_accuracy", "direction_auc"]
    elif task == "sentiment":
        from tickcast.training.sentiment import SentimentConfig, train_sentiment

        frame, source = _texts_frame(args, settings)
        config_s = SentimentConfig.quick() if args.quick else SentimentConfig()
        if args.epochs:
            config_s = replace(config_s, epochs=args.epochs)
        result = train_sentiment(frame, store_dir=settings.model_dir, name=name,
                                 config=config_s, source=source, progress=progress)
        headline = sorted(k for k in result.metrics if k.endswith(("_auc", "_auc_diff")))
    else:
        from tickcast.training.textgen import TextGenConfig, train_textgen

        frame, source = _texts_frame(args, settings, labelled=False)
        config_t = TextGenConfig.quick() if args.quick else TextGenConfig()
        if args.epochs:
            config_t = replace(config_t, epochs=args.epochs)
        result = train_textgen(list(frame["text"].dropna()), store_dir=settings.model_dir,
                               name=name, config=config_t, source=source, progress=progress)
        headline = ["test_ppl_lstm", "test_ppl_bigram", "test_ppl_unigram",
                    "gen_chars_per_s_batch1", "gen_chars_per_s_batch", "fit_seconds"]
    store = ModelStore(settings.model_dir)
    if not args.no_promote:
        store.promote(name, result.manifest.version, reason="trained")
    print(f"\n{name} {result.manifest.version} written to {result.path} in "
          f"{result.seconds:.0f}s" + ("" if args.no_promote else " (now LATEST)"))
    for key in headline:
        print(f"  {key:<24} {result.metrics[key]:.4f}")
    print(f"  report: {result.path / 'report.md'}")
    if args.publish:
        _publish(result.manifest, settings)


def _publish(manifest: Any, settings: Any, *, rollback: bool = False) -> None:
    from tickcast.streams.topics import ensure_topics, topic_specs
    from tickcast.training.publish import publish_update

    ensure_topics(settings.bootstrap_servers, topic_specs(settings),
                  security=settings.kafka_security)
    topic = settings.topic("model-updates")
    partition, offset = publish_update(manifest, bootstrap=settings.bootstrap_servers,
                                       security=settings.kafka_security,
                                       topic=topic, rollback=rollback)
    print(f"published {manifest.name}/{manifest.version} to {topic} "
          f"(partition {partition}, offset {offset})")


def cmd_models(args: argparse.Namespace) -> int:
    from tickcast.models.registry import ModelStore

    settings = _settings()
    store = ModelStore(settings.model_dir)
    if args.action == "list":
        names = [args.name] if args.name else store.names()
        if not names:
            print(f"no models in {settings.model_dir} "
                  "(tickcast train prices|sentiment|textgen)")
        for name in names:
            for info in store.versions(name):
                stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(info.created_at / 1000))
                mark = "*" if info.latest else " "
                print(f"{mark} {name:<16} {info.version:<26} {stamp}")
        return 0
    if args.action == "show":
        version = args.version or store.latest(args.name)
        if version is None:
            raise ValueError(f"{args.name} has no LATEST version in {settings.model_dir}")
        manifest = store.verify(args.name, version)
        print(json.dumps(manifest.to_dict(), indent=2))
        print(f"report: {store.path(args.name, version) / 'report.md'}")
        return 0
    if args.action == "promote":
        manifest = store.promote(args.name, args.version)
    else:
        manifest = store.rollback(args.name)
    print(f"{manifest.name} LATEST is now {manifest.version}")
    if args.publish:
        _publish(manifest, settings, rollback=args.action == "rollback")
    return 0


def add_generate_parser(sub: Any, epilog: str) -> None:
    gen = sub.add_parser(
        "generate", help="print texts sampled from the text generator",
        description="Sample texts from the LATEST character LSTM of the model store (`tickcast "
        "train textgen`): each sample is the prompt followed by --length generated characters."
        " Generated texts are synthetic and unlabelled.", epilog=epilog)
    gen.add_argument("--prompt", default="", help="text every sample starts with [none]")
    gen.add_argument("--n", type=int, default=5, help="number of samples [5]")
    gen.add_argument("--temperature", type=float, default=0.8,
                     help="below 1 safer and more repetitive, above 1 more surprising [0.8]")
    gen.add_argument("--length", type=int, default=200,
                     help="characters generated after the prompt [200]")
    gen.add_argument("--seed", type=int,
                     help="same seed, model and arguments: same samples [random]")
    gen.add_argument("--stop-at-end", action="store_true",
                     help="end a sample where the model ends its text (--length is then a "
                     "maximum)")
    gen.add_argument("--name", default=DEFAULT_NAMES["textgen"],
                     help=f"model name in the store [{DEFAULT_NAMES['textgen']}]")
    gen.set_defaults(func=cmd_generate)


def load_generator(model_dir: Path, name: str) -> Any:
    """The ``LATEST`` text generator ``name`` from the store, through the one loader."""
    from tickcast.models.artifacts import ArtifactError
    from tickcast.models.predictors import load_predictor
    from tickcast.models.registry import ModelStore
    from tickcast.models.textgen import TextGenerator

    store = ModelStore(model_dir)
    version = store.latest(name)
    if version is None:
        raise ValueError(f"no {name} model in {model_dir}: train one first with `tickcast "
                         "train textgen --quick` (seconds, a pipeline check) or `tickcast train "
                         "textgen` (minutes)")
    predictor = load_predictor(store.path(name, version))
    if not isinstance(predictor, TextGenerator):
        raise ArtifactError(f"{name}/{version} is a {predictor.kind} model, not a text "
                            "generator")
    return predictor


def cmd_generate(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    generator = load_generator(_settings().model_dir, args.name)
    texts = generator.generate([args.prompt] * args.n, length=args.length,
                               temperature=args.temperature, seed=args.seed,
                               stop_at_end=args.stop_at_end)
    for text in texts:
        print(text)
    return 0
