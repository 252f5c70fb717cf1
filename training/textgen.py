"""``tickcast train textgen``: a character LSTM language model for a synthetic text feed.

Texts (whitespace normalised, exact duplicates dropped) are split at random into train,
validation and test texts. The model trains on the training texts joined by the boundary id
and cut into windows; validation loss stops it early. The held-out texts are then scored one by
one — every character and the end of each text, from an empty state — by the LSTM, an add-one
unigram and an interpolated Kneser-Ney bigram fitted on the same training texts: the report
gives the three perplexities, the generation speed and samples at a few temperatures.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickcast.models.architectures import build_char_lm
from tickcast.models.artifacts import (
    MODEL_FILE,
    PREPROCESSING_FILE,
    Manifest,
    new_version,
    write_artifact,
)
from tickcast.models.backend import keras, set_seed
from tickcast.models.preprocessing import BOUNDARY, CharVocabulary, normalize_text
from tickcast.models.textgen import TextGenerator
from tickcast.training.data import DataError, fingerprint
from tickcast.training.evaluate import perplexity
from tickcast.training.ngrams import BigramLM, UnigramLM
from tickcast.training.progress import keras_verbose
from tickcast.training.reports import markdown_table, write_report

__all__ = [
    "TextGenConfig",
    "TextGenResult",
    "lstm_log_probs",
    "split_corpus",
    "train_textgen",
    "training_windows",
]

SAMPLE_PROMPTS = ("", "Gold prices")


@dataclass(frozen=True, slots=True)
class TextGenConfig:
    embed_dim: int = 32
    units: tuple[int, ...] = (256,)
    dropout: float = 0.1
    seq_len: int = 100
    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 1e-2
    patience: int = 1
    min_char_count: int = 10
    """Rarer characters share the unknown id (never generated)."""
    val_frac: float = 0.05
    test_frac: float = 0.05
    kn_discount: float = 0.75
    seed: int = 42
    max_train_chars: int | None = None
    speed_length: int = 300
    speed_batch: int = 32

    @classmethod
    def quick(cls) -> TextGenConfig:
        """Small and fast (tests, ``make demo``; seconds on the 1,200-text sample): same
        pipeline, a 64-unit LSTM."""
        return cls(embed_dim=16, units=(64,), seq_len=64, epochs=6, batch_size=64, patience=2,
                   min_char_count=2, speed_length=100, speed_batch=8)


@dataclass(frozen=True, slots=True)
class TextGenResult:
    path: Path
    manifest: Manifest
    metrics: dict[str, float]
    seconds: float


def split_corpus(texts: Sequence[str], *, val_frac: float, test_frac: float, seed: int
                 ) -> dict[str, list[str]]:
    """Normalised, de-duplicated, non-empty texts split at random into train/val/test."""
    unique = list(dict.fromkeys(t for t in (normalize_text(str(x)).strip() for x in texts) if t))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_test, n_val = round(len(unique) * test_frac), round(len(unique) * val_frac)
    if len(unique) - n_test - n_val < 1 or min(n_test, n_val) < 1:
        raise DataError(f"{len(unique)} distinct texts are too few for a train/validation/"
                         "test split")
    pick = [unique[i] for i in order]
    return {"test": pick[:n_test], "val": pick[n_test:n_test + n_val],
            "train": pick[n_test + n_val:]}


def training_windows(texts: Sequence[str], vocab: CharVocabulary, *, seq_len: int,
                     max_chars: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The texts joined by boundaries (``B t1 B t2 B ...``) and cut into non-overlapping
    windows: inputs ``(n, seq_len)`` and the next id at every position."""
    stream = [BOUNDARY]
    for text in texts:
        stream += [*vocab.encode(text), BOUNDARY]
    ids = np.asarray(stream[: max_chars + 1] if max_chars else stream, dtype=np.int32)
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise DataError(f"{len(ids)} characters make no window of {seq_len}: too little text")
    return (ids[: n * seq_len].reshape(n, seq_len),
            ids[1: n * seq_len + 1].reshape(n, seq_len))


