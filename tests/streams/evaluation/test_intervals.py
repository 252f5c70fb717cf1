"""Interval evaluation: the interval score, the empirical-quantile baseline, the rolling
window against a NumPy recomputation, and online tracking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tickcast.streams.evaluation.intervals import (
    THETA_RANGE,
    RollingIntervals,
    empirical_bounds,
    interval_score,
    sorted_quantiles,
    track,
    tracked,
    widen,
)


def test_interval_score_is_the_width_plus_the_scaled_miss() -> None:
    lo, hi = np.array([9.0, 9.0, 9.0]), np.array([11.0, 11.0, 11.0])
    y = np.array([10.0, 8.0, 12.5])
    # inside: the width; below by 1 at 80 %: 2 + (2 / 0.2) * 1; above by 1.5: 2 + 10 * 1.5
    assert interval_score(lo, hi, y, 0.8).tolist() == pytest.approx([2.0, 12.0, 17.0])
    assert interval_score(lo, hi, y, 0.95).tolist() == pytest.approx([2.0, 42.0, 62.0])
    with pytest.raises(ValueError, match="level"):
        interval_score(lo, hi, y, 1.0)


def test_interval_score_is_smallest_at_the_true_quantiles() -> None:
    """Proper: on normal outcomes, the true 80 % interval beats a narrower and a wider one."""
    y = np.random.default_rng(0).standard_normal(200_000)
    z = 1.2815515655446004  # the standard normal's 90 % quantile
    scores = {f: interval_score(np.full_like(y, -z * f), np.full_like(y, z * f), y, 0.8).mean()
              for f in (0.8, 1.0, 1.25)}
    assert scores[1.0] < scores[0.8]
    assert scores[1.0] < scores[1.25]


def test_empirical_bounds_are_the_quantiles_of_each_rows_returns() -> None:
    rng = np.random.default_rng(1)
    history = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (4, 61)), axis=1))
    got = empirical_bounds(history, (0.8, 0.95))
    for i, row in enumerate(history):
        r = np.diff(np.log(row))
        for j, level in enumerate((0.8, 0.95)):
            lo, hi = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
            assert got[i, j].tolist() == pytest.approx([row[-1] * math.exp(lo),
                                                        row[-1] * math.exp(hi)])
    with pytest.raises(ValueError, match="at least"):
        empirical_bounds(history[:, :10], (0.8,))


def test_sorted_quantiles_are_numpys_to_the_last_bit() -> None:
    """Every row length the baseline can see (its window is 20..768 returns) and every tail
    it serves, plus ties and the extremes: the same floats as ``np.quantile`` (fails if numpy
    changes its default method's arithmetic)."""
    rng = np.random.default_rng(3)
    q = np.array([0.0, 0.025, 0.05, 0.1, 0.2, 0.5, 0.8, 0.9, 0.95, 0.975, 1.0])
    for m in range(2, 800):
        rows = rng.normal(0, 0.01, (3, m))
        rows[0] = rows[0].round(3)  # ties
        got = sorted_quantiles(np.sort(rows, axis=1), q)
        assert np.array_equal(got, np.quantile(rows, q, axis=1).T), m


def test_rolling_intervals_equal_numpy_over_the_last_rows() -> None:
    rng = np.random.default_rng(2)
    window, n = 50, 173  # wraps the ring three times
    r = RollingIntervals(window)
    rows = []
    for t in range(n):
        last = 100 + rng.normal()
        actual = last * math.exp(rng.normal(0, 0.01))
        lstm = sorted(last * np.exp(rng.normal(0, 0.01, 4)))
        model = [lstm[1], lstm[2], lstm[0], lstm[3]]
        base = None if t % 7 == 0 else [last * 0.99, last * 1.01, last * 0.98, last * 1.02]
        r.update(last=last, actual=actual, bounds={"lstm": model, "baseline": base})
        rows.append((last, actual, model, base))
    assert len(r) == window
    got = r.get()
    recent = rows[-window:]
    for name, pick in (("lstm", lambda row: row[2]), ("baseline", lambda row: row[3])):
        held = [row for row in recent if pick(row) is not None]
        for j, level in enumerate((0.8, 0.95)):
            lo = np.array([pick(row)[2 * j] for row in held])
            hi = np.array([pick(row)[2 * j + 1] for row in held])
            last = np.array([row[0] for row in held])
            y = np.array([row[1] for row in held])
            expect = got[name, level]
            assert expect["n"] == len(held)
            assert expect["coverage"] == pytest.approx(np.mean((lo <= y) & (y <= hi)))
            assert expect["width"] == pytest.approx(np.mean((hi - lo) / last))
            assert expect["score"] == pytest.approx(
                np.mean(interval_score(lo, hi, y, level) / last))


def test_widen_moves_both_bounds_out_in_volatility_units_and_never_crosses() -> None:
    out = widen([99.0, 101.0, 98.0, 103.0], 0.01, [1.0, 0.0])
    assert out[:2] == pytest.approx([99.0 * math.exp(-0.01), 101.0 * math.exp(0.01)])
    assert out[2:] == [98.0, 103.0]
    narrowed = widen([99.9, 100.1], 0.01, [-2.0])
    assert narrowed[0] == narrowed[1] == pytest.approx(math.sqrt(99.9 * 100.1))
    # The 80 % interval widened past the 95 % one: the 95 % one still contains it.
    nested = widen([99.0, 101.0, 98.5, 101.5], 0.01, [1.0, 0.0])
    assert nested[2] == nested[0]
    assert nested[3] == nested[1]


def test_track_steps_by_the_miss_minus_its_nominal_rate_within_range() -> None:
    theta = track([0.0, 0.0], [99.0, 101.0, 98.0, 102.0], 101.5, (0.8, 0.95), 0.1)
    assert theta == pytest.approx([0.1 * (1 - 0.2), 0.1 * (0 - 0.05)])
    assert track([THETA_RANGE[1]], [1.0, 2.0], 3.0, (0.8,), 1.0) == [THETA_RANGE[1]]


@pytest.mark.parametrize("factor", [0.6, 1.0, 1.8])
def test_tracking_brings_too_narrow_or_too_wide_intervals_to_their_level(factor: float) -> None:
    """Normal returns served intervals `factor` times the true width: after tracking, the
    share covered is the nominal one (the long-run guarantee), whatever the factor."""
    rng = np.random.default_rng(3)
    n, sigma = 5000, 0.01
    actual = 100 * np.exp(rng.normal(0, sigma, n))
    z = np.array([1.2815515655446004, 1.959963984540054]) * factor
    static = np.stack([np.stack([100 * np.exp(-z * sigma), 100 * np.exp(z * sigma)], axis=1)] * n)
    served = tracked(static, np.full(n, sigma), actual, (0.8, 0.95), rate=0.05)
    for j, level in enumerate((0.8, 0.95)):
        covered = np.mean((served[:, j, 0] <= actual) & (actual <= served[:, j, 1]))
        assert covered == pytest.approx(level, abs=0.01)
    if factor != 1.0:  # the static intervals alone are off by far more
        static_cover = np.mean((static[:, 0, 0] <= actual) & (actual <= static[:, 0, 1]))
        assert abs(static_cover - 0.8) > 0.1
