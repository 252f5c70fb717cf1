"""Evaluation metrics, written out in NumPy so the reports show exactly what is computed.

Classification: ROC curve (TPR against FPR over every threshold), ROC AUC (Mann-Whitney, ties
counted one half), the confusion matrix at a threshold with TPR/FPR. Regression: RMSE, MAE,
MAPE, skill against a baseline, directional accuracy and the ROC AUC of the predicted direction.
Language models: perplexity. Tests check every number against scikit-learn on the same data
(perplexity against hand-computed values).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tickcast.streams.evaluation.rolling_auc import mann_whitney_auc

__all__ = [
    "Confusion",
    "confusion",
    "direction_metrics",
    "perplexity",
    "regression_metrics",
    "roc_auc",
    "roc_curve",
]


def _binary(labels: np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return y.astype(np.int64)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties one half (the
    workers' :func:`~tickcast.streams.evaluation.rolling_auc.mann_whitney_auc`)."""
    auc = mann_whitney_auc(scores, _binary(labels))
    if auc is None:
        raise ValueError("ROC AUC needs both classes")
    return auc


def roc_curve(labels: np.ndarray, scores: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: one point per distinct score, from (0, 0) to (1, 1)."""
    y = _binary(labels)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last_of_each]
    fps = (last_of_each + 1) - tps
    tpr = np.r_[0.0, tps / max(tps[-1], 1)]
    fpr = np.r_[0.0, fps / max(fps[-1], 1)]
    return fpr, tpr, np.r_[np.inf, s[last_of_each]]


@dataclass(frozen=True, slots=True)
class Confusion:
    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def tpr(self) -> float:
        """Sensitivity, recall: TP / (TP + FN)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def fpr(self) -> float:
        """Fall-out: FP / (FP + TN)."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else float("nan")

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.tn + self.fn
        return (self.tp + self.tn) / total if total else float("nan")

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "tpr": self.tpr, "fpr": self.fpr, "accuracy": self.accuracy}


def confusion(labels: np.ndarray, scores: np.ndarray, threshold: float) -> Confusion:
    """Predict positive when ``score >= threshold``."""
    y = _binary(labels).astype(bool)
    predicted = np.asarray(scores, dtype=np.float64) >= threshold
    return Confusion(threshold=float(threshold), tp=int((predicted & y).sum()),
                     fp=int((predicted & ~y).sum()), tn=int((~predicted & ~y).sum()),
                     fn=int((~predicted & y).sum()))


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    err = p - a
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))),
            "mape": float(np.mean(np.abs(err / a)) * 100.0)}


def direction_metrics(last: np.ndarray, actual: np.ndarray, predicted: np.ndarray
                      ) -> dict[str, float]:
    """How often the forecast gets the sign of the move right, and the ROC AUC of the
    predicted move as a score for "the price goes up" (flat days are left out)."""
    last = np.asarray(last, dtype=np.float64)
    moved = np.asarray(actual, dtype=np.float64) - last
    predicted_move = np.asarray(predicted, dtype=np.float64) - last
    keep = moved != 0
    up = (moved[keep] > 0).astype(int)
    result = {"direction_accuracy": float(np.mean((predicted_move[keep] > 0) == (up == 1)))}
    result["direction_auc"] = (roc_auc(up, predicted_move[keep]) if 0 < up.sum() < len(up)
                               else float("nan"))
    return result


def perplexity(log_probs: np.ndarray) -> float:
    """``exp(-mean log p)`` over every predicted token (natural logs): the number of equally
    likely choices a model is as unsure as, per token; lower is better."""
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.size == 0:
        raise ValueError("perplexity needs at least one predicted token")
    if np.any(lp > 1e-9) or np.any(np.isnan(lp)):
        raise ValueError("log probabilities must be <= 0 and not NaN")
    return float(np.exp(-lp.mean()))
