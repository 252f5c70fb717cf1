"""Two models' ROC AUC on the same labelled texts, their difference and its DeLong interval.

DeLong, DeLong & Clarke-Pearson (1988): each AUC is the mean of per-positive and per-negative
placement values; their covariance across the two models gives the variance of the difference
without resampling. Computed on demand over the last ``window_size`` texts labelled while both
models were serving.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tickcast.streams.evaluation.forecast_error import Refresh, RowRing

__all__ = ["AUCComparison", "PairedAUC", "delong"]

Z_95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class AUCComparison:
    auc_a: float
    auc_b: float
    diff: float
    """``auc_a - auc_b``."""
    low: float
    high: float
    """95 % DeLong interval of ``diff``."""
    n: int


def delong(scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray) -> AUCComparison:
    y = np.asarray(labels).astype(bool)
    scores = np.vstack([np.asarray(scores_a, float), np.asarray(scores_b, float)])
    pos, neg = scores[:, y], scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise ValueError("DeLong needs at least two positives and two negatives")
    # Placement values: v10[k, i], the share of negatives positive i outranks under model k
    # (ties count 1/2); v01[k, j], the share of positives that outrank negative j. Counted by
    # binary search in the sorted scores: O((m + n) log) rather than the m x n comparisons.
    v10, v01 = np.empty((2, m)), np.empty((2, n))
    for k in range(2):
        negs, poss = np.sort(neg[k]), np.sort(pos[k])
        below = np.searchsorted(negs, pos[k], side="left")
        v10[k] = (below + 0.5 * (np.searchsorted(negs, pos[k], side="right") - below)) / n
        at_most = np.searchsorted(poss, neg[k], side="right")
        v01[k] = (m - at_most + 0.5 * (at_most - np.searchsorted(poss, neg[k], side="left"))) / m
    auc = v10.mean(axis=1)
    s10, s01 = np.cov(v10), np.cov(v01)
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    half = Z_95 * math.sqrt(max(float(var), 0.0))
    diff = float(auc[0] - auc[1])
    return AUCComparison(float(auc[0]), float(auc[1]), diff, diff - half, diff + half, m + n)


class PairedAUC:
    """The last ``window_size`` texts both models scored, and their :func:`delong`
    comparison.

    ``exact``: recomputed after every update (the gate decides on it); otherwise once
    :func:`~tickcast.streams.evaluation.forecast_error.refresh_due` (a monitoring gauge: a
    DeLong pass sorts the whole window)."""

    def __init__(self, window_size: int, *, exact: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window = RowRing(window_size, 3)
        self._exact = exact
        self._refresh = Refresh(clock)
        self._cached: AUCComparison | None = None

    def __len__(self) -> int:
        return len(self._window)

    def update(self, score_a: float, score_b: float, label: int) -> None:
        self._window.append((score_a, score_b, label))

    def get(self, *, fresh: bool = False) -> AUCComparison | None:
        """``None`` until the window holds two of each class. Kept until the next update
        (callers ask once per batch), or until it is due when not ``exact``; ``fresh``: of
        the window as it is now, whatever the policy."""
        if self._refresh.due(self._window.appended, len(self._window),
                             always=self._exact or fresh):
            self._cached = self._compute()
        return self._cached

    def _compute(self) -> AUCComparison | None:
        if not len(self._window):
            return None
        data = self._window.rows()
        positives = int(data[:, 2].sum())
        if positives < 2 or len(data) - positives < 2:
            return None
        return delong(data[:, 0], data[:, 1], data[:, 2])
