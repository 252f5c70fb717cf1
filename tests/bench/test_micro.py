"""The serving predictors agree with Keras' own predict (max abs difference <= 1e-4)."""

from __future__ import annotations

from tickcast_bench.micro import micro_benchmarks

from tickcast.models.predictors import load_predictor
from tickcast.training.data import sample_texts
from tickcast.training.prices import PriceResult
from tickcast.training.sentiment import SentimentResult


def test_serving_parity_with_keras_predict(tiny_forecaster: PriceResult,
                                               tiny_sentiment: SentimentResult) -> None:
    rows = micro_benchmarks(load_predictor(tiny_forecaster.path),  # type: ignore[arg-type]
                            load_predictor(tiny_sentiment.path),  # type: ignore[arg-type]
                            list(sample_texts()["text"].head(40)), batch_sizes=(1, 8))
    assert [(r["model"], r["batch"]) for r in rows] == [("lstm", 1), ("rnn", 1), ("lstm", 8),
                                                        ("rnn", 8)]
    for row in rows:
        assert row["max_abs_diff"] <= 1e-4, row
        assert row["predict_ms"] > 0
        assert row["serving_ms"] > 0
        assert row["backend"] == "onnx"
