"""Is one forecaster better than another? The Diebold–Mariano test and MASE.

**Diebold–Mariano** (Diebold & Mariano, 1995) tests equal expected loss of two forecasts of
the same targets from the loss differential ``d_t = loss_a,t - loss_b,t``. The mean of ``d`` is
divided by its long-run standard error, estimated with Newey–West (Bartlett) weights over
``h - 1`` lags, as ``h``-step forecast errors are autocorrelated up to lag ``h - 1``. The
Harvey, Leybourne & Newbold (1997) correction scales the statistic by
``sqrt((n + 1 - 2h + h(h - 1)/n) / n)`` and reads it against Student's t with ``n - 1`` degrees
of freedom, which keeps the size honest on small samples. A negative statistic means ``a`` has
the smaller loss.

**MASE** (Hyndman & Koehler, 2006) divides each absolute error by the in-sample mean absolute
error of the naive one-step forecast, so errors of instruments with different price levels
are comparable: below 1, the forecast beats what persistence did in-sample.

>>> r = diebold_mariano([1.0, 4.0, 0.25, 1.0, 2.25], [4.0, 4.0, 1.0, 2.25, 1.0])
>>> round(r.stat, 4), round(r.p_value, 4), r.n
(-1.0674, 0.3459, 5)
>>> mase([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DMResult", "diebold_mariano", "mase", "naive_scale"]


@dataclass(frozen=True, slots=True)
class DMResult:
    stat: float
    """The HLN-corrected statistic; negative when ``a`` has the smaller mean loss."""
    p_value: float
    """Two-sided, from Student's t with ``n - 1`` degrees of freedom."""
    mean_diff: float
    """Mean of ``loss_a - loss_b``."""
    n: int


def diebold_mariano(loss_a: Sequence[float] | np.ndarray, loss_b: Sequence[float] | np.ndarray,
                    *, h: int = 1) -> DMResult | None:
    """DM test of equal expected loss for two aligned loss series (same targets, same order).

    ``None`` when there is no evidence to weigh: fewer than three pairs, or a loss
    differential with zero variance (identical forecasts).
    """
    a, b = np.asarray(loss_a, dtype=np.float64), np.asarray(loss_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"loss series must be 1-D and aligned, got {a.shape} and {b.shape}")
    if h < 1:
        raise ValueError(f"the horizon must be >= 1, got {h}")
    n = a.size
    if n < max(3, h + 1):
        return None
    d = a - b
    if not np.all(np.isfinite(d)):
        raise ValueError("loss series must be finite")
    mean = float(d.mean())
    centred = d - mean
    # Newey–West long-run variance of the mean with Bartlett weights over h - 1 lags.
    variance = float(centred @ centred) / n
    for lag in range(1, h):
        weight = 1.0 - lag / h
        variance += 2.0 * weight * float(centred[lag:] @ centred[:-lag]) / n
    variance /= n
    if not variance > 0.0:
        return None
    correction = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    stat = correction * mean / math.sqrt(variance)
    return DMResult(stat=stat, p_value=_t_two_sided(stat, n - 1), mean_diff=mean, n=n)


def _t_two_sided(stat: float, df: int) -> float:
    from scipy.stats import t

    return float(2.0 * t.sf(abs(stat), df))


def naive_scale(history: Sequence[float] | np.ndarray) -> float | None:
    """In-sample mean absolute error of the naive one-step forecast over ``history``; ``None``
    when it is undefined or zero (fewer than two points, or a flat history)."""
    values = np.asarray(history, dtype=np.float64)
    if values.size < 2:
        return None
    scale = float(np.mean(np.abs(np.diff(values))))
    return scale if scale > 0.0 and math.isfinite(scale) else None


def mase(abs_errors: Sequence[float] | np.ndarray, scales: Sequence[float] | np.ndarray
         ) -> float | None:
    """Mean of ``|e_t| / scale_t``: each error scaled by the naive in-sample error of its own
    series (see :func:`naive_scale`); ``None`` on no errors."""
    errors, scale = np.asarray(abs_errors, dtype=np.float64), np.asarray(scales, np.float64)
    if errors.shape != scale.shape:
        raise ValueError(f"errors and scales must align, got {errors.shape} and {scale.shape}")
    if errors.size == 0:
        return None
    if np.any(scale <= 0):
        raise ValueError("scales must be positive")
    return float(np.mean(np.abs(errors) / scale))
