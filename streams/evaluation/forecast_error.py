"""Rolling forecast errors of a model and of naive persistence on the same ticks.

>>> e = RollingForecastErrors(window_size=3)
>>> for last, forecast, actual in [(10.0, 10.5, 11.0), (11.0, 11.0, 10.0), (10.0, 10.2, 10.4)]:
...     e.update(last=last, forecast=forecast, actual=actual, scale=0.5)
>>> round(e.get()["model_rmse"], 4), round(e.get()["naive_rmse"], 4)
(0.6557, 0.8485)
>>> round(e.get()["model_mase"], 4), round(e.get()["naive_mase"], 4)
(1.1333, 1.6)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from tickcast.streams.evaluation.forecast_tests import DMResult, diebold_mariano
from tickcast.streams.evaluation.rolling_auc import mann_whitney_auc

__all__ = ["EXACT_UP_TO", "REFRESH_EVERY_S", "REFRESH_PARTS", "Exports", "Refresh",
           "RollingForecastErrors", "RollingLossPairs", "RowRing", "refresh_due"]


REFRESH_PARTS: Final = 100
EXACT_UP_TO: Final = 5_000
REFRESH_EVERY_S: Final = 1.0


def refresh_due(new_rows: int, held: int, elapsed_s: float = math.inf) -> bool:
    """Whether a statistic over a window of ``held`` rows, ``new_rows`` of which arrived in
    the ``elapsed_s`` seconds since it was last computed, is due again: on any new row while
    the window holds fewer than :data:`EXACT_UP_TO` rows (the default windows: exact after
    every batch); for a larger window, once at least 1/:data:`REFRESH_PARTS` of it is new and
    :data:`REFRESH_EVERY_S` has passed. Computing a whole-window statistic costs in proportion
    to the window; this keeps its cost per row flat however large the window and however fast
    rows arrive, the exported figure trailing by under 1 % of its rows or one second of
    them, whichever is more (a gauge is scraped every few seconds)."""
    if held < EXACT_UP_TO:
        return new_rows >= 1
    return new_rows >= held // REFRESH_PARTS and elapsed_s >= REFRESH_EVERY_S


class Refresh:
    """When a whole-window statistic was last computed (rows appended then, and the time),
    and whether it is due again by :func:`refresh_due`."""

    __slots__ = ("_at", "_clock", "_updates")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._updates = 0
        self._at = -math.inf

    def due(self, updates: int, held: int, *, always: bool = False) -> bool:
        """Whether to compute again a statistic whose window has seen ``updates`` rows ever
        and holds ``held``; ``always``: on any new row. A ``True`` marks it computed now."""
        new = updates - self._updates
        if not new:
            return False
        now = self._clock()
        if not (always or refresh_due(new, held, now - self._at)):
            return False
        self._updates, self._at = updates, now
        return True


class Exports:
    """When each named whole-window statistic was last computed for export: a statistic is
    computed again once :func:`refresh_due` says so, and at once when the name is given a new
    object (a window that started again)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[object, Refresh]] = {}

    def due(self, name: str, stats: Any, clock: Callable[[], float]) -> bool:
        """Whether to compute ``stats`` (``.updates``: rows ever added; ``len``: rows held)
        again; a ``True`` marks it computed now. ``clock`` times a new object's refreshes."""
        of, refresh = self._last.get(name, (None, None))
        if of is stats and refresh is not None:
            return refresh.due(stats.updates, len(stats))
        refresh = Refresh(clock)  # a new object: exported at once
        refresh.due(stats.updates, len(stats), always=True)
        self._last[name] = (stats, refresh)
        return True

    def forget(self, name: str) -> None:
        self._last.pop(name, None)


