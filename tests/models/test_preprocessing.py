"""Preprocessing: level-free windows, fitted on training data only, invertible."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tickcast.models.preprocessing import (
    CharVocabulary,
    PriceScaler,
    Vocabulary,
    make_windows,
    tokenize,
)
from tickcast.training.prices import split_prices


def test_windows_pair_each_window_with_the_next_close() -> None:
    x, y = make_windows(np.arange(1.0, 8.0), 3)
    assert x.tolist()[0] == [1.0, 2.0, 3.0]
    assert y.tolist() == [4.0, 5.0, 6.0, 7.0]


def test_features_do_not_depend_on_the_price_level() -> None:
    closes = np.array([100.0, 101.0, 99.5, 102.0, 103.5, 101.0, 104.0])
    scaler = PriceScaler.fit(closes, window=4)
    x, y = make_windows(closes, 4)
    assert np.allclose(scaler.inputs(x), scaler.inputs(x * 37.0), atol=1e-6)
    # targets -> prices is the identity
    assert np.allclose(scaler.prices(x, scaler.targets(x, y)), y)


def test_scaler_and_split_never_see_the_test_period() -> None:
    dates = pd.date_range("2000-01-01", periods=500, freq="B", tz="UTC")
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500)))
    frame = pd.DataFrame({"date": dates, "close": closes})
    split = split_prices(frame, val_frac=0.1, test_frac=0.2)
    assert len(split.train) == 350
    assert split.test_dates[0] > dates[349]
    fitted = PriceScaler.fit(split.train, window=20)
    # Wreck the validation and test periods: the fitted state must not move.
    frame.loc[350:, "close"] = frame.loc[350:, "close"] * rng.uniform(0.1, 10, 150)
    refit = PriceScaler.fit(split_prices(frame, val_frac=0.1, test_frac=0.2).train, window=20)
    assert refit == fitted
    assert fitted.scale == pytest.approx(np.std(np.diff(np.log(closes[:350]))))


@pytest.mark.parametrize("bad", [[1.0, 2.0], [1.0, -2.0, 3.0, 4.0, 5.0], [5.0] * 10])
def test_scaler_refuses_unusable_training_data(bad: list[float]) -> None:
    with pytest.raises(ValueError, match=r"need at least|positive|no variation"):
        PriceScaler.fit(np.array(bad), window=3)


def test_tokenizer_and_vocabulary_round_trip() -> None:
    assert tokenize("I DON'T like it!!! :(") == ["i", "don't", "like", "it", "!", "!", "!", ":("]
    vocab = Vocabulary.fit(["good good bad", "good ugly"], min_count=1, max_len=4)
    assert vocab.tokens[0] == "good"
    ids = vocab.encode_batch(["good unknown", "", "bad good ugly good bad"])
    assert ids.shape == (3, 4)
    assert ids[0].tolist() == [0, 0, 2, 1]  # left-padded; 1 = out of vocabulary
    assert ids[1].tolist() == [0, 0, 0, 0]
    assert ids[2].tolist()[0] == vocab.tokens.index("good") + 2  # keeps the last 4 tokens
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab


def test_vocabulary_is_fitted_on_training_texts_only() -> None:
    vocab = Vocabulary.fit(["alpha beta", "alpha"], min_count=1)
    assert "gamma" not in vocab.tokens
    assert vocab.encode_batch(["gamma"])[0, -1] == 1


def test_lexicon_features_carry_vader_valences() -> None:
    vocab = Vocabulary.fit(["great awful table"], min_count=1)
    features = vocab.lexicon_features()
    index = {t: i + 2 for i, t in enumerate(vocab.tokens)}
    assert features[index["great"], 0] > 0 > features[index["awful"], 0]
    assert features[index["table"]].tolist() == [0.0, 0.0]
    assert features[:2].tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_char_vocabulary_ranks_characters_and_reserves_boundary_and_unknown() -> None:
    vocab = CharVocabulary.fit(["abba", "ab\tc", "zz", "a b"], min_count=2)
    assert vocab.chars == ("a", "b", " ", "z")  # by count, then by character; c is rare
    assert vocab.size == 6
    assert vocab.encode("ab\nc") == [2, 3, 4, 1]  # whitespace -> space, unknown -> 1
    assert vocab.encode_text("za") == [0, 5, 2, 0]
    assert vocab.decode([0, 5, 2, 1, 4, 0]) == "za "  # boundary and unknown have no character
    assert CharVocabulary.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab


def test_char_vocabulary_refuses_a_state_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match="distinct single characters"):
        CharVocabulary(chars=("a", "a"))
    with pytest.raises(ValueError, match="whitespace"):
        CharVocabulary(chars=("a", "\n"))
    with pytest.raises(ValueError, match="reserved ids"):
        CharVocabulary.from_dict({"chars": ["a"], "boundary": 1, "unknown": 0})
