"""Character n-gram baselines for the text generator.

Sequences are id lists as :meth:`tickcast.models.preprocessing.CharVocabulary.encode_text`
makes them, ``[boundary, chars..., boundary]``. Every model — these and the LSTM — predicts each
id after the first from what precedes it in the same text, so their perplexities count the same
events and compare directly.

* :class:`UnigramLM`: add-one (Laplace) smoothed frequencies, ``(c(w) + 1) / (N + V)``.
* :class:`BigramLM`: interpolated Kneser-Ney with one discount ``D``::

      P(w | v) = max(c(v w) - D, 0) / c(v)  +  D * N1+(v .) / c(v) * P_cont(w)
      P_cont(w) = max(N1+(. w) - D, 0) / N1+(. .)  +  D * |{w: N1+(. w) > 0}| / N1+(. .) / V

  ``N1+(v .)`` counts the distinct ids seen after ``v``, ``N1+(. w)`` those seen before ``w``,
  ``N1+(. .)`` the distinct bigrams. The continuation probability is itself interpolated with
  the uniform distribution, so no id has probability 0; a context never seen in training uses
  ``P_cont`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BigramLM", "UnigramLM"]


def _targets(sequences: Sequence[Sequence[int]]) -> np.ndarray:
    return np.fromiter((i for seq in sequences for i in seq[1:]), dtype=np.int64)


def _pairs(sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    prev = np.fromiter((i for seq in sequences for i in seq[:-1]), dtype=np.int64)
    return prev, _targets(sequences)


class UnigramLM:
    """``P(w)``, add-one smoothed; ignores all context."""

    def __init__(self, probs: np.ndarray) -> None:
        self.probs = probs

    @classmethod
    def fit(cls, sequences: Sequence[Sequence[int]], *, vocab_size: int) -> UnigramLM:
        counts = np.bincount(_targets(sequences), minlength=vocab_size).astype(np.float64)
        return cls((counts + 1.0) / (counts.sum() + vocab_size))

    def log_probs(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """``log P`` of every id after the first of each sequence, in order."""
        return np.log(self.probs[_targets(sequences)])


class BigramLM:
    """``P(w | previous id)``, interpolated Kneser-Ney."""

    def __init__(self, probs: np.ndarray) -> None:
        self.probs = probs  # (V, V): row = previous id, column = next id

    @classmethod
    def fit(cls, sequences: Sequence[Sequence[int]], *, vocab_size: int,
            discount: float = 0.75) -> BigramLM:
        if not 0 < discount < 1:
            raise ValueError(f"discount must be in (0, 1), got {discount}")
        v = vocab_size
        prev, nxt = _pairs(sequences)
        counts = np.zeros((v, v), dtype=np.float64)
        np.add.at(counts, (prev, nxt), 1.0)
        seen = counts > 0
        preceding = seen.sum(axis=0).astype(np.float64)  # N1+(. w)
        types = max(float(seen.sum()), 1.0)  # N1+(. .)
        p_cont = (np.maximum(preceding - discount, 0.0) / types
                  + discount * np.count_nonzero(preceding) / types / v)
        if not seen.any():
            p_cont = np.full(v, 1.0 / v)
        context = counts.sum(axis=1, keepdims=True)  # c(v)
        following = seen.sum(axis=1, keepdims=True)  # N1+(v .)
        with np.errstate(divide="ignore", invalid="ignore"):
            probs = (np.maximum(counts - discount, 0.0) / context
                     + discount * following / context * p_cont[None, :])
        probs = np.where(context > 0, probs, p_cont[None, :])
        return cls(probs)

    def log_probs(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """``log P`` of every id after the first of each sequence, given the id before it."""
        prev, nxt = _pairs(sequences)
        return np.log(self.probs[prev, nxt])