class RowRing:
    """The last ``size`` rows of ``width`` floats, in a preallocated array. Appended rows wait
    in a list and are written in one slice assignment when the window is next read (once per
    batch), not one array write per row; reading the window is a view (no per-read conversion
    of Python tuples, which cost more than the statistics once per batch)."""

    def __init__(self, size: int, width: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._data = np.empty((size, width), dtype=np.float64)
        self._next = 0
        self._count = 0
        self._waiting: list[tuple[float, ...]] = []
        self.appended = 0
        """Rows ever appended (a version of the window's content)."""

    def __len__(self) -> int:
        return min(self._count + len(self._waiting), len(self._data))

    def append(self, row: tuple[float, ...]) -> None:
        self._waiting.append(row)
        self.appended += 1
        if len(self._waiting) >= len(self._data):
            self._flush()  # a backlog never holds more than a window

    def _flush(self) -> None:
        if not self._waiting:
            return
        size = len(self._data)
        rows = np.array(self._waiting[-size:], dtype=np.float64)
        self._waiting.clear()
        if rows.ndim != 2 or rows.shape[1] != self._data.shape[1]:
            raise ValueError(f"rows of {self._data.shape[1]} values expected, got an array of "
                             f"shape {rows.shape}")
        first = min(len(rows), size - self._next)  # up to the end of the array, then wrap
        self._data[self._next:self._next + first] = rows[:first]
        self._data[:len(rows) - first] = rows[first:]
        self._next = (self._next + len(rows)) % size
        self._count = min(self._count + len(rows), size)

    def rows(self) -> np.ndarray:
        """The rows held, oldest first (a view while the ring has not wrapped)."""
        self._flush()
        if self._count < len(self._data):
            return self._data[:self._count]
        return np.roll(self._data, -self._next, axis=0)


class RollingForecastErrors:
    """Over the last ``window_size`` scored forecasts: RMSE, MAE, MAPE (as a ratio) and MASE
    of the model and of persistence, the RMSE skill (``1 - model/naive``), the ROC AUC of the
    predicted direction (the predicted move against whether the price went up, over the rows
    where it moved), and the Diebold–Mariano test of model against persistence. Every
    statistic is computed from the window's rows when :meth:`get` is called, so an update is
    one row write.

    ``scale`` is the naive in-sample error of the window the forecast was made from
    (:func:`~tickcast.streams.evaluation.forecast_tests.naive_scale`); MASE and the DM test
    use the rows that have one, the DM test on squared errors divided by ``scale**2`` so that
    instruments of different price levels weigh alike.
    """

    def __init__(self, window_size: int) -> None:
        self._rows = RowRing(window_size, 4)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def updates(self) -> int:
        """Rows ever added: :meth:`get` changes only when this does."""
        return self._rows.appended

    def update(self, *, last: float, forecast: float, actual: float,
               scale: float | None = None) -> None:
        if not all(math.isfinite(v) for v in (last, forecast, actual)) or actual <= 0:
            raise ValueError(f"unusable forecast row last={last} forecast={forecast} "
                             f"actual={actual}")
        usable = scale is not None and math.isfinite(scale) and scale > 0
        self._rows.append((last, forecast, actual, scale if usable else math.nan))

    def get(self) -> dict[str, float]:
        if not self._rows:
            return {}
        last, forecast, actual, scale = self._rows.rows().T
        scaled = np.isfinite(scale)
        out: dict[str, float] = {}
        losses = {}
        for name, predicted in (("model", forecast), ("naive", last)):
            err = predicted - actual
            out[f"{name}_rmse"] = float(np.sqrt(np.mean(err**2)))
            out[f"{name}_mae"] = float(np.mean(np.abs(err)))
            out[f"{name}_mape"] = float(np.mean(np.abs(err / actual)))
            q = err[scaled] / scale[scaled]
            out[f"{name}_mase"] = float(np.mean(np.abs(q))) if q.size else math.nan
            losses[name] = q**2
        out["skill"] = (1.0 - out["model_rmse"] / out["naive_rmse"]
                        if out["naive_rmse"] > 0 else math.nan)
        # The predicted move against the direction that came; a flat day has no direction.
        called = actual != last
        auc = mann_whitney_auc((forecast - last)[called], actual[called] > last[called])
        out["direction_auc"] = math.nan if auc is None else auc
        dm = diebold_mariano(losses["model"], losses["naive"])
        out["dm_stat"] = math.nan if dm is None else dm.stat
        out["dm_p_value"] = math.nan if dm is None else dm.p_value
        return out


class RollingLossPairs:
    """Two forecasters' losses on the same targets over the last ``window_size`` pairs, and
    the Diebold–Mariano test of ``a`` against ``b`` on them (recomputed once per update)."""

    def __init__(self, window_size: int) -> None:
        self._pairs = RowRing(window_size, 2)
        self._cached: tuple[int, DMResult | None] = (0, None)
        self._updates = 0

    def __len__(self) -> int:
        return len(self._pairs)

    def update(self, loss_a: float, loss_b: float) -> None:
        self._pairs.append((loss_a, loss_b))
        self._updates += 1

    def get(self) -> DMResult | None:
        if self._cached[0] != self._updates:
            pairs = self._pairs.rows()
            self._cached = (self._updates, diebold_mariano(pairs[:, 0], pairs[:, 1]))
        return self._cached[1]
