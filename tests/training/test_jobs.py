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


def test_price_report_judges_the_intervals_and_the_point_forecast(
        tiny_forecaster: PriceResult) -> None:
    """Coverage, width and interval score per method and level, recomputed here from the
    report's own reliability table; DM and MASE against naive; the reliability plot."""
    report = json.loads((tiny_forecaster.path / "report.json").read_text())
    m = report["metrics"]
    for method in ("lstm", "lstm_static", "mc_dropout", "baseline"):
        for level in ("80", "95"):
            assert 0 <= m[f"interval_{method}_{level}_coverage"] <= 1
            assert m[f"interval_{method}_{level}_width"] > 0
            # The score is the width plus penalties for misses: never below the width.
            assert m[f"interval_{method}_{level}_score"] >= m[f"interval_{method}_{level}_width"]
        assert report["calibration"][method]["0.8"] == m[f"interval_{method}_80_coverage"]
        assert len(report["calibration"][method]) == 10  # 10 %, ..., 90 %, 95 %
    assert 0 <= m["dm_p_value"] <= 1
    assert m["lstm_mase"] > 0
    assert m["naive_mase"] > 0
    md = (tiny_forecaster.path / "report.md").read_text()
    assert "## Intervals, test period" in md
    assert "Diebold–Mariano" in md
    png = (tiny_forecaster.path / "interval_reliability.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    state = json.loads((tiny_forecaster.path / "preprocessing.json").read_text())
    assert state["intervals"]["method"] == "quantile-head+conformal"
    assert tiny_forecaster.manifest.input["intervals"] == state["intervals"]


def test_a_point_only_forecaster_can_still_be_trained(tmp_path) -> None:
    from tickcast.models.predictors import load_predictor
    from tickcast.training.data import gold_closes
    from tickcast.training.prices import DAILY_FROM, PriceConfig, train_prices

    gold = gold_closes()
    gold = gold[gold["date"] >= DAILY_FROM].tail(600).reset_index(drop=True)
    result = train_prices(gold, store_dir=tmp_path, progress=False, config=PriceConfig(
        window=10, units=(4,), epochs=1, patience=1, intervals=False))
    predictor = load_predictor(result.path)
    assert not predictor.intervals
    assert "interval_lstm_80_coverage" not in result.metrics
    assert json.loads((result.path / "preprocessing.json").read_text()).keys() == {
        "window", "scale"}


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
