"""``tickcast train sentiment``: the RNN sentiment classifier, evaluated beside VADER.

Split stratified by source set and label (train / validation / test); the vocabulary is fitted
on the training texts only and saved in the artifact. The RNN reads the tokens (with VADER's
word valences as frozen features) and, joined after the recurrent layer, VADER's scores of the
whole text (``neg, neu, pos, compound``: what VADER's rules make of those valences).

With pre-trained word vectors, the embedding starts from them and trains in two phases: frozen
while the recurrent layer and the head learn (early stopping on validation AUC), then trained
with everything else at a lower learning rate, kept only if validation AUC improves. A few
thousand texts per source are too few to learn word meanings from: a freely learned embedding
fits the training texts within one or two epochs and then loses on the sources it sees least.

The test texts of every source are scored by the RNN and by VADER (compound), and both are
evaluated on exactly the same texts: ROC AUC with the DeLong interval of the difference, the
confusion matrix, and calibration (reliability diagram, Brier score; VADER's compound rescaled
to ``(c + 1) / 2``). With ``external`` texts (labelled sentences from sources the model never
trained on), the same comparison is made on them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickcast.models.architectures import build_sentiment_rnn, compile_sentiment_rnn
from tickcast.models.artifacts import (
    MODEL_FILE,
    PREPROCESSING_FILE,
    Manifest,
    new_version,
    write_artifact,
)
from tickcast.models.backend import keras, set_seed
from tickcast.models.preprocessing import VADER_SIDE_INPUTS, Vocabulary, tokenize, vader_scores
from tickcast.streams.evaluation.paired_auc import delong
from tickcast.training.data import WordVectors, fingerprint
from tickcast.training.evaluate import confusion, roc_auc, roc_curve
from tickcast.training.progress import keras_verbose
from tickcast.training.reports import figure, markdown_table, write_report

__all__ = [
    "VADER_THRESHOLD",
    "SentimentConfig",
    "SentimentResult",
    "brier",
    "model_inputs",
    "reliability",
    "split_texts",
    "train_sentiment",
    "vader_probability",
]

VADER_THRESHOLD = 0.05  # VADER's documented cut-off: compound >= 0.05 is positive


@dataclass(frozen=True, slots=True)
class SentimentConfig:
    max_tokens: int = 20_000
    max_len: int = 64
    embed_dim: int = 64
    units: int = 48
    dropout: float = 0.3
    epochs: int = 20
    """At most this many epochs (with word vectors: with the embedding frozen)."""
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
    side_inputs: tuple[str, ...] = VADER_SIDE_INPUTS
    """VADER's scores of the text joined after the recurrent layer (empty: tokens only)."""
    head_units: int = 16
    """Width of the ReLU layer over the recurrent features and the side inputs."""
    learning_rate: float = 2e-3
    fine_tune_epochs: int = 4
    """With word vectors: at most this many epochs more with the embedding trained too."""
    fine_tune_learning_rate: float = 2e-4

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


def model_inputs(vocab: Vocabulary, texts: Sequence[str], analyzer: Any
                 ) -> tuple[Any, np.ndarray]:
    """``(model inputs, VADER's (n, 4) scores)`` of ``texts`` for training and evaluation: the
    token ids, and VADER's scores in the columns ``vocab.side_inputs`` names (the serving path
    builds the same from the same :func:`~tickcast.models.preprocessing.vader_scores`)."""
    vader = vader_scores(texts, analyzer)
    ids = vocab.encode_batch(texts)
    return ([ids, vader[:, vocab.side_columns]] if vocab.side_inputs else ids), vader


