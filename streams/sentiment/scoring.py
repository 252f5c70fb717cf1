"""Text scorers: the seam where sentiment models plug into the stream.

A scorer turns a batch of texts into probabilities of the positive class in ``[0, 1]``. VADER
is always present; the RNN classifier (trained offline, loaded from the model store) is added
beside it by the model-update path, and the agent scores every text with every scorer. A
scorer that reads VADER's scores as side inputs (:class:`VaderInformedScorer`) is handed the
ones the agent computed for the VADER column: VADER runs once per text.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Protocol, runtime_checkable

import numpy as np

from tickcast.models.preprocessing import VADER_SIDE_INPUTS, vader_scores

__all__ = ["Scores", "TextScorer", "VaderInformedScorer", "VaderScorer"]

_COMPOUND = VADER_SIDE_INPUTS.index("vader_compound")


class Scores(Protocol):
    """What :meth:`TextScorer.score_batch` returns: one entry per input text."""

    def __len__(self) -> int: ...
    def __getitem__(self, i: int, /) -> float: ...


@runtime_checkable
class TextScorer(Protocol):
    """Contract for a sentiment model in the stream.

    ``name`` is a short, stable metric label (``vader``, ``rnn``); ``version`` identifies the
    artifact serving now. ``score_batch`` must return exactly one finite probability of the
    positive class per text, in input order, and may raise on a batch it cannot score (the
    agent then retries text by text and dead-letters the ones that still fail).
    """

    name: str
    version: str

    def score_batch(self, texts: Sequence[str]) -> Sequence[float]: ...


@runtime_checkable
class VaderInformedScorer(TextScorer, Protocol):
    """A :class:`TextScorer` that can take the texts' VADER scores instead of computing them:
    ``vader`` is :meth:`VaderScorer.scores_batch` of the same texts (``(n, 4)``)."""

    def score_with_vader(self, texts: Sequence[str], vader: np.ndarray
                         ) -> Sequence[float]: ...


class VaderScorer:
    """VADER (Hutto & Gilbert, 2014): lexicon and rules, no training.

    Scored by :class:`~tickcast.streams.sentiment.vader.FastVader`, which gives the library's
    exact scores. ``score_batch`` returns ``(compound + 1) / 2``, a monotone map of the
    compound score into ``[0, 1]`` (ROC AUC is unchanged by it); :meth:`compound_batch` gives
    the raw compound.
    """

    name = "vader"

    def __init__(self) -> None:
        from tickcast.streams.sentiment.vader import FastVader

        self._analyzer = FastVader()  # the library's rules and scores, a faster walk
        self.version = metadata.version("vaderSentiment")

    def scores_batch(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, 4)``: each text's ``neg, neu, pos, compound``
        (:func:`tickcast.models.preprocessing.vader_scores`)."""
        return vader_scores(texts, self._analyzer)

    def compound_batch(self, texts: Sequence[str]) -> list[float]:
        polarity = self._analyzer.polarity_scores
        return [float(polarity(t)["compound"]) for t in texts]

    def score_batch(self, texts: Sequence[str]) -> list[float]:
        return [(c + 1.0) / 2.0 for c in self.compound_batch(texts)]

    @staticmethod
    def probabilities(scores: np.ndarray) -> list[float]:
        """:meth:`score_batch` from :meth:`scores_batch`' matrix: ``(compound + 1) / 2``."""
        return [(float(c) + 1.0) / 2.0 for c in scores[:, _COMPOUND].tolist()]
