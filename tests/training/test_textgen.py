"""The text generator's training job and its baselines: perplexities checked by hand and
recomputed independently; the report agrees with the manifest."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tickcast.models.predictors import load_predictor
from tickcast.models.preprocessing import CharVocabulary
from tickcast.models.textgen import TextGenerator
from tickcast.training.data import DataError, sample_texts
from tickcast.training.evaluate import perplexity
from tickcast.training.ngrams import BigramLM, UnigramLM
from tickcast.training.textgen import (
    TextGenConfig,
    TextGenResult,
    lstm_log_probs,
    split_corpus,
    training_windows,
)

# Toy corpus over ids 0 (boundary), 1 (unknown), 2 ("a"), 3 ("b"): texts "ab" and "b".
TOY_TRAIN = [[0, 2, 3, 0], [0, 3, 0]]
TOY_TEST = [[0, 2, 0]]  # the text "a"


def test_perplexity_is_exp_of_the_mean_negative_log_probability() -> None:
    assert perplexity(np.log([0.5, 0.5])) == pytest.approx(2.0)
    assert perplexity(np.log([0.25, 1.0])) == pytest.approx(2.0)  # sqrt(1 / 0.25)
    with pytest.raises(ValueError, match="at least one"):
        perplexity(np.zeros(0))
    with pytest.raises(ValueError, match="<= 0"):
        perplexity(np.array([0.1]))


def test_unigram_add_one_by_hand() -> None:
    # Targets 2, 3, 0, 3, 0: counts (2, 0, 1, 2) of N = 5, V = 4 -> (c + 1) / 9.
    lm = UnigramLM.fit(TOY_TRAIN, vocab_size=4)
    assert lm.probs.tolist() == pytest.approx([3 / 9, 1 / 9, 2 / 9, 3 / 9])
    # "a" then the end: P = 2/9 * 3/9.
    assert perplexity(lm.log_probs(TOY_TEST)) == pytest.approx(math.sqrt(81 / 6))


def test_bigram_kneser_ney_by_hand() -> None:
    # Bigrams 0a 0b ab b0 b0: c(0)=2 with 2 followers, c(a)=1 with 1, c(b)=2 with 1.
    # Preceding types: 0 <- {b}, a <- {0}, b <- {0, a}; 4 bigram types, 3 continued ids.
    # P_cont(w) = max(n(w) - D, 0) / 4 + D * 3 / 4 / 4 with D = 0.5:
    p_cont = {0: 0.5 / 4 + 0.09375, 1: 0.09375, 2: 0.5 / 4 + 0.09375, 3: 1.5 / 4 + 0.09375}
    assert sum(p_cont.values()) == pytest.approx(1.0)
    lm = BigramLM.fit(TOY_TRAIN, vocab_size=4, discount=0.5)
    p_a_after_0 = (1 - 0.5) / 2 + 0.5 * 2 / 2 * p_cont[2]  # 0.359375
    p_0_after_a = 0 + 0.5 * 1 / 1 * p_cont[0]  # 0.109375
    assert lm.probs[0, 2] == pytest.approx(p_a_after_0)
    assert lm.probs[2, 0] == pytest.approx(p_0_after_a)
    assert lm.probs[1].tolist() == pytest.approx(list(p_cont.values()))  # unseen context
    assert lm.probs.sum(axis=1) == pytest.approx(np.ones(4))
    assert perplexity(lm.log_probs(TOY_TEST)) == pytest.approx(
        (p_a_after_0 * p_0_after_a) ** -0.5)


def test_split_normalises_deduplicates_and_keeps_parts_disjoint() -> None:
    texts = [f"text {i}" for i in range(100)] + ["text 1", " text\t2 ", "", "  "]
    parts = split_corpus(texts, val_frac=0.1, test_frac=0.2, seed=1)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [70, 10, 20]
    joined = [t for part in parts.values() for t in part]
    assert len(set(joined)) == len(joined) == 100
    with pytest.raises(DataError, match="too few"):
        split_corpus(["a", "b"], val_frac=0.1, test_frac=0.1, seed=1)


def test_windows_join_texts_with_boundaries_and_shift_targets_by_one() -> None:
    vocab = CharVocabulary(chars=("a", "b"))
    x, y = training_windows(["ab", "b", "aa"], vocab, seq_len=3)
    stream = [0, 2, 3, 0, 3, 0, 2, 2, 0]
    assert x.tolist() == [stream[0:3], stream[3:6]]
    assert y.tolist() == [stream[1:4], stream[4:7]]


def test_lstm_scores_do_not_depend_on_batch_padding(tiny_textgen: TextGenResult) -> None:
    generator = load_predictor(tiny_textgen.path)
    assert isinstance(generator, TextGenerator)
    short, long = (generator.vocabulary.encode_text(t) for t in ("Gold up", "A much longer one"))
    together = lstm_log_probs(generator.model, [short, long])
    alone = np.concatenate([lstm_log_probs(generator.model, [s]) for s in (short, long)])
    assert together == pytest.approx(alone, abs=1e-5)
    assert len(together) == len(short) - 1 + len(long) - 1


def test_report_agrees_with_the_manifest_and_independent_recomputation(
        tiny_textgen: TextGenResult) -> None:
    metrics = tiny_textgen.manifest.metrics
    report = json.loads((tiny_textgen.path / "report.json").read_text())
    assert report["metrics"] == metrics
    md = (tiny_textgen.path / "report.md").read_text()
    assert "| bigram (Kneser-Ney) |" in md
    assert "chars/s" in md
    config = TextGenConfig(**{**report["config"], "units": tuple(report["config"]["units"])})
    parts = split_corpus(list(sample_texts()["text"]), val_frac=config.val_frac,
                         test_frac=config.test_frac, seed=config.seed)
    generator = load_predictor(tiny_textgen.path)
    assert isinstance(generator, TextGenerator)
    vocab = generator.vocabulary
    assert vocab == CharVocabulary.fit(parts["train"], min_count=config.min_char_count)
    test = [vocab.encode_text(t) for t in parts["test"]]
    assert metrics["test_ppl_lstm"] == pytest.approx(
        perplexity(lstm_log_probs(generator.model, test)), rel=1e-4)
    x, y = training_windows(parts["train"], vocab, seq_len=config.seq_len)
    train = np.concatenate([x[:, :1], y], axis=1).tolist()
    assert metrics["test_ppl_bigram"] == pytest.approx(perplexity(
        BigramLM.fit(train, vocab_size=vocab.size).log_probs(test)))
    assert metrics["test_ppl_unigram"] > metrics["test_ppl_bigram"]
    assert metrics["gen_chars_per_s_batch1"] > 0
    assert len(report["samples"]) == 12