def train_sentiment(frame: pd.DataFrame, *, store_dir: Path, name: str = "sentiment-rnn",
                    config: SentimentConfig = SentimentConfig(), source: str = "hutto_ICWSM_2014",
                    progress: bool = True, external: pd.DataFrame | None = None,
                    word_vectors: WordVectors | None = None) -> SentimentResult:
    """Train, evaluate against VADER and write one versioned artifact under ``store_dir/name``.

    ``word_vectors``: pre-trained vectors the embedding starts from (its width is theirs, not
    ``config.embed_dim``); without them the embedding is learned from the training texts.

    ``external``: labelled texts (``source, text, label``) from sources not in ``frame``,
    scored by both models after training; a text whose tokens are those of a text in
    ``frame`` (case, spacing and punctuation aside) is left out, so the check is on texts
    the model never saw.
    """
    from tickcast.streams.sentiment.vader import FastVader  # the scores the worker computes

    started = time.monotonic()
    if "source" not in frame.columns:
        frame = frame.assign(source="csv")
    frame = frame[["id", "source", "text", "label"]].dropna()
    split = split_texts(frame, val_frac=config.val_frac, test_frac=config.test_frac,
                        seed=config.seed)
    if config.max_train_texts:
        split["train"] = split["train"].head(config.max_train_texts)
    train, val = split["train"], split["val"]
    vocab = replace(Vocabulary.fit(train["text"], max_tokens=config.max_tokens,
                                   max_len=config.max_len),
                    side_inputs=tuple(config.side_inputs))
    analyzer = FastVader()

    def inputs(texts: list[str]) -> tuple[Any, np.ndarray]:
        return model_inputs(vocab, texts, analyzer)

    table, found = (word_vectors.table(vocab.tokens) if word_vectors is not None
                    else (None, 0))
    set_seed(config.seed)
    model = build_sentiment_rnn(vocab_size=vocab.size, max_len=vocab.max_len,
                                embed_dim=config.embed_dim, units=config.units,
                                dropout=config.dropout,
                                lexicon=vocab.lexicon_features() if config.vader_lexicon
                                else None, side_inputs=len(vocab.side_inputs),
                                head_units=config.head_units, embeddings=table,
                                learning_rate=config.learning_rate)
    counts = train["source"].map(train["source"].value_counts())
    weights = (len(train) / (counts * train["source"].nunique())).to_numpy(np.float32)
    x_train, y_train = inputs(list(train["text"]))[0], train["label"].to_numpy(np.float32)
    validation = (inputs(list(val["text"]))[0], val["label"].to_numpy(np.float32))

    def fit(epochs: int) -> list[float]:
        """Fit with early stopping on validation AUC (best weights restored); the AUCs."""
        stop = keras().callbacks.EarlyStopping(monitor="val_auc", mode="max",
                                               patience=config.patience,
                                               restore_best_weights=True)
        history = model.fit(x_train, y_train,
                            sample_weight=weights if config.balance_sources else None,
                            validation_data=validation, epochs=epochs,
                            batch_size=config.batch_size, verbose=keras_verbose(progress),
                            callbacks=[stop])
        return [float(v) for v in history.history["val_auc"]]

    first = fit(config.epochs)
    tuned: list[float] = []
    fine_tune = "off"
    if table is not None and config.fine_tune_epochs:
        frozen = model.get_weights()
        embedding = model.get_layer("embedding")
        embedding.trainable = True
        compile_sentiment_rnn(model, config.fine_tune_learning_rate)
        tuned = fit(config.fine_tune_epochs)
        fine_tune = "kept" if _best(tuned) > _best(first) else "discarded"
        if fine_tune == "discarded":  # back to the frozen phase's best, as it was trained
            model.set_weights(frozen)
            embedding.trainable = False
            compile_sentiment_rnn(model, config.learning_rate)

    def scored(rows: pd.DataFrame) -> pd.DataFrame:
        rows = rows.copy()
        x, vader = inputs(list(rows["text"]))
        rows["rnn"] = np.asarray(model.predict(x, batch_size=512, verbose=0)).reshape(-1)
        rows["vader"] = vader[:, VADER_SIDE_INPUTS.index("vader_compound")].astype(np.float64)
        return rows

    test = scored(split["test"])
    per_source = _evaluate(test, config.threshold)
    metrics = {f"{group}_{key}": value for group, row in per_source.items()
               for key, value in row.items() if isinstance(value, float)}
    outside: pd.DataFrame | None = None
    per_external: dict[str, dict[str, float | int]] = {}
    external_rows: pd.DataFrame | None = None
    if external is not None:
        seen = set(frame["text"].map(_normalized))
        kept = external[~external["text"].map(_normalized).isin(seen)]
        external_rows = kept[["source", "text", "label"]].reset_index(drop=True)
        outside = scored(external_rows)
        per_external = _evaluate(outside, config.threshold)
        if "pooled" in per_external:
            per_external["pooled"]["left_out_seen"] = len(external) - len(kept)
        metrics |= {f"external_{group}_{key}": value for group, row in per_external.items()
                    for key, value in row.items() if isinstance(value, float)}
    training: dict[str, Any] = {
        "word_vectors": None if word_vectors is None else {
            "source": word_vectors.source, "dim": word_vectors.dim, "tokens_found": found,
            "tokens": len(vocab.tokens)},
        "epochs": len(first), "val_auc": _best(first), "fine_tune": fine_tune,
        "fine_tune_epochs": len(tuned), "fine_tune_val_auc": _best(tuned) if tuned else None}
    metrics["epochs_run"] = float(len(first))
    metrics["vocab_size"] = float(vocab.size)
    if word_vectors is not None:
        metrics["fine_tune_epochs_run"] = float(len(tuned) if fine_tune == "kept" else 0)
        metrics["word_vector_coverage"] = found / max(len(vocab.tokens), 1)

    def write_files(folder: Path) -> None:
        model.save(folder / MODEL_FILE)
        (folder / PREPROCESSING_FILE).write_text(json.dumps(vocab.to_dict()), encoding="utf-8")
        _sentiment_report(folder, test=test, per_source=per_source, config=config,
                          outside=outside, per_external=per_external, training=training)

    path, manifest = write_artifact(
        store_dir / name, name=name, kind="sentiment", version=new_version(),
        write_files=write_files, metrics=metrics,
        input_spec={"shape": [None, vocab.max_len], "dtype": "int32",
                    "tokenizer": "tickcast.models.preprocessing.tokenize",
                    "vocab_size": vocab.size, "side_inputs": list(vocab.side_inputs)},
        data={"source": source, "rows": len(frame),
              "fingerprint": fingerprint(frame), "split_seed": config.seed,
              "sizes": {k_: len(v) for k_, v in split.items()},
              "word_vectors": training["word_vectors"],
              "external": None if external_rows is None else {
                  "sources": sorted(external_rows["source"].unique()),
                  "rows": len(external_rows), "fingerprint": fingerprint(external_rows)},
              "config": asdict(config)})
    return SentimentResult(path, manifest, metrics, time.monotonic() - started)