def lstm_log_probs(model: Any, sequences: Sequence[Sequence[int]], *,
                   batch_size: int = 64) -> np.ndarray:
    """``log P`` of every id after the first of each sequence, each scored from an empty
    state; sequences are batched by length and right-padded (the model is causal, so padding
    after a sequence never changes its scores)."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out: list[np.ndarray] = [np.zeros(0)] * len(sequences)
    for start in range(0, len(order), batch_size):
        batch = [sequences[i] for i in order[start:start + batch_size]]
        width = max(len(s) for s in batch)
        padded = np.full((len(batch), width), BOUNDARY, dtype=np.int32)
        for row, seq in enumerate(batch):
            padded[row, :len(seq)] = seq
        logits = np.asarray(model(padded[:, :-1], training=False), dtype=np.float64)
        peak = logits.max(axis=-1, keepdims=True)
        log_z = peak[..., 0] + np.log(np.exp(logits - peak).sum(axis=-1))
        picked = np.take_along_axis(logits, padded[:, 1:, None], axis=-1)[..., 0] - log_z
        for row, i in enumerate(order[start:start + batch_size]):
            out[i] = picked[row, :len(sequences[i]) - 1]
    return np.concatenate(out) if out else np.zeros(0)


def train_textgen(texts: Sequence[str], *, store_dir: Path, name: str = "textgen-lstm",
                  config: TextGenConfig = TextGenConfig(), source: str = "hutto_ICWSM_2014",
                  progress: bool = True) -> TextGenResult:
    """Train, evaluate against n-gram baselines and write one artifact under ``store_dir/name``."""
    started = time.monotonic()
    split = split_corpus(texts, val_frac=config.val_frac, test_frac=config.test_frac,
                         seed=config.seed)
    vocab = CharVocabulary.fit(split["train"], min_count=config.min_char_count)
    x_train, y_train = training_windows(split["train"], vocab, seq_len=config.seq_len,
                                        max_chars=config.max_train_chars)
    x_val, y_val = training_windows(split["val"], vocab, seq_len=config.seq_len)

    set_seed(config.seed)
    model = build_char_lm(vocab_size=vocab.size, embed_dim=config.embed_dim,
                          units=config.units, dropout=config.dropout,
                          learning_rate=config.learning_rate)
    fit_started = time.monotonic()
    history = model.fit(
        x_train, y_train, validation_data=(x_val, y_val), epochs=config.epochs,
        batch_size=config.batch_size, shuffle=True, verbose=keras_verbose(progress),
        callbacks=[keras().callbacks.EarlyStopping(monitor="val_loss",
                                                   patience=config.patience,
                                                   restore_best_weights=True)])
    fit_seconds = time.monotonic() - fit_started

    # The n-grams see exactly the characters the LSTM trained on.
    train_chars = int(x_train.size)
    train_sequences = _as_sequences(x_train, y_train)
    metrics: dict[str, float] = {}
    baselines = {"unigram": UnigramLM.fit(train_sequences, vocab_size=vocab.size),
                 "bigram": BigramLM.fit(train_sequences, vocab_size=vocab.size,
                                        discount=config.kn_discount)}
    for part in ("val", "test"):
        sequences = [vocab.encode_text(t) for t in split[part]]
        metrics[f"{part}_ppl_lstm"] = perplexity(lstm_log_probs(model, sequences))
        for label, lm in baselines.items():
            metrics[f"{part}_ppl_{label}"] = perplexity(lm.log_probs(sequences))
        metrics[f"{part}_chars"] = float(sum(len(s) - 1 for s in sequences))
    metrics["test_bits_per_char_lstm"] = float(np.log2(metrics["test_ppl_lstm"]))

    generator = TextGenerator(model, vocab)
    speed = _generation_speed(generator, length=config.speed_length, batch=config.speed_batch)
    metrics.update(speed)
    metrics.update({"epochs_run": float(len(history.history["loss"])),
                    "fit_seconds": fit_seconds, "train_chars": float(train_chars),
                    "vocab_size": float(vocab.size)})
    samples = _samples(generator, seed=config.seed)

    def write_files(folder: Path) -> None:
        model.save(folder / MODEL_FILE)
        (folder / PREPROCESSING_FILE).write_text(json.dumps(vocab.to_dict()), encoding="utf-8")
        _textgen_report(folder, metrics=metrics, config=config, samples=samples,
                        history=history.history, source=source)

    frame = pd.DataFrame({"text": list(texts)})
    path, manifest = write_artifact(
        store_dir / name, name=name, kind="textgen", version=new_version(),
        write_files=write_files, metrics=metrics,
        input_spec={"shape": [None, None], "dtype": "int32", "tokens": "characters",
                    "vocab_size": vocab.size, "boundary_id": BOUNDARY,
                    "normalisation": "tickcast.models.preprocessing.normalize_text"},
        data={"source": source, "rows": len(frame), "fingerprint": fingerprint(frame),
              "split_seed": config.seed, "sizes": {k: len(v) for k, v in split.items()},
              "config": {**asdict(config), "units": list(config.units)}})
    return TextGenResult(path, manifest, metrics, time.monotonic() - started)


def _as_sequences(x: np.ndarray, y: np.ndarray) -> list[list[int]]:
    """Training windows as scored sequences: each window's first id, then its targets."""
    return np.concatenate([x[:, :1], y], axis=1).tolist()


