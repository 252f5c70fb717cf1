"""Agreement and kappa against sklearn; DeLong's interval against a bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from tickcast.streams.evaluation import PairedAUC, RollingAgreement, delong


@pytest.mark.parametrize("seed", range(3))
def test_rolling_agreement_and_kappa_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.random(300) < 0.6
    b = np.where(rng.random(300) < 0.7, a, ~a)
    rolling = RollingAgreement(100)
    for x, y in zip(a, b, strict=True):
        rolling.update(bool(x), bool(y))
    assert rolling.agreement() == pytest.approx(np.mean(a[-100:] == b[-100:]))
    assert rolling.kappa() == pytest.approx(cohen_kappa_score(a[-100:], b[-100:]))


def test_kappa_is_undefined_when_both_raters_are_constant() -> None:
    rolling = RollingAgreement(5)
    for _ in range(5):
        rolling.update(True, True)
    assert rolling.agreement() == 1.0
    assert rolling.kappa() is None


def test_delong_matches_sklearn_aucs_and_a_bootstrap_interval() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 400)
    a = rng.normal(1.0 * y, 1.0)
    b = 0.6 * a + rng.normal(0.3 * y, 1.0)
    result = delong(a, b, y)
    assert result.auc_a == pytest.approx(roc_auc_score(y, a))
    assert result.auc_b == pytest.approx(roc_auc_score(y, b))
    diffs = []
    for _ in range(400):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            diffs.append(roc_auc_score(y[idx], a[idx]) - roc_auc_score(y[idx], b[idx]))
    boot_sd = np.std(diffs)
    delong_sd = (result.high - result.low) / (2 * 1.959963984540054)
    assert delong_sd == pytest.approx(boot_sd, rel=0.2)
    assert result.low < result.diff < result.high


def test_paired_window_needs_two_of_each_class() -> None:
    paired = PairedAUC(10)
    for s, y in [(0.9, 1), (0.1, 0), (0.8, 1)]:
        paired.update(s, s, y)
    assert paired.get() is None
    paired.update(0.2, 0.3, 0)
    got = paired.get()
    assert got is not None
    assert got.n == 4


def test_delong_equals_the_pairwise_definition_with_ties() -> None:
    """The sorted-search placement values equal the m x n pairwise comparisons of DeLong's
    definition (ties count 1/2), on scores rounded so that ties are common."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        y = rng.integers(0, 2, 300).astype(bool)
        a, b = np.round(rng.random(300), 2), np.round(rng.random(300) * 0.5 + 0.5 * y, 1)
        pos, neg = np.vstack([a[y], b[y]]), np.vstack([a[~y], b[~y]])
        psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
        v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
        c10, c01 = np.cov(v10), np.cov(v01)
        var = ((c10[0, 0] + c10[1, 1] - 2 * c10[0, 1]) / y.sum()
               + (c01[0, 0] + c01[1, 1] - 2 * c01[0, 1]) / (~y).sum())
        got = delong(a, b, y)
        assert (got.auc_a, got.auc_b) == pytest.approx(tuple(v10.mean(axis=1)), abs=1e-12)
        assert got.high - got.diff == pytest.approx(1.959963984540054 * np.sqrt(var), abs=1e-12)


def test_a_monitoring_comparison_is_recomputed_once_a_hundredth_of_its_window_is_new() -> None:
    """Not exact: a DeLong pass sorts the whole window, so a window of 5,000 or more is
    compared again only once 1 % of it is new; smaller, after every update. Exact (the
    gate's): always."""
    rng = np.random.default_rng(3)
    rows = [(float(rng.random()), float(rng.random()), int(rng.random() < 0.5))
            for _ in range(6_100)]
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0  # a second between every two reads: only the rows decide here
        return now[0]

    lazy, exact = PairedAUC(6_000, exact=False, clock=clock), PairedAUC(6_000)
    for row in rows[:150]:
        lazy.update(*row), exact.update(*row)
        assert lazy.get() == exact.get()  # under 5,000 held: every update
    for row in rows[150:6_000]:
        lazy.update(*row), exact.update(*row)
    fresh = lazy.get()
    assert fresh == exact.get()
    for row in rows[6_000:6_059]:  # 6,000 held: due after 60 new
        lazy.update(*row), exact.update(*row)
        assert lazy.get() is fresh
    assert exact.get() != fresh
    lazy.update(*rows[6_059]), exact.update(*rows[6_059])
    assert lazy.get() == exact.get() == delong(*np.array(rows[60:6_060]).T)
    lazy.update(*rows[6_060]), exact.update(*rows[6_060])
    assert lazy.get() != exact.get()  # one row behind
    assert lazy.get(fresh=True) == exact.get()  # what a backtest asks for


def test_a_large_monitoring_comparison_is_recomputed_at_most_once_a_second() -> None:
    rng = np.random.default_rng(4)
    rows = [(float(rng.random()), float(rng.random()), int(rng.random() < 0.5))
            for _ in range(6_200)]
    now = [100.0]
    lazy = PairedAUC(6_000, exact=False, clock=lambda: now[0])
    for row in rows[:6_000]:
        lazy.update(*row)
    first = lazy.get()
    for row in rows[6_000:6_200]:  # over a hundredth new, within the same second
        lazy.update(*row)
    now[0] += 0.5
    assert lazy.get() is first
    now[0] += 0.5
    assert lazy.get() == delong(*np.array(rows[200:6_200]).T)
