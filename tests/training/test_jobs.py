"""Training jobs end to end on shipped data: artifact, report, numbers that agree."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tickcast.training.prices import PriceResult
from tickcast.training.sentiment import SentimentResult, split_texts


def test_price_report_agrees_with_the_manifest(tiny_forecaster: PriceResult) -> None:
    report = json.loads((tiny_forecaster.path / "report.json").read_text())
    assert report["metrics"] == tiny_forecaster.manifest.metrics
    md = (tiny_forecaster.path / "report.md").read_text()
    assert "| naive |" in md
    assert "forecast_vs_actual.png" in md
    png = (tiny_forecaster.path / "forecast_vs_actual.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    m = tiny_forecaster.metrics
    assert m["skill_rmse"] == 1 - m["lstm_rmse"] / m["naive_rmse"]


def test_sentiment_report_compares_both_models_on_the_same_texts(
        tiny_sentiment: SentimentResult) -> None:
    report = json.loads((tiny_sentiment.path / "report.json").read_text())
    pooled = report["per_source"]["pooled"]
    # Recompute VADER's pooled AUC on the same held-out texts, independently.
    from tickcast.training.data import sample_texts

    test = split_texts(sample_texts(), val_frac=0.1, test_frac=0.2, seed=42)["test"]
    analyzer = SentimentIntensityAnalyzer()
    vader = [analyzer.polarity_scores(t)["compound"] for t in test["text"]]
    assert pooled["n"] == len(test)
    assert pooled["vader_auc"] == roc_auc_score(test["label"], vader)
    assert set(report["per_source"]) == {"pooled", "amazon", "movies", "nyt", "tweets"}
    assert (tiny_sentiment.path / "roc_curves.png").read_bytes().startswith(b"\x89PNG")


def test_split_is_stratified_by_source_and_label_and_disjoint() -> None:
    frame = pd.DataFrame({"id": [f"i{n}" for n in range(400)],
                          "source": np.repeat(["a", "b"], 200),
                          "label": np.tile([0, 1, 1, 1], 100), "text": "x"})
    parts = split_texts(frame, val_frac=0.1, test_frac=0.2, seed=3)
    ids = [set(p["id"]) for p in parts.values()]
    assert not ids[0] & ids[1]
    assert not ids[0] & ids[2]
    assert not ids[1] & ids[2]
    assert sum(map(len, ids)) == 400
    test = parts["test"]
    assert test.groupby("source").size().tolist() == [40, 40]
    assert test.groupby("source")["label"].mean().tolist() == [0.75, 0.75]
