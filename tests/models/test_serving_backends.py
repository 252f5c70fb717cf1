"""The serving backends agree with Keras on the trained models' own data: the ONNX path that
``auto`` picks (with one inference thread and with two), and the ``tf.function`` fallback,
each within 1e-5 of ``model(x)``."""

from __future__ import annotations

import numpy as np
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tickcast.models.predictors import Forecaster, SentimentRNN, load_predictor
from tickcast.training.data import gold_closes, sample_texts
from tickcast.training.prices import PriceResult
from tickcast.training.sentiment import SentimentResult, model_inputs

TOLERANCE = 1e-5


BACKENDS = [("auto", 1), ("auto", 2), ("tf-function", 1)]


@pytest.mark.parametrize(("backend", "threads"), BACKENDS)
def test_forecaster_backends_match_keras_on_the_gold_series(tiny_forecaster: PriceResult,
                                                            backend: str, threads: int) -> None:
    predictor = load_predictor(tiny_forecaster.path, backend=backend, threads=threads)
    assert isinstance(predictor, Forecaster)
    assert predictor.backend == ("onnx" if backend == "auto" else "tf-function")
    closes = gold_closes()["close"].to_numpy(dtype=np.float64)
    w = predictor.window
    windows = np.lib.stride_tricks.sliding_window_view(closes, w)[::3]  # ~1/3 of the series
    features = predictor.scaler.inputs(windows)
    reference = np.asarray(predictor.model(features, training=False))
    assert reference.shape == (len(features), 1 + len(predictor.scaler.intervals.quantiles))
    for size in (1, 10, 256, len(features)):  # serving's batch sizes, and everything at once
        got = predictor.predict_outputs(features[:size])  # the point and every quantile
        assert got.shape == reference[:size].shape
        assert np.max(np.abs(got - reference[:size])) <= TOLERANCE, size


@pytest.mark.parametrize(("backend", "threads"), BACKENDS)
def test_sentiment_backends_match_keras_on_every_sample_text(tiny_sentiment: SentimentResult,
                                                             backend: str, threads: int) -> None:
    predictor = load_predictor(tiny_sentiment.path, backend=backend, threads=threads)
    assert isinstance(predictor, SentimentRNN)
    assert predictor.backend == ("onnx" if backend == "auto" else "tf-function")
    texts = list(sample_texts()["text"])
    inputs, vader = model_inputs(predictor.vocabulary, texts, SentimentIntensityAnalyzer())
    reference = np.asarray(predictor.model(inputs, training=False)).reshape(-1)
    ids = predictor.vocabulary.encode_batch(texts)
    for size in (1, 10, 256, len(ids)):
        got = predictor.score_ids(ids[:size], vader[:size])
        assert np.max(np.abs(got - reference[:size])) <= TOLERANCE, size


def test_an_unknown_backend_is_refused(tiny_forecaster: PriceResult) -> None:
    with pytest.raises(ValueError, match="backend must be one of auto, tf-function"):
        load_predictor(tiny_forecaster.path, backend="xla")


def test_inference_threads_below_one_are_refused(tiny_forecaster: PriceResult) -> None:
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        load_predictor(tiny_forecaster.path, threads=0)
