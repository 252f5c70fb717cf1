"""Rolling forecast errors of a model and of naive persistence on the same ticks.

>>> e = RollingForecastErrors(window_size=3)
>>> for last, forecast, actual in [(10.0, 10.5, 11.0), (11.0, 11.0, 10.0), (10.0, 10.2, 10.4)]:
...     e.update(last=last, forecast=forecast, actual=actual)
>>> round(e.get()["model_rmse"], 4), round(e.get()["naive_rmse"], 4)
(0.6557, 0.8485)
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from tickcast.streams.evaluation.rolling_auc import RollingAUC

__all__ = ["RollingForecastErrors"]


class RollingForecastErrors:
    """RMSE, MAE and MAPE (as a ratio) of the model and of persistence, their RMSE skill
    (``1 - model/naive``), and the ROC AUC of the predicted direction, over the last
    ``window_size`` scored forecasts."""

    def __init__(self, window_size: int) -> None:
        self._rows: deque[tuple[float, float, float]] = deque(maxlen=window_size)
        self.direction = RollingAUC(window_size)

    def __len__(self) -> int:
        return len(self._rows)

    def update(self, *, last: float, forecast: float, actual: float) -> None:
        if not all(math.isfinite(v) for v in (last, forecast, actual)) or actual <= 0:
            raise ValueError(f"unusable forecast row last={last} forecast={forecast} "
                             f"actual={actual}")
        self._rows.append((last, forecast, actual))
        if actual != last:  # a flat day has no direction to call
            self.direction.update(forecast - last, int(actual > last))

    def get(self) -> dict[str, float]:
        if not self._rows:
            return {}
        last, forecast, actual = np.asarray(self._rows).T
        out: dict[str, float] = {}
        for name, predicted in (("model", forecast), ("naive", last)):
            err = predicted - actual
            out[f"{name}_rmse"] = float(np.sqrt(np.mean(err**2)))
            out[f"{name}_mae"] = float(np.mean(np.abs(err)))
            out[f"{name}_mape"] = float(np.mean(np.abs(err / actual)))
        out["skill"] = (1.0 - out["model_rmse"] / out["naive_rmse"]
                        if out["naive_rmse"] > 0 else math.nan)
        auc = self.direction.get()
        out["direction_auc"] = math.nan if auc is None else auc
        return out