def _normalized(text: str) -> tuple[str, ...]:
    """What the model reads of a text: its tokens (case, spacing and punctuation aside)."""
    return tuple(tokenize(str(text)))


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean squared difference between the predicted probability and the 0/1 outcome."""
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean((np.asarray(probabilities, dtype=np.float64) - y) ** 2))


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
                ) -> list[dict[str, float | int]]:
    """Per equal-width probability bin: the texts in it, their mean predicted probability and
    the share of them that is positive (empty bins left out)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    which = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], p)
    out: list[dict[str, float | int]] = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            out.append({"bin": b, "n": int(inside.sum()), "predicted": float(p[inside].mean()),
                        "observed": float(y[inside].mean())})
    return out


def vader_probability(compound: np.ndarray) -> np.ndarray:
    """VADER's compound in ``[-1, 1]`` rescaled to ``[0, 1]``, as the worker reports it."""
    return (np.asarray(compound, dtype=np.float64) + 1.0) / 2.0


def _evaluate(test: pd.DataFrame, threshold: float) -> dict[str, dict[str, float | int]]:
    groups = {"pooled": test, **{s: g for s, g in test.groupby("source", sort=True)}}
    out: dict[str, dict[str, float | int]] = {}
    for group, rows in groups.items():
        y = rows["label"].to_numpy()
        if min(int(y.sum()), int(len(y) - y.sum())) < 2:
            continue
        rnn, vader = rows["rnn"].to_numpy(), rows["vader"].to_numpy()
        paired = delong(rnn, vader, y)
        rnn_cm = confusion(y, rnn, threshold)
        vader_cm = confusion(y, vader, VADER_THRESHOLD)
        out[group] = {"n": len(rows), "rnn_auc": roc_auc(y, rnn), "vader_auc": roc_auc(y, vader),
                      "auc_diff": paired.diff, "auc_diff_low": paired.low,
                      "auc_diff_high": paired.high,
                      "rnn_brier": brier(y, rnn), "vader_brier": brier(y, vader_probability(vader)),
                      "rnn_tpr": rnn_cm.tpr,
                      "rnn_fpr": rnn_cm.fpr, "rnn_accuracy": rnn_cm.accuracy,
                      "vader_tpr": vader_cm.tpr, "vader_fpr": vader_cm.fpr,
                      "vader_accuracy": vader_cm.accuracy,
                      "rnn_tp": rnn_cm.tp, "rnn_fp": rnn_cm.fp, "rnn_tn": rnn_cm.tn,
                      "rnn_fn": rnn_cm.fn}
    return out


def _best(aucs: list[float]) -> float:
    """The best finite validation AUC of a phase (``-inf`` if it had none: a phase that
    diverged to NaN never wins)."""
    return max((v for v in aucs if math.isfinite(v)), default=-math.inf)


