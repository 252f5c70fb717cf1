"""``tickcast backtest``: recorded events through the worker's processors, versions compared."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tickcast.cli.common import EPILOG, Context, existing_file, positive_int
from tickcast.errors import UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    backtest = sub.add_parser(
        "backtest", help="replay recorded events through the worker's processors and compare "
        "model versions on them",
        description="Feed recorded prices and texts, in event-time order and without a broker, "
        "through the code the worker runs, once per model version. The first version of each "
        "kind is the champion: every other is compared with it on the same events "
        "(Diebold-Mariano on forecasts, DeLong on AUC), every forecaster with naive "
        "persistence and every sentiment model with VADER. Without --prices/--texts it runs "
        "the data that ships with tickcast (gold closes, the labelled text sample). The same "
        "inputs and versions give byte-identical outputs.", epilog=EPILOG)
    backtest.add_argument("--prices", type=existing_file,
                          help="price events: JSON lines (one event per line, as on `prices`) "
                          "or CSV date,close|price")
    backtest.add_argument("--texts", type=existing_file,
                          help="text events: JSON lines (as on `texts`) or CSV id,text[,label]")
    backtest.add_argument("--labels", type=existing_file,
                          help="labels arriving separately: JSON lines (as on `labels`) or CSV "
                          "id,label; each is fed right after its text")
    backtest.add_argument("--symbol", default="XAU", help="symbol of CSV prices [XAU]")
    backtest.add_argument("--forecaster", action="append", metavar="NAME[@VERSION]",
                          help="a forecaster version (repeat to compare; the first is the "
                          "champion) [TICKCAST_FORECASTER_MODEL@LATEST]")
    backtest.add_argument("--sentiment", action="append", metavar="NAME[@VERSION]",
                          help="a sentiment model version (repeat to compare; the first is the "
                          "champion) [TICKCAST_SENTIMENT_MODEL@LATEST, or VADER alone if the "
                          "store has none]")
    backtest.add_argument("--out", type=Path,
                          help="directory for the outputs [TICKCAST_STATE_DIR/backtest]")
    backtest.add_argument("--every", type=positive_int, default=100,
                          help="record the rolling metrics every N events [100]")
    backtest.add_argument("--no-progress", action="store_true", help="no progress bar")
    backtest.set_defaults(run=run)


def run(args: argparse.Namespace, context: Context) -> int:
    from tickcast.backtest import (
        Backtest,
        Inputs,
        ModelRef,
        read_events,
        shipped_inputs,
        with_labels,
    )

    if args.labels and not args.texts:
        raise UsageError("--labels needs --texts: a label is joined with its text")
    settings = context.settings
    if args.prices or args.texts:
        inputs = Inputs()
        if args.prices:
            inputs.prices = read_events(args.prices, "prices", symbol=args.symbol)
            inputs.described.append(str(args.prices))
        if args.texts:
            texts = read_events(args.texts, "texts")
            labels = read_events(args.labels, "labels") if args.labels else []
            inputs.texts = with_labels(texts, labels)
            inputs.described += [str(p) for p in (args.texts, args.labels) if p]
    else:
        inputs = shipped_inputs(symbol=args.symbol)
    forecasters = []
    if inputs.prices:
        refs = [ModelRef.parse(r) for r in args.forecaster or [settings.forecaster_model]]
        forecasters = [_load(context, "forecaster", ref, "tickcast train prices") for ref in refs]
    sentiments: list[Any] = []
    if inputs.texts:
        if args.sentiment:
            sentiments = [_load(context, "sentiment", ModelRef.parse(r),
                                "tickcast train sentiment") for r in args.sentiment]
        else:
            sentiments = [_default_sentiment(context)]
    total = len(inputs.prices) * len(forecasters) + len(inputs.texts) * len(sentiments)
    out = args.out or settings.state_dir / "backtest"
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="ev", desc="backtest", file=sys.stderr, leave=False)
    try:
        result = Backtest(settings=settings, forecasters=forecasters, sentiments=sentiments,
                          every=args.every, progress=bar.update if bar else None
                          ).run(inputs, out)
    finally:
        if bar is not None:
            bar.close()
    print(render(result.summary))
    print(f"\nwritten to {out}: " + ", ".join(p.name for p in result.files))
    return 0


def _load(context: Context, kind: str, ref: Any, hint: str) -> Any:
    from tickcast.models.artifacts import ArtifactError
    from tickcast.models.registry import ModelStore
    from tickcast.streams.serving import load_model

    settings = context.settings
    store = ModelStore(settings.model_dir)
    version = store.latest(ref.name) if ref.version == "LATEST" else ref.version
    if version is None:
        raise UsageError(f"{ref.name} has no LATEST version in {settings.model_dir} ({hint})")
    try:
        return load_model(store, kind, ref.name, version,  # type: ignore[arg-type]
                          backend=settings.inference_backend,
                          threads=settings.inference_threads)
    except ArtifactError as exc:
        raise UsageError(f"cannot backtest {ref.name}@{version}: {exc}") from None


def _default_sentiment(context: Context) -> Any:
    from tickcast.backtest import ModelRef
    from tickcast.models.registry import ModelStore

    settings = context.settings
    if ModelStore(settings.model_dir).latest(settings.sentiment_model) is None:
        print(f"note: no LATEST {settings.sentiment_model} in {settings.model_dir}: texts are "
              "scored by VADER alone", file=sys.stderr)
        return None
    return _load(context, "sentiment", ModelRef(settings.sentiment_model),
                 "tickcast train sentiment")


def _num(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def render(summary: dict[str, Any]) -> str:
    """The one-screen summary of a backtest."""
    lines: list[str] = []
    inputs = summary["inputs"]
    lines.append(f"inputs: {inputs['prices']:,} price events, {inputs['texts']:,} texts/labels "
                 f"({'; '.join(inputs['described'])})")
    forecasts = summary.get("forecasts")
    if forecasts:
        lines.append("\nforecasts (whole run; DM < 0 and p < 0.05: the first is better)")
        lines.append(f"  {'model':<40} {'scored':>7} {'RMSE':>9} {'naive':>9} {'MASE':>6} "
                     f"{'naive':>6}  {'DM vs naive (p)':<18} DM vs champion (p)")
        for m in forecasts["models"]:
            lines.append(
                f"  {m['model']:<40} {m['scored']:>7,} {_num(m['model_rmse'], '.3f'):>9} "
                f"{_num(m['naive_rmse'], '.3f'):>9} {_num(m['model_mase'], '.3f'):>6} "
                f"{_num(m['naive_mase'], '.3f'):>6}  {_dm_text(m['dm_vs_naive']):<18} "
                f"{_dm_text(m.get('dm_vs_champion')) if 'dm_vs_champion' in m else 'champion'}")
    with_intervals = [m for m in (forecasts or {}).get("models", []) if m.get("intervals")]
    if with_intervals:
        lines.append("\nforecast intervals (whole run; score: interval score / price, lower is "
                     "better)")
        lines.append(f"  {'model':<40} {'80% covers':>10} {'score':>8} {'baseline':>8} "
                     f"{'95% covers':>10} {'score':>8} {'baseline':>8}")
        for m in with_intervals:
            lstm, base = m["intervals"].get("lstm", {}), m["intervals"].get("baseline", {})
            cells = []
            for level in ("80", "95"):
                own, ref = lstm.get(level, {}), base.get(level, {})
                cells += [f"{_num(own.get('coverage'), '.3f'):>10}",
                          f"{_num(own.get('score_ratio'), '.5f'):>8}",
                          f"{_num(ref.get('score_ratio'), '.5f'):>8}"]
            lines.append(f"  {m['model']:<40} " + " ".join(cells))
    sentiment = summary.get("sentiment")
    if sentiment:
        lines.append("\nsentiment (whole run; differences with their 95% DeLong interval)")
        lines.append(f"  {'model':<40} {'labelled':>8} {'AUC':>7} {'VADER':>7}  "
                     f"{'vs VADER':<26} vs champion")
        for m in sentiment["models"]:
            vs_champion = ("champion" if m is sentiment["models"][0]
                           else _delong_text(m.get("vs_champion")))
            lines.append(f"  {m['model']:<40} {m['labelled']:>8,} {_num(m['auc']):>7} "
                         f"{_num(m['auc_vader']):>7}  {_delong_text(m.get('vs_vader')):<26} "
                         f"{vs_champion}")
    dead = summary["dead_letters"]
    lines.append("\ndead letters: " + (", ".join(f"{n} {reason}" for reason, n in dead.items())
                                       if dead else "none"))
    return "\n".join(lines)


def _dm_text(dm: dict[str, Any] | None) -> str:
    return "-" if not dm else f"{dm['stat']:+.2f} ({dm['p_value']:.3g})"


def _delong_text(c: dict[str, Any] | None) -> str:
    return "-" if not c else f"{c['diff']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]"
