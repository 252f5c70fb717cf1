"""The one loader: a real model saved, reloaded and giving the same predictions; unsafe
models refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tickcast.models.artifacts import ArtifactError, write_artifact
from tickcast.models.backend import keras
from tickcast.models.predictors import Forecaster, SentimentRNN, load_predictor
from tickcast.models.preprocessing import VADER_SIDE_INPUTS
from tickcast.training.data import gold_closes, sample_texts
from tickcast.training.prices import PriceResult
from tickcast.training.sentiment import SentimentResult, model_inputs


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
    inputs, _ = model_inputs(predictor.vocabulary, texts, SentimentIntensityAnalyzer())
    slow = reference_model.predict(inputs, verbose=0)
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


@pytest.mark.parametrize("side", [(), VADER_SIDE_INPUTS, ("vader_compound", "vader_neg")])
def test_rnn_scores_texts_cut_to_their_length_as_at_full_width(side: tuple[str, ...]) -> None:
    """score_ids scores a batch cut to its longest text, split by length where that saves
    steps, instead of at max_len (64): the masked padding makes that exact; checked against
    Keras on the full-width ids (and, with side inputs, the columns the model names, in its
    order, from VADER's four scores)."""
    from types import SimpleNamespace

    from tickcast.models.architectures import build_sentiment_rnn
    from tickcast.models.preprocessing import Vocabulary

    keras().utils.set_random_seed(3)
    vocabulary = Vocabulary(tokens=tuple(f"w{i}" for i in range(50)), max_len=64,
                            side_inputs=side)
    model = build_sentiment_rnn(vocab_size=vocabulary.size, max_len=64, embed_dim=8, units=4,
                                side_inputs=len(side), head_units=5)
    rnn = SentimentRNN(model, vocabulary, SimpleNamespace(version="t"))  # type: ignore[arg-type]
    assert rnn.buckets == (16, 32, 64)
    assert rnn.backend == "onnx"
    widths: list[int] = []
    call = rnn._call
    rnn._call = lambda x, s: (widths.append(x.shape[1]), call(x, s))[1]  # type: ignore[method-assign]
    rng = np.random.default_rng(0)

    def texts(*lengths: int) -> list[str]:
        return [" ".join(f"w{t}" for t in rng.integers(0, 60, n)) for n in lengths]

    small = texts(0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 80, *rng.integers(0, 70, 40))
    large = texts(*rng.integers(0, 17, 300), *rng.integers(17, 33, 200), 40, 50)
    for batch, expected_widths in ((small, [64]), (large, [16, 32, 50]),
                                   (texts(3, 7), [7]), (texts(0), [1])):
        widths.clear()
        ids = vocabulary.encode_batch(batch)
        vader = rng.uniform(-1, 1, (len(batch), 4))
        columns = [VADER_SIDE_INPUTS.index(name) for name in side]
        reference = model.predict([ids, vader[:, columns]] if side else ids,
                                  verbose=0).reshape(-1)
        assert np.max(np.abs(rnn.score_ids(ids, vader if side else None) - reference)) <= 1e-6
        assert widths == expected_widths  # steps run per call
    if side:
        with pytest.raises(ValueError, match="pass vader="):
            rnn.score_ids(ids)
        with pytest.raises(ValueError, match=r"shape \(1, 4\)"):
            rnn.score_ids(ids[:1], np.zeros((1, 3)))
        with pytest.raises(ValueError, match="finite"):
            rnn.score_ids(ids[:1], np.full((1, 4), np.nan))
    assert rnn.score_ids(np.zeros((0, 64), dtype=np.int32), np.zeros((0, 4))).shape == (0,)


def _sentiment_artifact(tmp_path: Path, model: object, state: dict[str, object],
                        input_spec: dict[str, object] | None = None) -> Path:
    def write(folder: Path) -> None:
        model.save(folder / "model.keras")  # type: ignore[attr-defined]
        (folder / "preprocessing.json").write_text(json.dumps(state))

    path, _ = write_artifact(tmp_path / "s", name="s", kind="sentiment", version="v1",
                             write_files=write, metrics={}, input_spec=input_spec or {},
                             data={})
    return path


def test_side_inputs_in_another_order_than_the_manifest_says_are_refused(
        tmp_path: Path) -> None:
    """Same number of side inputs, another order: the shapes agree, the manifest does not."""
    from tickcast.models.architectures import build_sentiment_rnn

    model = build_sentiment_rnn(vocab_size=12, max_len=8, embed_dim=4, units=2, side_inputs=4)
    state = {"tokens": [f"w{i}" for i in range(10)], "max_len": 8,
             "side_inputs": list(reversed(VADER_SIDE_INPUTS))}
    with pytest.raises(ArtifactError, match="manifest's side inputs"):
        load_predictor(_sentiment_artifact(tmp_path, model, state,
                                           {"side_inputs": list(VADER_SIDE_INPUTS)}))


@pytest.mark.parametrize(("model_side", "state_side", "error"), [
    (4, [], "takes 2 inputs but preprocessing.json names no side inputs"),
    (0, list(VADER_SIDE_INPUTS), "names side inputs .* but the model's inputs are"),
    (4, ["vader_neg", "vader_pos", "vader_compound"], "does not match the preprocessing"),
    (4, ["vader_neg", "vader_neu", "vader_pos", "vader_mood"], "side inputs must be distinct"),
    (4, ["vader_neg", "vader_neg", "vader_pos", "vader_compound"], "must be distinct"),
])
def test_a_side_input_spec_that_does_not_fit_the_model_is_refused(
        tmp_path: Path, model_side: int, state_side: list[str], error: str) -> None:
    """The artifact records which VADER scores the model reads beside its tokens, in which
    order; the loader refuses a model whose inputs say otherwise."""
    from tickcast.models.architectures import build_sentiment_rnn

    model = build_sentiment_rnn(vocab_size=12, max_len=8, embed_dim=4, units=2,
                                side_inputs=model_side)
    state = {"tokens": [f"w{i}" for i in range(10)], "max_len": 8, "side_inputs": state_side}
    with pytest.raises(ArtifactError, match=error):
        load_predictor(_sentiment_artifact(tmp_path, model, state))


def test_a_model_with_side_inputs_must_name_its_text_features(tmp_path: Path) -> None:
    k = keras()
    ids = k.Input(shape=(8,), dtype="int32", name="token_ids")
    side = k.Input(shape=(4,), name="side_inputs")
    x = k.layers.GlobalAveragePooling1D()(k.layers.Embedding(12, 4)(ids))
    out = k.layers.Dense(1, activation="sigmoid")(k.layers.Concatenate()([x, side]))
    state = {"tokens": [f"w{i}" for i in range(10)], "max_len": 8,
             "side_inputs": list(VADER_SIDE_INPUTS)}
    with pytest.raises(ArtifactError, match="text_features"):
        load_predictor(_sentiment_artifact(tmp_path, k.Model([ids, side], out), state))
