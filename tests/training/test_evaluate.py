"""Every evaluation number equals scikit-learn's on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from tickcast.training.evaluate import (
    confusion,
    direction_metrics,
    regression_metrics,
    roc_auc,
    roc_curve,
)


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_and_curve_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    scores = np.round(rng.normal(0.3 * y, 1.0), 1)  # many ties
    assert roc_auc(y, scores) == pytest.approx(sk.roc_auc_score(y, scores), abs=1e-12)
    fpr, tpr, thresholds = roc_curve(y, scores)
    sk_fpr, sk_tpr, sk_thr = sk.roc_curve(y, scores, drop_intermediate=False)
    assert np.allclose(fpr, sk_fpr)
    assert np.allclose(tpr, sk_tpr)
    assert np.allclose(thresholds[1:], sk_thr[1:])
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(y, scores), abs=1e-12)


@pytest.mark.parametrize("threshold", [-0.5, 0.0, 0.3, 2.0])
def test_confusion_matrix_tpr_fpr_match_sklearn(threshold: float) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    scores = rng.normal(0.5 * y, 1.0)
    cm = confusion(y, scores, threshold)
    tn, fp, fn, tp = sk.confusion_matrix(y, scores >= threshold, labels=[0, 1]).ravel()
    assert (cm.tn, cm.fp, cm.fn, cm.tp) == (tn, fp, fn, tp)
    assert cm.tpr == pytest.approx(sk.recall_score(y, scores >= threshold, zero_division=0))
    assert cm.fpr == pytest.approx(fp / (fp + tn))
    assert cm.accuracy == pytest.approx(sk.accuracy_score(y, scores >= threshold))


def test_regression_and_direction_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(2)
    last = 100 + np.cumsum(rng.normal(0, 1, 200))
    actual = last + rng.normal(0, 1, 200)
    predicted = last + rng.normal(0, 1, 200)
    m = regression_metrics(actual, predicted)
    assert m["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(actual, predicted)))
    assert m["mae"] == pytest.approx(sk.mean_absolute_error(actual, predicted))
    assert m["mape"] == pytest.approx(100 * sk.mean_absolute_percentage_error(actual,
                                                                              predicted))
    d = direction_metrics(last, actual, predicted)
    up = (actual > last).astype(int)
    assert d["direction_accuracy"] == pytest.approx(sk.accuracy_score(up, predicted > last))
    assert d["direction_auc"] == pytest.approx(sk.roc_auc_score(up, predicted - last))


def test_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.ones(5), np.arange(5))