def _generation_speed(generator: TextGenerator, *, length: int, batch: int
                      ) -> dict[str, float]:
    """Generated characters per second for one text, and for ``batch`` texts at once."""
    generator.generate([""], length=3, seed=0)  # trace the step function once
    out = {"gen_threads": float(os.cpu_count() or 1)}
    for n, key in ((1, "gen_chars_per_s_batch1"), (batch, "gen_chars_per_s_batch")):
        began = time.perf_counter()
        generator.generate([""] * n, length=length, seed=0)
        out[key] = n * length / (time.perf_counter() - began)
    out["gen_batch"] = float(batch)
    return out


def _samples(generator: TextGenerator, *, seed: int) -> list[dict[str, Any]]:
    rows = []
    for temperature in (0.5, 0.8, 1.0):
        texts = generator.generate([p for p in SAMPLE_PROMPTS for _ in range(2)], length=200,
                                   temperature=temperature, seed=seed, stop_at_end=True)
        rows += [{"temperature": temperature, "text": t} for t in texts]
    return rows


def _textgen_report(folder: Path, *, metrics: dict[str, float], config: TextGenConfig,
                    samples: list[dict[str, Any]], history: dict[str, list[float]],
                    source: str) -> None:
    ppl_rows = [{"model": label, **{part: metrics[f"{part}_ppl_{key}"]
                                    for part in ("val", "test")}}
                for key, label in (("lstm", "LSTM"), ("bigram", "bigram (Kneser-Ney)"),
                                   ("unigram", "unigram (add-one)"))]
    speed = [{"texts at once": 1, "chars/s": f"{metrics['gen_chars_per_s_batch1']:,.0f}"},
             {"texts at once": int(metrics["gen_batch"]),
              "chars/s": f"{metrics['gen_chars_per_s_batch']:,.0f}"}]
    listing = "\n".join(f"T={s['temperature']}: {s['text']}" for s in samples)
    write_report(
        folder, title="Character LSTM text generator — held-out texts",
        summary={"metrics": metrics, "samples": samples, "history": history,
                 "config": {**asdict(config), "units": list(config.units)}, "source": source},
        sections=[
            (f"Perplexity per character on held-out texts ({int(metrics['val_chars'])} "
             f"validation, {int(metrics['test_chars'])} test characters incl. text ends)",
             markdown_table(ppl_rows, ["model", "val", "test"])),
            (f"Generation speed ({int(metrics['gen_threads'])} CPU threads, "
             f"{config.speed_length} characters per text)",
             markdown_table(speed, ["texts at once", "chars/s"])),
            ("Samples (unlabelled; the second prompt is given)", f"```\n{listing}\n```"),
        ])
