"""``tickcast train prices``: the LSTM forecaster of the next close from a window of closes.

Chronological split (train, validation, test); the scaler is fitted on the training period
only; early stopping on validation loss; fixed seeds. The test period is evaluated against
naive persistence (tomorrow = today) on the same days.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tickcast.models.architectures import build_forecaster
from tickcast.models.artifacts import (
    MODEL_FILE,
    PREPROCESSING_FILE,
    Manifest,
    new_version,
    write_artifact,
)
from tickcast.models.backend import keras, set_seed
from tickcast.models.preprocessing import PriceScaler, make_windows
from tickcast.training.data import DataError, fingerprint
from tickcast.training.evaluate import direction_metrics, regression_metrics
from tickcast.training.progress import keras_verbose
from tickcast.training.reports import figure, markdown_table, write_report

__all__ = [
    "DAILY_FROM",
    "PriceConfig",
    "PriceResult",
    "PriceSplit",
    "split_prices",
    "train_prices",
]

DAILY_FROM = "1979-01-01"  # gold_price_data.csv is quarterly before 1979, business-daily after


@dataclass(frozen=True, slots=True)
class PriceConfig:
    window: int = 30
    units: tuple[int, ...] = (64, 32)
    dropout: float = 0.2
    epochs: int = 60
    batch_size: int = 64
    patience: int = 6
    val_frac: float = 0.1
    test_frac: float = 0.2
    seed: int = 42
    max_train_windows: int | None = None

    @classmethod
    def quick(cls) -> PriceConfig:
        """Tiny and fast (tests, ``make demo``): same pipeline, smaller model, 3 epochs."""
        return cls(units=(16, 8), epochs=3, patience=2, max_train_windows=1500)


@dataclass(frozen=True, slots=True)
class PriceSplit:
    """Closes per period; validation and test windows take their first W closes from the
    period before (those prices are known at forecast time: that is not look-ahead)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_dates: np.ndarray


def split_prices(frame: pd.DataFrame, *, val_frac: float, test_frac: float) -> PriceSplit:
    closes = frame["close"].to_numpy(dtype=np.float64)
    n = len(closes)
    n_test, n_val = round(n * test_frac), round(n * val_frac)
    n_train = n - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise DataError(f"{n} closes are too few for a train/validation/test split")
    return PriceSplit(train=closes[:n_train], val=closes[n_train:n_train + n_val],
                      test=closes[n_train + n_val:],
                      test_dates=frame["date"].to_numpy()[n_train + n_val:])


