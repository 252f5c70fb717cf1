"""Exact ROC AUC over a sliding window of the most recent labelled scores.

AUC equals the Mann-Whitney statistic: the probability that a random positive scores above a
random negative, ties counting one half. That is what ``sklearn.metrics.roc_auc_score``
computes, so the two agree on any window (tests check it). Each update costs O(log n): scores
live in two sorted lists and the statistic is kept incrementally, as a doubled integer so that
ties (halves) accumulate without rounding.

>>> auc = RollingAUC(window_size=4)
>>> for score, label in [(0.1, 0), (0.9, 1), (0.4, 0), (0.35, 1)]:
...     auc.update(score, label)
>>> auc.get()
0.75
>>> auc.update(0.8, 1)      # evicts (0.1, 0)
>>> auc.get()
0.6666666666666666
>>> RollingAUC(window_size=3).get() is None   # undefined until both classes are present
True
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from sortedcontainers import SortedList

__all__ = ["RollingAUC", "mann_whitney_auc"]


def mann_whitney_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC of ``scores`` against 0/1 ``labels``: the negatives sorted, each positive placed
    among them by binary search, O(n log n) (ties count one half; :class:`RollingAUC`'s
    statistic for a window recomputed whole); ``None`` while one class is missing.

    >>> mann_whitney_auc(np.array([0.1, 0.9, 0.4, 0.35]), np.array([0, 1, 0, 1]))
    0.75
    """
    y = np.asarray(labels).astype(bool)
    x = np.asarray(scores, dtype=np.float64)
    pos, neg = x[y], np.sort(x[~y])
    if not len(pos) or not len(neg):
        return None
    below = np.searchsorted(neg, pos, side="left")
    at_most = np.searchsorted(neg, pos, side="right")
    twice_u = int(np.sum(below + at_most))  # 2 * (pairs won + half the ties)
    return twice_u / (2 * len(pos) * len(neg))


class RollingAUC:
    """ROC AUC of the last ``window_size`` ``(score, label)`` pairs.

    ``get()`` returns ``None`` while the window holds only one class (AUC is undefined there);
    the Prometheus exporter shows that as NaN.
    """

    def __init__(self, window_size: int) -> None:
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        self.window_size = window_size
        self._window: deque[tuple[float, int]] = deque()
        self._pos: SortedList = SortedList()
        self._neg: SortedList = SortedList()
        self._twice_u = 0  # 2 * (pairs ranked right + half the ties)

    def __len__(self) -> int:
        return len(self._window)

    @property
    def positives(self) -> int:
        return len(self._pos)

    @property
    def negatives(self) -> int:
        return len(self._neg)

    def _pairs_won(self, score: float, label: int) -> int:
        """Twice the U contribution of ``(score, label)`` against the other class."""
        if label:
            lo, hi = self._neg.bisect_left(score), self._neg.bisect_right(score)
            return 2 * lo + (hi - lo)
        lo, hi = self._pos.bisect_left(score), self._pos.bisect_right(score)
        return 2 * (len(self._pos) - hi) + (hi - lo)

    def update(self, score: float, label: int) -> None:
        """Add one labelled score (``label`` 1 positive, 0 negative); evicts the oldest."""
        if not math.isfinite(score):
            raise ValueError(f"score must be finite, got {score!r}")
        if label not in (0, 1):
            raise ValueError(f"label must be 0 or 1, got {label!r}")
        self._twice_u += self._pairs_won(score, label)
        (self._pos if label else self._neg).add(score)
        self._window.append((score, label))
        if len(self._window) > self.window_size:
            self.revert(*self._window.popleft(), _from_window=False)

    def revert(self, score: float, label: int, *, _from_window: bool = True) -> None:
        """Remove one previously added pair (the oldest, when called by ``update``)."""
        if _from_window:
            self._window.remove((score, label))
        (self._pos if label else self._neg).remove(score)
        self._twice_u -= self._pairs_won(score, label)

    def get(self) -> float | None:
        pairs = len(self._pos) * len(self._neg)
        if pairs == 0:
            return None
        return self._twice_u / (2 * pairs)
