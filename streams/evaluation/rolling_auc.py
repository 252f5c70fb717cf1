"""Exact ROC AUC over a sliding window of the most recent labelled scores.

AUC equals the Mann-Whitney statistic: the probability that a random positive scores above a
random negative, ties counting one half. That is what ``sklearn.metrics.roc_auc_score``
computes, so the two agree on any window (tests check it). The statistic is counted as a
doubled integer, so ties (halves) add up without rounding.

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

__all__ = ["RollingAUC", "mann_whitney_auc"]


def mann_whitney_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC of ``scores`` against 0/1 ``labels``: the negatives sorted, each positive placed
    among them by binary search, O(n log n) (ties count one half); ``None`` while one class is
    missing.

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

    An update appends to the window (O(1)); :meth:`get` computes the statistic over the whole
    window (:func:`mann_whitney_auc`, O(n log n)) and keeps it until the next change. Callers
    read once per batch, so this costs a sort per batch instead of two sorted-list updates per
    labelled text. ``get()`` returns ``None`` while the window holds only one class (AUC is
    undefined there); the Prometheus exporter shows that as NaN.
    """

    def __init__(self, window_size: int) -> None:
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        self.window_size = window_size
        self._window: deque[tuple[float, int]] = deque()
        self._positives = 0
        self.updates = 0
        """Changes ever made to the window (a version of its content)."""
        self._cached: tuple[int, float | None] = (0, None)

    def __len__(self) -> int:
        return len(self._window)

    @property
    def positives(self) -> int:
        return self._positives

    @property
    def negatives(self) -> int:
        return len(self._window) - self._positives

    def update(self, score: float, label: int) -> None:
        """Add one labelled score (``label`` 1 positive, 0 negative); evicts the oldest."""
        if not math.isfinite(score):
            raise ValueError(f"score must be finite, got {score!r}")
        if label not in (0, 1):
            raise ValueError(f"label must be 0 or 1, got {label!r}")
        self._window.append((float(score), int(label)))
        self._positives += label
        if len(self._window) > self.window_size:
            self._positives -= self._window.popleft()[1]
        self.updates += 1

    def revert(self, score: float, label: int) -> None:
        """Remove one previously added pair (its newest occurrence)."""
        pair = (float(score), int(label))
        for i in range(len(self._window) - 1, -1, -1):
            if self._window[i] == pair:
                del self._window[i]
                self._positives -= pair[1]
                self.updates += 1
                return
        raise ValueError(f"{pair} is not in the window")

    def get(self) -> float | None:
        at, value = self._cached
        if at != self.updates:
            if self._positives and self._positives < len(self._window):
                pairs = np.array(self._window, dtype=np.float64)
                value = mann_whitney_auc(pairs[:, 0], pairs[:, 1])
            else:
                value = None
            self._cached = (self.updates, value)
        return value