def _training_text(training: dict[str, Any]) -> str:
    vectors = training["word_vectors"]
    if vectors is None:
        return (f"Embedding learned from the training texts; {training['epochs']} epochs "
                "(early stopping on validation AUC, best epoch kept).")
    status = training["fine_tune"]
    if status == "off":
        then = "no fine-tuning (turned off)."
    elif status == "kept":
        then = (f"{training['fine_tune_epochs']} with it trained too (best kept: validation "
                f"AUC {training['val_auc']:.4f} -> {training['fine_tune_val_auc']:.4f}).")
    else:
        then = (f"fine-tuning not kept (validation AUC {training['fine_tune_val_auc']:.4f}, "
                f"not above {training['val_auc']:.4f}).")
    return (f"Embedding started from pre-trained word vectors ({vectors['source']}, "
            f"{vectors['dim']}-d; {vectors['tokens_found']:,} of the vocabulary's "
            f"{vectors['tokens']:,} tokens have one). {training['epochs']} epochs with it "
            f"frozen (best kept), then {then}")


def _auc_rows(per_source: dict[str, dict[str, float | int]]) -> list[dict[str, Any]]:
    return [{"set": g, "n": r["n"], "RNN AUC": r["rnn_auc"], "VADER AUC": r["vader_auc"],
             "RNN - VADER": r["auc_diff"],
             "95 % interval (DeLong)": f"[{r['auc_diff_low']:+.3f}, {r['auc_diff_high']:+.3f}]"}
            for g, r in per_source.items()]


_AUC_COLUMNS = ["set", "n", "RNN AUC", "VADER AUC", "RNN - VADER", "95 % interval (DeLong)"]


def _sentiment_report(folder: Path, *, test: pd.DataFrame,
                      per_source: dict[str, dict[str, float | int]],
                      config: SentimentConfig, outside: pd.DataFrame | None = None,
                      per_external: dict[str, dict[str, float | int]] | None = None,
                      training: dict[str, Any] | None = None) -> None:
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

    y = test["label"].to_numpy()
    curves = {"RNN": reliability(y, test["rnn"].to_numpy()),
              "VADER (compound + 1) / 2": reliability(y, vader_probability(test["vader"]))}
    fig, axes = figure(1, 1, size=(6.5, 6))
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8, label="calibrated")
    for (label, curve), color in zip(curves.items(), ("tab:orange", "tab:blue"), strict=True):
        ax.plot([b["predicted"] for b in curve], [b["observed"] for b in curve], marker="o",
                color=color, label=f"{label}, Brier "
                f"{per_source['pooled']['rnn_brier' if label == 'RNN' else 'vader_brier']:.3f}")
    ax.set_xlabel("predicted P(positive), 10 bins")
    ax.set_ylabel("share of texts that are positive")
    ax.set_title(f"Reliability on the held-out texts (n={len(test)})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(folder / "reliability.png", dpi=90)

    cm_rows = [{"set": g, "TP": r["rnn_tp"], "FP": r["rnn_fp"], "TN": r["rnn_tn"],
                "FN": r["rnn_fn"], "TPR": r["rnn_tpr"], "FPR": r["rnn_fpr"],
                "accuracy": r["rnn_accuracy"], "VADER TPR": r["vader_tpr"],
                "VADER FPR": r["vader_fpr"]} for g, r in per_source.items()]
    brier_rows = [{"set": g, "n": r["n"], "RNN Brier": r["rnn_brier"],
                   "VADER Brier": r["vader_brier"]} for g, r in per_source.items()]
    sections = [
        ("ROC AUC on the same texts", markdown_table(_auc_rows(per_source), _AUC_COLUMNS)),
        (f"Confusion matrix of the RNN at P(positive) >= {config.threshold} "
         f"(VADER at compound >= {VADER_THRESHOLD})", markdown_table(
             cm_rows, ["set", "TP", "FP", "TN", "FN", "TPR", "FPR", "accuracy",
                       "VADER TPR", "VADER FPR"])),
        ("Calibration: Brier score (lower is better; VADER as (compound + 1) / 2)",
         markdown_table(brier_rows, ["set", "n", "RNN Brier", "VADER Brier"])),
    ]
    if training is not None:
        sections.append(("Training", _training_text(training)))
    if per_external:
        left_out = per_external.get("pooled", {}).get("left_out_seen", 0)
        sections.append((
            "Texts from sources the model never trained on (Kotzias et al. 2015: Amazon, "
            f"IMDb, Yelp sentences; {left_out} that also appear in the training corpus left "
            "out)", markdown_table(_auc_rows(per_external), _AUC_COLUMNS)))
    write_report(
        folder, title="Sentiment RNN vs VADER — held-out texts",
        summary={"per_source": per_source, "external": per_external or None,
                 "reliability": curves, "threshold": config.threshold,
                 "vader_threshold": VADER_THRESHOLD, "side_inputs": list(config.side_inputs),
                 "training": training, "config": asdict(config)},
        sections=sections, images=["roc_curves.png", "reliability.png"])
