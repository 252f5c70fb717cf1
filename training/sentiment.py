"""``tickcast train sentiment``: the RNN sentiment classifier, evaluated beside VADER.

Split stratified by source set and label (train / validation / test); the vocabulary is fitted
on the training texts only and saved in the artifact. The test texts of every source are scored
by the RNN and by VADER (compound), and both are evaluated on exactly the same texts.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tickcast.models.architectures import build_sentiment_rnn
from tickcast.models.artifacts import (
    MODEL_FILE,
    PREPROCESSING_FILE,
    Manifest,
    new_version,
    write_artifact,
)
from tickcast.models.backend import keras, set_seed
from tickcast.models.preprocessing import Vocabulary
from tickcast.training.data import fingerprint
from tickcast.training.evaluate import confusion, roc_auc, roc_curve
from tickcast.training.progress import keras_verbose
from tickcast.training.reports import figure, markdown_table, write_report

__all__ = [
    "VADER_THRESHOLD",
    "SentimentConfig",
    "SentimentResult",
    "split_texts",
    "train_sentiment",
]

VADER_THRESHOLD = 0.05  # VADER's documented cut-off: compound >= 0.05 is positive


@dataclass(frozen=True, slots=True)
class SentimentConfig:
    max_tokens: int = 20_000
    max_len: int = 64
    embed_dim: int = 64
    units: int = 48
    dropout: float = 0.3
    epochs: int = 12
    batch_size: int = 64
    patience: int = 3
    val_frac: float = 0.1
    test_frac: float = 0.2
    threshold: float = 0.5
    seed: int = 42
    max_train_texts: int | None = None
    vader_lexicon: bool = True
    """Feed VADER's word valences to the RNN as frozen features beside its embedding."""
    balance_sources: bool = True
    """Weight training texts so each source set counts equally (movies would dominate)."""

    @classmethod
    def quick(cls) -> SentimentConfig:
        return cls(max_tokens=4000, embed_dim=16, units=8, epochs=2, patience=1,
                   max_train_texts=2000)


