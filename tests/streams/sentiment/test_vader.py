"""FastVader scores exactly as vaderSentiment does (every field, bit for bit)."""

from __future__ import annotations

import random

import pytest
from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
)

from tickcast.streams.sentiment.vader import FastVader
from tickcast.training.data import fetch_sentiment_corpus, load_rated_texts, sample_texts


@pytest.fixture(scope="module")
def analyzers() -> tuple[SentimentIntensityAnalyzer, FastVader]:
    return SentimentIntensityAnalyzer(), FastVader()


def assert_same(analyzers: tuple[SentimentIntensityAnalyzer, FastVader], texts: list[str]
                ) -> None:
    library, fast = analyzers
    differ = [(t, library.polarity_scores(t), fast.polarity_scores(t)) for t in texts
              if library.polarity_scores(t) != fast.polarity_scores(t)]
    assert not differ, f"{len(differ)} of {len(texts)} differ, e.g. {differ[:3]}"


def test_the_shipped_texts_score_identically(analyzers: tuple[SentimentIntensityAnalyzer,
                                                               FastVader]) -> None:
    assert_same(analyzers, sample_texts()["text"].tolist())


RULE_CASES = [
    "VADER is smart, handsome, and funny.", "VADER is VERY SMART, handsome, and FUNNY!!!",
    "VADER is not smart, handsome, nor funny.", "At least it isn't a horrible book.",
    "The book was only kind of good.", "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!", "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all", "no good", "no no good", "no sleep nor good", "no sleep or good",
    "no, or bad", "never so good", "never this bad",
    "without doubt good", "without a doubt good", "least good", "at least good",
    "very least good", "the least good idea", "it was the bomb", "yeah right, great",
    "cut the mustard", "kiss of death", "bad ass", "hand to mouth", "back handed compliment",
    "GOOD but BAD", "good but bad but good", "What??? really???? ok!!!!!", "   padded  ",
    "", "!!!", "kind of", "kind", "sort of good", "a little bit good", "GREAT", "GREAT day",
]


def test_each_rule_scores_identically(analyzers: tuple[SentimentIntensityAnalyzer, FastVader]
                                      ) -> None:
    assert_same(analyzers, RULE_CASES)


def test_generated_texts_score_identically(analyzers: tuple[SentimentIntensityAnalyzer,
                                                             FastVader]) -> None:
    """Random word salads over the words each rule looks at, in every casing."""
    library, _ = analyzers
    rng = random.Random(7)
    lexicon = sorted(library.lexicon)
    rule_words = (list(BOOSTER_DICT) + NEGATE + [w for case in SPECIAL_CASES for w in case.split()]
                  + ["no", "or", "nor", "least", "at", "very", "never", "so", "this", "without",
                     "doubt", "but", "BUT", "kind", "of", "the", "a", ":)", ":(", "😁", "!", "?"])
    texts = []
    for _ in range(5000):
        words = [rng.choice(lexicon) if rng.random() < 0.4 else rng.choice(rule_words)
                 for _ in range(rng.randint(1, 14))]
        words = [w.upper() if rng.random() < 0.15 else w.capitalize() if rng.random() < 0.1
                 else w for w in words]
        words = [w + rng.choice(["", "", "", ",", ".", "!", "?!", "'s", "..."]) for w in words]
        texts.append(" ".join(words))
    assert_same(analyzers, texts)


@pytest.mark.slow
def test_every_human_rated_text_scores_identically(
        analyzers: tuple[SentimentIntensityAnalyzer, FastVader],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The whole rated corpus (tweets, NYT, movie and Amazon snippets) from the library's
    sdist, fetched the way the training job fetches it (``pip download``, checksummed)."""
    corpus = fetch_sentiment_corpus(tmp_path_factory.mktemp("corpus"))
    texts = load_rated_texts(corpus)["text"].tolist()
    assert len(texts) > 20_000
    assert_same(analyzers, texts)
