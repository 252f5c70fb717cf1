"""Offline datasets: gold closes from site-packages, the shipped sentiment sample, the corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from tickcast.training.data import (
    DataError,
    _verify,
    build_sentiment_sample,
    fetch_sentiment_corpus,
    gold_closes,
    sample_texts,
)

REPO = Path(__file__).resolve().parents[2]


def test_gold_closes_are_sorted_positive_and_span_decades() -> None:
    gold = gold_closes()
    assert list(gold.columns) == ["date", "close"]
    assert gold["date"].is_monotonic_increasing
    assert (gold["close"] > 0).all()
    assert gold["date"].iloc[0].year == 1970
    assert gold["date"].iloc[-1].year == 2020
    assert len(gold) > 10_000


def test_sample_is_balanced_across_sources_with_binary_labels() -> None:
    sample = sample_texts()
    assert len(sample) == 1200
    assert sample["id"].is_unique
    assert sample.groupby("source").size().to_dict() == {
        "amazon": 300, "movies": 300, "nyt": 300, "tweets": 300}
    assert set(sample["label"]) == {0, 1}
    assert ((sample["rating"] > 0) == (sample["label"] == 1)).all()


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"tampered")
    with pytest.raises(DataError, match="does not match"):
        _verify(path, "0" * 64)


@pytest.mark.slow
def test_shipped_sample_is_rebuilt_exactly_from_the_verified_corpus(tmp_path: Path) -> None:
    """Downloads the vaderSentiment sdist from the package index (as the training jobs do)."""
    cache = Path(os.environ.get("TICKCAST_TEST_DATASETS", REPO / ".tickcast" / "datasets"))
    corpus = fetch_sentiment_corpus(cache)
    rebuilt = build_sentiment_sample(corpus)
    rebuilt.to_csv(tmp_path / "sample.csv", index=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sample.csv"), sample_texts())
