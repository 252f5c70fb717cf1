"""Diebold–Mariano and MASE against an independent implementation and worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tickcast.streams.evaluation.forecast_error import RollingForecastErrors
from tickcast.streams.evaluation.forecast_tests import diebold_mariano, mase, naive_scale


@pytest.mark.parametrize("h", [1, 2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dm_equals_the_dieboldmariano_package(h: int, seed: int) -> None:
    import dieboldmariano as dm  # a dev dependency: its absence fails the test
    rng = np.random.default_rng(seed)
    n = 40 + 60 * seed
    actual = rng.normal(size=n).cumsum()
    p1 = actual + rng.normal(size=n)
    p2 = actual + rng.normal(scale=1.15, size=n)
    stat, p = dm.dm_test(actual.tolist(), p1.tolist(), p2.tolist(), h=h,
                         variance_estimator="bartlett")
    ours = diebold_mariano((actual - p1) ** 2, (actual - p2) ** 2, h=h)
    assert ours is not None
    assert ours.n == n
    assert ours.stat == pytest.approx(stat, rel=1e-9)
    assert ours.p_value == pytest.approx(p, rel=1e-6, abs=1e-12)


def test_dm_worked_example_by_hand() -> None:
    # d = [-3, 0, -0.75, -1.25, 1.25]: mean -0.75, population variance 2.425 / 5 per mean,
    # HLN factor sqrt((5 + 1 - 2) / 5); t with 4 degrees of freedom.
    result = diebold_mariano([1.0, 4.0, 0.25, 1.0, 2.25], [4.0, 4.0, 1.0, 2.25, 1.0])
    assert result is not None
    d = np.array([-3.0, 0.0, -0.75, -1.25, 1.25])
    expected = math.sqrt(4 / 5) * d.mean() / math.sqrt(d.var() / 5)
    assert result.stat == pytest.approx(expected)
    assert result.mean_diff == pytest.approx(-0.75)
    from scipy.stats import t

    assert result.p_value == pytest.approx(2 * t.sf(abs(expected), 4))


def test_dm_sign_says_which_forecast_is_better() -> None:
    rng = np.random.default_rng(7)
    good, bad = rng.normal(scale=0.5, size=300) ** 2, rng.normal(scale=1.0, size=300) ** 2
    result = diebold_mariano(good, bad)
    assert result is not None
    assert result.stat < 0
    assert result.p_value < 0.01
    flipped = diebold_mariano(bad, good)
    assert flipped is not None
    assert flipped.stat == pytest.approx(-result.stat)


def test_dm_without_evidence_is_none_and_bad_input_is_refused() -> None:
    assert diebold_mariano([1.0, 2.0], [2.0, 1.0]) is None  # too few pairs
    assert diebold_mariano([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) is None  # identical: no variance
    with pytest.raises(ValueError, match="aligned"):
        diebold_mariano([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        diebold_mariano([1.0, math.nan, 3.0], [1.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="horizon"):
        diebold_mariano([1.0, 2.0, 3.0], [1.0, 2.0, 2.0], h=0)


def test_dm_holds_its_size_under_the_null() -> None:
    """Two equally good forecasts: a 5 % test rejects about 5 % of the time."""
    rng = np.random.default_rng(11)
    rejected = 0
    trials = 2000
    for _ in range(trials):
        a, b = rng.normal(size=(2, 50)) ** 2
        result = diebold_mariano(a, b)
        rejected += result is not None and result.p_value < 0.05
    assert 0.03 < rejected / trials < 0.07


def test_mase_and_the_naive_scale() -> None:
    assert naive_scale([10.0, 11.0, 10.0, 12.0]) == pytest.approx(4 / 3)
    assert naive_scale([5.0]) is None
    assert naive_scale([5.0, 5.0, 5.0]) is None  # flat: nothing to scale by
    assert mase([1.0, -2.0], [1.0, 4.0]) == pytest.approx(0.75)
    assert mase([], []) is None
    with pytest.raises(ValueError, match="positive"):
        mase([1.0], [0.0])


def test_rolling_errors_report_mase_and_dm_against_naive() -> None:
    rng = np.random.default_rng(3)
    errors = RollingForecastErrors(window_size=400)
    price = 100.0
    for _ in range(600):
        actual = price + rng.normal()
        # A forecast that knows half of the next move beats persistence.
        forecast = price + 0.5 * (actual - price)
        errors.update(last=price, forecast=forecast, actual=actual, scale=1.0)
        price = actual
    values = errors.get()
    assert values["model_mase"] == pytest.approx(values["naive_mase"] / 2)
    assert values["dm_stat"] < 0
    assert values["dm_p_value"] < 1e-6
    # Rows without a usable scale count in RMSE but not in MASE or DM.
    unscaled = RollingForecastErrors(window_size=10)
    unscaled.update(last=1.0, forecast=1.1, actual=1.2, scale=None)
    values = unscaled.get()
    assert math.isnan(values["model_mase"])
    assert math.isnan(values["dm_stat"])
    assert values["model_rmse"] == pytest.approx(0.1)


def test_the_row_ring_holds_the_last_rows_in_order() -> None:
    from collections import deque

    from tickcast.streams.evaluation.forecast_error import RowRing

    ring, reference = RowRing(5, 2), deque(maxlen=5)
    assert len(ring) == 0
    for i in range(13):
        ring.append((float(i), float(-i)))
        reference.append((i, -i))
        assert np.array_equal(ring.rows(), np.asarray(reference, dtype=float)), i
    with pytest.raises(ValueError, match="size"):
        RowRing(0, 2)


@pytest.mark.parametrize("between_reads", [1, 2, 3, 5, 7, 12])
def test_the_row_ring_is_the_same_however_many_rows_arrive_between_reads(
        between_reads: int) -> None:
    from collections import deque

    from tickcast.streams.evaluation.forecast_error import RowRing

    ring, reference = RowRing(5, 2), deque(maxlen=5)
    for i in range(40):
        ring.append((float(i), float(-i)))
        reference.append((i, -i))
        assert len(ring) == len(reference)
        if i % between_reads == 0:
            assert np.array_equal(ring.rows(), np.asarray(reference, dtype=float)), i
    assert ring.appended == 40


def test_the_row_ring_refuses_rows_of_another_width() -> None:
    from tickcast.streams.evaluation.forecast_error import RowRing

    ring = RowRing(5, 2)
    ring.append((1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="rows of 2 values"):
        ring.rows()


def test_refresh_is_due_after_every_row_below_5000_then_after_a_hundredth() -> None:
    from tickcast.streams.evaluation.forecast_error import refresh_due

    assert refresh_due(1, 0)
    assert refresh_due(1, 4_999)
    assert not refresh_due(0, 10)
    assert not refresh_due(49, 5_000)
    assert refresh_due(50, 5_000)
    assert not refresh_due(499, 50_000)
    assert refresh_due(500, 50_000)
    # a large window at most once a second, however fast its rows arrive
    assert not refresh_due(5_000, 50_000, 0.9)
    assert refresh_due(500, 50_000, 1.0)
    assert refresh_due(1, 4_999, 0.0)  # a small one stays exact


@pytest.mark.parametrize("window", [7, 60, 400])
def test_direction_auc_is_sklearns_over_the_window_moves(window: int) -> None:
    """The direction AUC of the last ``window`` scored forecasts: the predicted move against
    whether the price went up, over the rows where it moved at all."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(window)
    errors = RollingForecastErrors(window_size=window)
    rows = []
    price = 100.0
    for _ in range(500):
        # Rounded to cents, so flat days and tied predicted moves both happen.
        actual = round(price + rng.choice([-1, 0, 1]) * rng.integers(0, 3) * 0.01, 2)
        forecast = round(price + 0.3 * (actual - price) + rng.normal(0, 0.01), 2)
        errors.update(last=price, forecast=forecast, actual=actual, scale=1.0)
        rows.append((price, forecast, actual))
        last, predicted, came = (np.array(c) for c in zip(*rows[-window:], strict=True))
        moved = came != last
        up = came[moved] > last[moved]
        got = errors.get()["direction_auc"]
        if up.all() or not up.any():
            assert math.isnan(got)
        else:
            assert got == pytest.approx(roc_auc_score(up, (predicted - last)[moved]), abs=1e-12)
        price = actual
