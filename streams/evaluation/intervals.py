"""Are the intervals honest? Coverage, width and the interval score of central intervals, and
the empirical-quantile baseline they are judged against.

**Interval score** (Winkler 1972; Gneiting & Raftery 2007, eq. 43) of a central interval
``[l, u]`` at nominal coverage ``1 - a``, for the outcome ``y``::

    (u - l) + (2 / a) * (l - y) * [y < l] + (2 / a) * (y - u) * [y > u]

Lower is better. It is *proper*: its expectation is smallest for the true quantiles, so a
forecaster cannot improve it by claiming narrower (or wider) intervals than it believes --
unlike coverage alone, which a uselessly wide interval always wins.

**Online tracking** (quantile tracking, the "P" of conformal PID control: Angelopoulos,
Candès & Tibshirani 2023; Gibbs & Candès 2021 adapt the level instead). A model calibrated on
one instrument's history can still be a little too narrow or too wide for another (returns
of another shape, a market that changed). Per symbol and level, an offset ``theta`` (in the
window's volatility unit) widens the interval; after each outcome it moves by
``rate * (missed - (1 - level))``. Whatever the returns, the long-run miss rate then equals
``1 - level`` up to ``(theta_T - theta_0) / (rate * T)``: coverage is honest per symbol.

**Baseline**: persistence with the empirical quantiles of the symbol's last ``B`` log
returns: ``[last * exp(q_lo), last * exp(q_hi)]``. It knows the instrument's recent
volatility but not how it clusters, which is what a model of the window can add.

>>> interval_score(np.array([9.0]), np.array([11.0]), np.array([12.0]), 0.8).round(2)
array([12.])
>>> r = RollingIntervals(window_size=2, levels=(0.8,))
>>> r.update(last=10.0, actual=10.5, bounds={"lstm": [9.0, 11.0], "baseline": [9.5, 10.4]})
>>> g = r.get()
>>> g["lstm", 0.8]["coverage"], g["baseline", 0.8]["coverage"]
(1.0, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np

from tickcast.models.preprocessing import SERVED_LEVELS
from tickcast.streams.evaluation.forecast_error import RowRing

__all__ = ["BASELINE_MIN_RETURNS", "MODELS", "THETA_RANGE", "TRACKING_RATE", "RollingIntervals",
           "empirical_bounds", "interval_score", "sorted_quantiles", "track", "tracked",
           "widen"]

MODELS: Final = ("lstm", "baseline")
BASELINE_MIN_RETURNS: Final = 20
"""Fewer recent returns than this give no empirical quantiles worth the name."""
TRACKING_RATE: Final = 0.05
"""Default step of the online tracking (``TICKCAST_INTERVAL_TRACKING_RATE``)."""
THETA_RANGE: Final = (-2.0, 4.0)
"""Bounds of a tracking offset, in window-volatility units (the guarantee needs bounded
offsets; a symbol that needed more has intervals that mean nothing anyway)."""


def widen(bounds: Sequence[float], unit: float, theta: Sequence[float]) -> list[float]:
    """``[lower_1, upper_1, lower_2, upper_2, ...]`` (one pair per level, levels ascending)
    moved out by each level's ``theta`` window-volatility units on both sides (in by a
    negative one, never past each other); each level's interval still contains the one
    below it."""
    out = list(bounds)
    for j, t in enumerate(theta):
        lo, hi = out[2 * j], out[2 * j + 1]
        if t:
            factor = math.exp(t * unit)
            lo, hi = lo / factor, hi * factor
            if lo > hi:
                lo = hi = math.sqrt(lo * hi)
        if j:
            lo, hi = min(lo, out[2 * j - 2]), max(hi, out[2 * j - 1])
        out[2 * j], out[2 * j + 1] = lo, hi
    return out


def track(theta: Sequence[float], bounds: Sequence[float], actual: float,
          levels: Sequence[float], rate: float) -> list[float]:
    """The offsets after ``actual`` met the intervals ``bounds`` (flat, as :func:`widen`'s)
    served with ``theta``."""
    lo_t, hi_t = THETA_RANGE
    out = []
    for j, level in enumerate(levels):
        missed = 0.0 if bounds[2 * j] <= actual <= bounds[2 * j + 1] else 1.0
        out.append(min(hi_t, max(lo_t, theta[j] + rate * (missed - (1.0 - level)))))
    return out


def interval_score(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray,
                   level: float) -> np.ndarray:
    """The interval (Winkler) score of each central interval at nominal coverage ``level``."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    lo, hi, y = (np.asarray(v, dtype=np.float64) for v in (lower, upper, actual))
    alpha = 1.0 - level
    return ((hi - lo) + (2.0 / alpha) * np.maximum(lo - y, 0.0)
            + (2.0 / alpha) * np.maximum(y - hi, 0.0))


def empirical_bounds(history: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """``(n, B + 1)`` recent closes per row (the last is the forecast's base) ->
    ``(n, len(levels), 2)`` baseline bounds: the last close moved by the empirical quantiles
    of the row's ``B`` log returns.

    The quantiles are ``np.quantile``'s default (linear interpolation between order
    statistics), computed from one sort of each row: the same numbers, about a fifth of the
    time for rows of 250 returns (``np.quantile`` partitions each row again per call and
    costs more in Python around it)."""
    h = np.asarray(history, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] < BASELINE_MIN_RETURNS + 1:
        raise ValueError(f"need rows of at least {BASELINE_MIN_RETURNS + 1} closes, got "
                         f"shape {h.shape}")
    returns = np.sort(np.diff(np.log(h), axis=1), axis=1)
    tails = np.array([q for level in levels for q in ((1 - level) / 2, (1 + level) / 2)])
    quantiles = sorted_quantiles(returns, tails)  # (n, 2 * len(levels))
    return (h[:, -1:] * np.exp(quantiles)).reshape(len(h), len(levels), 2)


def sorted_quantiles(rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``(n, m)`` rows, each sorted ascending -> ``(n, len(q))``: the quantiles ``q`` of each
    row exactly as ``np.quantile(rows, q, axis=1).T`` computes them (its ``linear`` method:
    the virtual index ``(m - 1) q``, and numpy's two-sided interpolation between the order
    statistics around it)."""
    m = rows.shape[1]
    index = (m - 1) * np.asarray(q, dtype=np.float64)
    below = np.floor(index).astype(np.intp)
    above = np.minimum(below + 1, m - 1)
    t = index - below
    a, b = rows[:, below], rows[:, above]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


class RollingIntervals:
    """Over the last ``window_size`` scored forecasts, per model and level: coverage (the
    share of outcomes inside the interval), mean width and mean interval score, both relative
    to the last price (so instruments of different price levels weigh alike).

    A row keeps the last price, the outcome and every model's bounds; the statistics are
    computed over the window when read (once per batch), not per row. Rows where a model had
    no interval (``None``) count for the other models only.
    """

    def __init__(self, window_size: int, levels: Sequence[float] = SERVED_LEVELS,
                 models: Sequence[str] = MODELS) -> None:
        self.levels = tuple(levels)
        self.models = tuple(models)
        self._nan = (math.nan,) * (2 * len(self.levels))
        self._rows = RowRing(window_size, 2 + 2 * len(self.levels) * len(self.models))

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def updates(self) -> int:
        """Rows ever added: :meth:`get` changes only when this does."""
        return self._rows.appended

    def update(self, *, last: float, actual: float,
               bounds: Mapping[str, Sequence[float] | None]) -> None:
        """``bounds[model]``: ``[lower, upper]`` per level in :attr:`levels` order, flat."""
        if not (math.isfinite(last) and math.isfinite(actual)) or last <= 0:
            raise ValueError(f"unusable interval row last={last} actual={actual}")
        row: tuple[float, ...] = (last, actual)
        for model in self.models:
            pairs = bounds.get(model)
            row += self._nan if pairs is None else tuple(pairs)
        self._rows.append(row)

    def get(self) -> dict[tuple[str, float], dict[str, float]]:
        """``{(model, level): {"coverage", "width", "score", "n"}}`` over the window."""
        if not self._rows:
            return {}
        rows = self._rows.rows()
        last, actual = rows[:, 0], rows[:, 1]
        out: dict[tuple[str, float], dict[str, float]] = {}
        col = 2
        for model in self.models:
            for level in self.levels:
                lo, hi = rows[:, col], rows[:, col + 1]
                col += 2
                held = np.isfinite(lo)
                if not held.any():
                    continue
                lo, hi, y, base = lo[held], hi[held], actual[held], last[held]
                out[model, level] = {
                    "coverage": float(np.mean((lo <= y) & (y <= hi))),
                    "width": float(np.mean((hi - lo) / base)),
                    "score": float(np.mean(interval_score(lo, hi, y, level) / base)),
                    "n": float(held.sum())}
        return out


def tracked(bounds: np.ndarray, units: np.ndarray, actual: np.ndarray,
            levels: Sequence[float], rate: float = TRACKING_RATE) -> np.ndarray:
    """One symbol's ``(n, L, 2)`` intervals, in time order, as the worker serves them: each
    widened by the offsets that the outcomes before it left (the worker's sequence of
    :func:`widen` and :func:`track`)."""
    out = np.array(bounds, dtype=np.float64, copy=True).reshape(len(bounds), -1)
    theta: list[float] | None = None
    for t in range(len(out)):
        served = out[t].tolist()
        if theta is not None:
            served = widen(served, float(units[t]), theta)
            out[t] = served
        if rate:
            theta = track(theta or [0.0] * len(levels), served, float(actual[t]), levels, rate)
    return out.reshape(np.shape(bounds))