def _windows_into(history: np.ndarray, period: np.ndarray, window: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose *target* lies in ``period``, using the last W closes of ``history``."""
    joined = np.r_[history[-window:], period]
    return make_windows(joined, window)


@dataclass(frozen=True, slots=True)
class PriceResult:
    path: Path
    manifest: Manifest
    metrics: dict[str, float]
    seconds: float


def train_prices(frame: pd.DataFrame, *, store_dir: Path, name: str = "gold-lstm",
                 config: PriceConfig = PriceConfig(), source: str = "gold_price_data.csv",
                 progress: bool = True) -> PriceResult:
    """Train, evaluate and write one versioned forecaster artifact under ``store_dir/name``."""
    import time

    started = time.monotonic()
    frame = frame.sort_values("date").reset_index(drop=True)
    split = split_prices(frame, val_frac=config.val_frac, test_frac=config.test_frac)
    if len(split.train) < config.window + 2:
        raise DataError(f"{len(frame)} closes leave {len(split.train)} for training: too few "
                        f"for windows of {config.window}")
    try:
        scaler = PriceScaler.fit(split.train, window=config.window)
    except ValueError as exc:  # closes that cannot be scaled (no variation, not positive)
        raise DataError(f"the training closes cannot be used: {exc}") from None
    x_train, y_train = make_windows(split.train, config.window)
    if config.max_train_windows:
        x_train, y_train = x_train[-config.max_train_windows:], y_train[-config.max_train_windows:]
    x_val, y_val = _windows_into(split.train, split.val, config.window)
    x_test, y_test = _windows_into(np.r_[split.train, split.val], split.test, config.window)

    set_seed(config.seed)
    model = build_forecaster(window=config.window, units=config.units, dropout=config.dropout)
    k = keras()
    history = model.fit(
        scaler.inputs(x_train), scaler.targets(x_train, y_train),
        validation_data=(scaler.inputs(x_val), scaler.targets(x_val, y_val)),
        epochs=config.epochs, batch_size=config.batch_size, shuffle=True,
        verbose=keras_verbose(progress),
        callbacks=[k.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                             restore_best_weights=True)])
    outputs = np.asarray(model(scaler.inputs(x_test), training=False)).reshape(-1)
    forecast = scaler.prices(x_test, outputs)
    naive = x_test[:, -1]
    lstm, persistence = regression_metrics(y_test, forecast), regression_metrics(y_test, naive)
    metrics: dict[str, float] = {
        **{f"lstm_{k_}": v for k_, v in lstm.items()},
        **{f"naive_{k_}": v for k_, v in persistence.items()},
        "skill_rmse": 1.0 - lstm["rmse"] / persistence["rmse"],
        **direction_metrics(naive, y_test, forecast),
        "test_days": float(len(y_test)),
        "epochs_run": float(len(history.history["loss"])),
    }

    def write_files(folder: Path) -> None:
        model.save(folder / MODEL_FILE)
        (folder / PREPROCESSING_FILE).write_text(
            json.dumps(scaler.to_dict()), encoding="utf-8")
        _price_report(folder, metrics=metrics, config=config, dates=split.test_dates,
                      actual=y_test, forecast=forecast, naive=naive, source=source)

    path, manifest = write_artifact(
        store_dir / name, name=name, kind="forecaster", version=new_version(),
        write_files=write_files, metrics=metrics,
        input_spec={"shape": [None, config.window, 1], "dtype": "float32",
                    "window": config.window, "features": "log(close / last close) / scale"},
        data={"source": source, "rows": len(frame), "fingerprint": fingerprint(frame),
              "train_until": str(frame["date"].iloc[len(split.train) - 1]),
              "test_from": str(split.test_dates[0]), "config": _jsonable(asdict(config))})
    return PriceResult(path, manifest, metrics, time.monotonic() - started)


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}


def _price_report(folder: Path, *, metrics: dict[str, float], config: PriceConfig,
                  dates: np.ndarray, actual: np.ndarray, forecast: np.ndarray,
                  naive: np.ndarray, source: str) -> None:
    fig, axes = figure(1, 2, size=(11, 8))
    days = pd.to_datetime(dates)
    for ax, (lo, label) in zip(axes[:, 0], [(0, "whole test period"),
                                            (max(0, len(actual) - 120), "last 120 days")],
                               strict=True):
        ax.plot(days[lo:], actual[lo:], label="actual close", color="black", linewidth=1)
        ax.plot(days[lo:], forecast[lo:], label="LSTM forecast", color="tab:orange",
                linewidth=1)
        if lo:
            ax.plot(days[lo:], naive[lo:], label="naive (yesterday)", color="tab:blue",
                    linewidth=0.8, linestyle="--")
        ax.set_title(f"Gold close vs next-day forecast — {label}")
        ax.set_ylabel("USD")
        ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "forecast_vs_actual.png", dpi=90)
    rows = [{"model": m, "RMSE": metrics[f"{m}_rmse"], "MAE": metrics[f"{m}_mae"],
             "MAPE %": metrics[f"{m}_mape"]} for m in ("lstm", "naive")]
    write_report(
        folder, title="Gold LSTM forecaster — held-out test period",
        summary={"metrics": metrics, "config": _jsonable(asdict(replace(config))),
                 "source": source},
        sections=[
            ("Next-day close, test period", markdown_table(rows, ["model", "RMSE", "MAE",
                                                                  "MAPE %"])),
            ("Skill and direction", markdown_table([{
                "skill vs naive (1 - RMSE ratio)": metrics["skill_rmse"],
                "direction accuracy": metrics["direction_accuracy"],
                "direction ROC AUC": metrics["direction_auc"],
                "test days": int(metrics["test_days"])}],
                ["skill vs naive (1 - RMSE ratio)", "direction accuracy", "direction ROC AUC",
                 "test days"])),
        ],
        images=["forecast_vs_actual.png"])