def split_texts(frame: pd.DataFrame, *, val_frac: float, test_frac: float, seed: int
                ) -> dict[str, pd.DataFrame]:
    """Stratified by ``(source, label)``: every source keeps its class balance in each part."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[pd.DataFrame]] = {"train": [], "val": [], "test": []}
    for _, group in frame.groupby(["source", "label"], sort=True):
        order = rng.permutation(len(group))
        n_test = round(len(group) * test_frac)
        n_val = round(len(group) * val_frac)
        parts["test"].append(group.iloc[order[:n_test]])
        parts["val"].append(group.iloc[order[n_test:n_test + n_val]])
        parts["train"].append(group.iloc[order[n_test + n_val:]])
    return {k: pd.concat(v).sample(frac=1.0, random_state=seed).reset_index(drop=True)
            for k, v in parts.items()}


@dataclass(frozen=True, slots=True)
class SentimentResult:
    path: Path
    manifest: Manifest
    metrics: dict[str, float]
    seconds: float


def _vader_compound(texts: list[str]) -> np.ndarray:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return np.array([analyzer.polarity_scores(t)["compound"] for t in texts])


def train_sentiment(frame: pd.DataFrame, *, store_dir: Path, name: str = "sentiment-rnn",
                    config: SentimentConfig = SentimentConfig(), source: str = "hutto_ICWSM_2014",
                    progress: bool = True) -> SentimentResult:
    """Train, evaluate against VADER and write one versioned artifact under ``store_dir/name``."""
    started = time.monotonic()
    if "source" not in frame.columns:
        frame = frame.assign(source="csv")
    frame = frame[["id", "source", "text", "label"]].dropna()
    split = split_texts(frame, val_frac=config.val_frac, test_frac=config.test_frac,
                        seed=config.seed)
    train = split["train"]
    if config.max_train_texts:
        train = train.head(config.max_train_texts)
    vocab = Vocabulary.fit(train["text"], max_tokens=config.max_tokens, max_len=config.max_len)

    set_seed(config.seed)
    model = build_sentiment_rnn(vocab_size=vocab.size, max_len=vocab.max_len,
                                embed_dim=config.embed_dim, units=config.units,
                                dropout=config.dropout,
                                lexicon=vocab.lexicon_features() if config.vader_lexicon
                                else None)
    k = keras()
    val = split["val"]
    counts = train["source"].map(train["source"].value_counts())
    weights = (len(train) / (counts * train["source"].nunique())).to_numpy(np.float32)
    history = model.fit(
        vocab.encode_batch(list(train["text"])), train["label"].to_numpy(np.float32),
        sample_weight=weights if config.balance_sources else None,
        validation_data=(vocab.encode_batch(list(val["text"])),
                         val["label"].to_numpy(np.float32)),
        epochs=config.epochs, batch_size=config.batch_size, verbose=keras_verbose(progress),
        callbacks=[k.callbacks.EarlyStopping(monitor="val_auc", mode="max",
                                             patience=config.patience,
                                             restore_best_weights=True)])
    test = split["test"].copy()
    test["rnn"] = np.asarray(model.predict(vocab.encode_batch(list(test["text"])),
                                           batch_size=512, verbose=0)).reshape(-1)
    test["vader"] = _vader_compound(list(test["text"]))
    per_source = _evaluate(test, config.threshold)
    metrics = {f"{group}_{key}": value for group, row in per_source.items()
               for key, value in row.items() if isinstance(value, float)}
    metrics["epochs_run"] = float(len(history.history["loss"]))
    metrics["vocab_size"] = float(vocab.size)

    def write_files(folder: Path) -> None:
        model.save(folder / MODEL_FILE)
        (folder / PREPROCESSING_FILE).write_text(json.dumps(vocab.to_dict()), encoding="utf-8")
        _sentiment_report(folder, test=test, per_source=per_source, config=config)

    path, manifest = write_artifact(
        store_dir / name, name=name, kind="sentiment", version=new_version(),
        write_files=write_files, metrics=metrics,
        input_spec={"shape": [None, vocab.max_len], "dtype": "int32",
                    "tokenizer": "tickcast.models.preprocessing.tokenize",
                    "vocab_size": vocab.size},
        data={"source": source, "rows": len(frame),
              "fingerprint": fingerprint(frame), "split_seed": config.seed,
              "sizes": {k_: len(v) for k_, v in split.items()},
              "config": asdict(config)})
    return SentimentResult(path, manifest, metrics, time.monotonic() - started)


def _evaluate(test: pd.DataFrame, threshold: float) -> dict[str, dict[str, float | int]]:
    groups = {"pooled": test, **{s: g for s, g in test.groupby("source", sort=True)}}
    out: dict[str, dict[str, float | int]] = {}
    for group, rows in groups.items():
        y = rows["label"].to_numpy()
        if len(set(y)) < 2:
            continue
        rnn_auc, vader_auc = roc_auc(y, rows["rnn"]), roc_auc(y, rows["vader"])
        rnn_cm = confusion(y, rows["rnn"].to_numpy(), threshold)
        vader_cm = confusion(y, rows["vader"].to_numpy(), VADER_THRESHOLD)
        out[group] = {"n": len(rows), "rnn_auc": rnn_auc, "vader_auc": vader_auc,
                      "auc_diff": rnn_auc - vader_auc, "rnn_tpr": rnn_cm.tpr,
                      "rnn_fpr": rnn_cm.fpr, "rnn_accuracy": rnn_cm.accuracy,
                      "vader_tpr": vader_cm.tpr, "vader_fpr": vader_cm.fpr,
                      "vader_accuracy": vader_cm.accuracy,
                      "rnn_tp": rnn_cm.tp, "rnn_fp": rnn_cm.fp, "rnn_tn": rnn_cm.tn,
                      "rnn_fn": rnn_cm.fn}
    return out


def _sentiment_report(folder: Path, *, test: pd.DataFrame,
                      per_source: dict[str, dict[str, float | int]],
                      config: SentimentConfig) -> None:
    groups = list(per_source)
    fig, axes = figure(3, 2, size=(13, 8.5))
    for ax, group in zip(axes.flat, groups, strict=False):
        rows = test if group == "pooled" else test[test["source"] == group]
        for model, color in (("rnn", "tab:orange"), ("vader", "tab:blue")):
            fpr, tpr, _ = roc_curve(rows["label"].to_numpy(), rows[model].to_numpy())
            ax.plot(fpr, tpr, color=color,
                    label=f"{model.upper()} AUC {per_source[group][f'{model}_auc']:.3f}")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
        ax.set_title(f"{group} (n={per_source[group]['n']})")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.suptitle("ROC curves on the same held-out texts: RNN vs VADER")
    fig.tight_layout()
    fig.savefig(folder / "roc_curves.png", dpi=90)
    auc_rows = [{"set": g, "n": r["n"], "RNN AUC": r["rnn_auc"], "VADER AUC": r["vader_auc"],
                 "RNN - VADER": r["auc_diff"]} for g, r in per_source.items()]
    cm_rows = [{"set": g, "TP": r["rnn_tp"], "FP": r["rnn_fp"], "TN": r["rnn_tn"],
                "FN": r["rnn_fn"], "TPR": r["rnn_tpr"], "FPR": r["rnn_fpr"],
                "accuracy": r["rnn_accuracy"], "VADER TPR": r["vader_tpr"],
                "VADER FPR": r["vader_fpr"]} for g, r in per_source.items()]
    write_report(
        folder, title="Sentiment RNN vs VADER — held-out texts",
        summary={"per_source": per_source, "threshold": config.threshold,
                 "vader_threshold": VADER_THRESHOLD, "config": asdict(config)},
        sections=[
            ("ROC AUC on the same texts", markdown_table(
                auc_rows, ["set", "n", "RNN AUC", "VADER AUC", "RNN - VADER"])),
            (f"Confusion matrix of the RNN at P(positive) >= {config.threshold} "
             f"(VADER at compound >= {VADER_THRESHOLD})", markdown_table(
                 cm_rows, ["set", "TP", "FP", "TN", "FN", "TPR", "FPR", "accuracy",
                           "VADER TPR", "VADER FPR"])),
        ],
        images=["roc_curves.png"])
