"""The one loader: a real model saved, reloaded and giving the same predictions; unsafe
models refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tickcast.models.artifacts import ArtifactError, write_artifact
from tickcast.models.backend import keras
from tickcast.models.predictors import Forecaster, SentimentRNN, load_predictor
from tickcast.training.data import gold_closes, sample_texts
from tickcast.training.prices import PriceResult
from tickcast.training.sentiment import SentimentResult


def test_forecaster_reloads_with_identical_predictions(tiny_forecaster: PriceResult) -> None:
    predictor = load_predictor(tiny_forecaster.path)
    assert isinstance(predictor, Forecaster)
    closes = gold_closes()["close"].to_numpy()[-300:]
    windows = np.lib.stride_tricks.sliding_window_view(closes, 10)
    fast = predictor.predict_prices(windows)
    # Reference: Keras' own predict on the model file, through the same preprocessing.
    reference_model = keras().saving.load_model(tiny_forecaster.path / "model.keras")
    slow = predictor.scaler.prices(windows, reference_model.predict(
        predictor.scaler.inputs(windows), verbose=0))
    assert np.max(np.abs(fast - slow)) <= 1e-4
    assert np.all(np.abs(fast / windows[:, -1] - 1) < 0.2)  # sane next-day moves


def test_sentiment_reloads_with_identical_scores(tiny_sentiment: SentimentResult) -> None:
    predictor = load_predictor(tiny_sentiment.path)
    assert isinstance(predictor, SentimentRNN)
    assert predictor.name == "rnn"
    assert predictor.version == tiny_sentiment.manifest.version
    texts = list(sample_texts()["text"].head(64))
    fast = np.array(predictor.score_batch(texts))
    reference_model = keras().saving.load_model(tiny_sentiment.path / "model.keras")
    slow = reference_model.predict(predictor.vocabulary.encode_batch(texts), verbose=0)
    assert np.max(np.abs(fast - slow.reshape(-1))) <= 1e-4
    assert np.all((fast >= 0) & (fast <= 1))
    assert predictor.score_batch([]) == []


def test_wrong_window_shape_is_a_clear_error(tiny_forecaster: PriceResult) -> None:
    predictor = load_predictor(tiny_forecaster.path)
    with pytest.raises(ValueError, match=r"shape \(n, 10\)"):
        predictor.predict_prices(np.ones((2, 7)))  # type: ignore[union-attr]


def test_a_lambda_layer_is_refused_even_with_valid_checksums(tmp_path: Path) -> None:
    k = keras()
    inputs = k.Input(shape=(10, 1))
    outputs = k.layers.Dense(1)(k.layers.Flatten()(k.layers.Lambda(lambda x: x * 2)(inputs)))
    model = k.Model(inputs, outputs)

    def write(folder: Path) -> None:
        model.save(folder / "model.keras")
        (folder / "preprocessing.json").write_text(json.dumps({"window": 10, "scale": 0.01}))

    path, _ = write_artifact(tmp_path / "evil", name="evil", kind="forecaster", version="v1",
                             write_files=write, metrics={}, input_spec={}, data={})
    with pytest.raises(ArtifactError, match="could not be loaded safely"):
        load_predictor(path)


def test_preprocessing_that_does_not_fit_the_model_is_refused(
        tiny_forecaster: PriceResult, tmp_path: Path) -> None:
    def write(folder: Path) -> None:
        shutil.copy(tiny_forecaster.path / "model.keras", folder / "model.keras")
        (folder / "preprocessing.json").write_text(json.dumps({"window": 30, "scale": 0.01}))

    path, _ = write_artifact(tmp_path / "m", name="m", kind="forecaster", version="v1",
                             write_files=write, metrics={}, input_spec={}, data={})
    with pytest.raises(ArtifactError, match="does not match the preprocessing"):
        load_predictor(path)


def test_rnn_scores_texts_cut_to_their_length_as_at_full_width() -> None:
    """score_ids scores a batch cut to its longest text, split by length where that saves
    steps, instead of at max_len (64): the masked padding makes that exact; checked against
    Keras on the full-width ids."""
    from types import SimpleNamespace

    from tickcast.models.architectures import build_sentiment_rnn
    from tickcast.models.preprocessing import Vocabulary

    keras().utils.set_random_seed(3)
    vocabulary = Vocabulary(tokens=tuple(f"w{i}" for i in range(50)), max_len=64)
    model = build_sentiment_rnn(vocab_size=vocabulary.size, max_len=64, embed_dim=8, units=4)
    rnn = SentimentRNN(model, vocabulary, SimpleNamespace(version="t"))  # type: ignore[arg-type]
    assert rnn.buckets == (16, 32, 64)
    widths: list[int] = []
    call = rnn._call
    rnn._call = lambda x: (widths.append(x.shape[1]), call(x))[1]  # type: ignore[method-assign]
    rng = np.random.default_rng(0)

    def texts(*lengths: int) -> list[str]:
        return [" ".join(f"w{t}" for t in rng.integers(0, 60, n)) for n in lengths]

    small = texts(0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 80, *rng.integers(0, 70, 40))
    large = texts(*rng.integers(0, 17, 300), *rng.integers(17, 33, 200), 40, 50)
    for batch, expected_widths in ((small, [64]), (large, [16, 32, 50]),
                                   (texts(3, 7), [7]), (texts(0), [1])):
        widths.clear()
        ids = vocabulary.encode_batch(batch)
        reference = model.predict(ids, verbose=0).reshape(-1)
        assert np.max(np.abs(rnn.score_ids(ids) - reference)) <= 1e-6
        assert widths == expected_widths  # steps run per call
    assert rnn.score_ids(np.zeros((0, 64), dtype=np.int32)).shape == (0,)
