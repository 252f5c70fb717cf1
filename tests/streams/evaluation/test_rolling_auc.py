"""RollingAUC equals sklearn's roc_auc_score on every window, ties and all."""

from __future__ import annotations

import math
import random
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from tickcast.streams.evaluation import RollingAUC


def sklearn_auc(window: deque[tuple[float, int]]) -> float | None:
    labels = [y for _, y in window]
    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(labels, [s for s, _ in window]))


@pytest.mark.parametrize("window_size", [1, 2, 5, 50, 300])
@pytest.mark.parametrize("seed", range(4))
def test_matches_sklearn_after_every_update(window_size: int, seed: int) -> None:
    rng = random.Random(seed)
    auc, window = RollingAUC(window_size), deque(maxlen=window_size)
    for _ in range(400):
        label = int(rng.random() < 0.4)
        # Informative but noisy scores, rounded so ties are common.
        score = round(min(1.0, max(0.0, rng.gauss(0.4 + 0.2 * label, 0.2))), 2)
        auc.update(score, label)
        window.append((score, label))
        expected = sklearn_auc(window)
        got = auc.get()
        if expected is None:
            assert got is None
        else:
            assert got == pytest.approx(expected, abs=1e-12)
    assert len(auc) == min(window_size, 400)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(-1e6, 1e6),
                          st.integers(0, 1)), min_size=1, max_size=120),
       st.integers(1, 40))
def test_matches_sklearn_on_arbitrary_streams(pairs: list[tuple[float, int]], size: int) -> None:
    auc, window = RollingAUC(size), deque(maxlen=size)
    for score, label in pairs:
        auc.update(score, label)
        window.append((score, label))
    expected = sklearn_auc(window)
    assert (auc.get() is None) == (expected is None)
    if expected is not None:
        assert auc.get() == pytest.approx(expected, abs=1e-12)


def test_all_ties_is_one_half() -> None:
    auc = RollingAUC(10)
    for label in [0, 1, 0, 1]:
        auc.update(0.3, label)
    assert auc.get() == 0.5


def test_one_class_window_is_undefined_until_the_other_class_arrives() -> None:
    auc = RollingAUC(3)
    for _ in range(5):
        auc.update(0.9, 1)
    assert auc.get() is None
    assert (auc.positives, auc.negatives) == (3, 0)
    auc.update(0.1, 0)
    assert auc.get() == 1.0
    for _ in range(3):  # the negatives push every positive out: one class again
        auc.update(0.2, 0)
    assert auc.get() is None


def test_revert_undoes_update() -> None:
    auc = RollingAUC(100)
    data = list(zip(np.linspace(0, 1, 20), [0, 1] * 10, strict=True))
    for s, y in data:
        auc.update(float(s), y)
    before = auc.get()
    auc.update(0.5, 1)
    auc.revert(0.5, 1)
    assert auc.get() == before


def test_revert_of_a_pair_not_in_the_window_is_refused() -> None:
    auc = RollingAUC(3)
    auc.update(0.5, 1)
    with pytest.raises(ValueError, match="not in the window"):
        auc.revert(0.5, 0)
    assert (auc.positives, auc.negatives) == (1, 0)


def test_get_is_computed_again_only_after_a_change() -> None:
    auc = RollingAUC(4)
    for score, label in [(0.1, 0), (0.9, 1)]:
        auc.update(score, label)
    assert auc.get() == 1.0
    auc._window[0] = (0.95, 0)  # behind its back: a cached value does not see it
    assert auc.get() == 1.0
    auc.update(0.5, 1)  # a change: the whole window is read again
    assert auc.get() == pytest.approx(0.0)


@pytest.mark.parametrize(("score", "label"), [(math.nan, 1), (math.inf, 0), (0.5, 2)])
def test_rejects_invalid_input(score: float, label: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        RollingAUC(5).update(score, label)


def test_rejects_empty_window() -> None:
    with pytest.raises(ValueError, match="window_size"):
        RollingAUC(0)


@pytest.mark.parametrize("seed", range(6))
def test_mann_whitney_auc_matches_sklearn_with_ties(seed: int) -> None:
    from tickcast.streams.evaluation.rolling_auc import mann_whitney_auc

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    labels = (rng.random(n) < 0.3 + 0.4 * rng.random()).astype(int)
    scores = np.round(rng.normal(0.3 * labels, 1.0), 1)  # rounded: ties are common
    got = mann_whitney_auc(scores, labels)
    if labels.min() == labels.max():
        assert got is None
    else:
        assert got == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_mann_whitney_auc_is_none_without_both_classes() -> None:
    from tickcast.streams.evaluation.rolling_auc import mann_whitney_auc

    assert mann_whitney_auc(np.array([0.2, 0.5]), np.array([1, 1])) is None
    assert mann_whitney_auc(np.array([]), np.array([])) is None
