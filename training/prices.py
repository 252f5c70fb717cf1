"""``tickcast train prices``: the LSTM forecaster of the next close from a window of closes,
with calibrated central intervals.

Chronological split (train, validation, test); the scaler is fitted on the training period
only; early stopping on validation loss; fixed seeds. The test period is evaluated against
naive persistence (tomorrow = today) on the same days: RMSE/MAE/MAPE, MASE and the
Diebold–Mariano test of the point forecast against persistence.

**Intervals.** Inputs and targets are in units of each window's own volatility, and the model
outputs, after the point forecast, the quantiles of the next return for central intervals at
10 %, 20 %, ..., 90 % and 95 % (a quantile head trained with the pinball loss). Its intervals
are then widened (or narrowed) by conformal offsets fitted on the training and validation
periods (conformalized quantile regression), so each level covers what it claims over all the
history before the test period. The report compares them on
the test period with Monte Carlo dropout (the same network, dropout on, ``K`` passes) and with
the empirical-quantile baseline (persistence and the quantiles of the last ``B`` returns):
coverage, width, interval score and a reliability plot.
"""

from __future__ import annotations

import json
import math
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
from tickcast.models.preprocessing import IntervalSpec, PriceScaler, make_windows
from tickcast.streams.evaluation.forecast_tests import diebold_mariano, mase
from tickcast.streams.evaluation.intervals import (
    BASELINE_MIN_RETURNS,
    TRACKING_RATE,
    empirical_bounds,
    interval_score,
    tracked,
)
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
INTERVAL_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
REPORTED_LEVELS = (0.8, 0.95)


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
    intervals: bool = True
    """Train the interval head (and normalize by each window's volatility); ``False``: a
    point-only forecaster in the training period's fixed unit."""
    interval_levels: tuple[float, ...] = INTERVAL_LEVELS
    mc_passes: int = 30
    """Monte Carlo dropout passes, for the report's comparison."""
    baseline_window: int = 250
    """Returns behind the empirical-quantile baseline's intervals."""
    tracking_rate: float = TRACKING_RATE
    """The worker's online tracking of the intervals, replayed on the test period (0: off)."""

    @classmethod
    def quick(cls) -> PriceConfig:
        """Tiny and fast (tests, ``make demo``): same pipeline, smaller model, 3 epochs."""
        return cls(units=(16, 8), epochs=3, patience=2, max_train_windows=1500, mc_passes=10)


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
        scaler = PriceScaler.fit(split.train, window=config.window,
                                 normalize="window" if config.intervals else "fixed")
    except ValueError as exc:  # closes that cannot be scaled (no variation, not positive)
        raise DataError(f"the training closes cannot be used: {exc}") from None
    x_train, y_train = make_windows(split.train, config.window)
    if config.max_train_windows:
        x_train, y_train = x_train[-config.max_train_windows:], y_train[-config.max_train_windows:]
    x_val, y_val = _windows_into(split.train, split.val, config.window)
    x_test, y_test = _windows_into(np.r_[split.train, split.val], split.test, config.window)

    set_seed(config.seed)
    spec = (IntervalSpec(levels=tuple(config.interval_levels),
                         offsets=(0.0,) * len(config.interval_levels))
            if config.intervals else None)
    model = build_forecaster(window=config.window, units=config.units, dropout=config.dropout,
                             quantiles=spec.quantiles if spec else ())
    k = keras()
    history = model.fit(
        scaler.inputs(x_train), scaler.targets(x_train, y_train),
        validation_data=(scaler.inputs(x_val), scaler.targets(x_val, y_val)),
        epochs=config.epochs, batch_size=config.batch_size, shuffle=True,
        verbose=keras_verbose(progress),
        callbacks=[k.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                             restore_best_weights=True)])
    if spec is not None:
        # Calibrated on all the history before the test period: the validation period alone
        # is one market regime (a few years), and the head is too small to fit its training
        # windows much closer than unseen ones (the report's test coverage shows it).
        x_cal, y_cal = np.r_[x_train, x_val], np.r_[y_train, y_val]
        spec = conformal_spec(spec, np.asarray(model(scaler.inputs(x_cal), training=False)),
                              scaler.targets(x_cal, y_cal))
        scaler = replace(scaler, intervals=spec)
    outputs = np.asarray(model(scaler.inputs(x_test), training=False))
    forecast = scaler.prices(x_test, outputs)
    naive = x_test[:, -1]
    lstm, persistence = regression_metrics(y_test, forecast), regression_metrics(y_test, naive)
    scales = np.mean(np.abs(np.diff(x_test, axis=1)), axis=1)  # MASE's: naive MAE per window
    usable = scales > 0
    dm = diebold_mariano(((forecast - y_test)[usable] / scales[usable]) ** 2,
                         ((naive - y_test)[usable] / scales[usable]) ** 2)
    metrics: dict[str, float] = {
        **{f"lstm_{k_}": v for k_, v in lstm.items()},
        **{f"naive_{k_}": v for k_, v in persistence.items()},
        "skill_rmse": 1.0 - lstm["rmse"] / persistence["rmse"],
        **direction_metrics(naive, y_test, forecast),
        "lstm_mase": mase(np.abs(forecast - y_test)[usable], scales[usable]) or math.nan,
        "naive_mase": mase(np.abs(naive - y_test)[usable], scales[usable]) or math.nan,
        "dm_stat": dm.stat if dm else math.nan,
        "dm_p_value": dm.p_value if dm else math.nan,
        "test_days": float(len(y_test)),
        "epochs_run": float(len(history.history["loss"])),
    }
    calibration: dict[str, dict[float, float]] = {}
    if spec is not None:
        closes = np.r_[split.train, split.val, split.test]
        n_before = len(split.train) + len(split.val)
        # A short series gives the baseline the history it has before the test period.
        baseline_window = min(config.baseline_window, n_before - 1)
        history_rows = _baseline_rows(closes, n_before, baseline_window)
        static = scaler.bounds(x_test, outputs, spec.levels)
        methods = {
            "lstm": tracked(static, scaler.units(x_test), y_test, spec.levels,
                            config.tracking_rate),
            "lstm_static": static,
            "mc_dropout": mc_dropout_bounds(model, scaler, x_test, spec.levels,
                                            passes=config.mc_passes, seed=config.seed),
            "baseline": empirical_bounds(history_rows, spec.levels),
        }
        raw = replace(scaler, intervals=replace(spec, offsets=(0.0,) * len(spec.levels)))
        val_outputs = np.asarray(model(scaler.inputs(x_val), training=False))
        metrics.update(_interval_metrics(methods, y_test, spec.levels))
        # Calibration on the validation period before the conformal step: how far each raw
        # method's coverage is from nominal, averaged over the levels.
        for method, bounds in (
                ("quantile_head", raw.bounds(x_val, val_outputs, spec.levels)),
                ("mc_dropout", mc_dropout_bounds(model, scaler, x_val, spec.levels,
                                                 passes=config.mc_passes, seed=config.seed))):
            cover = _coverage(bounds, y_val)
            metrics[f"val_calibration_error_{method}"] = float(np.mean(
                [abs(c - level) for c, level in zip(cover, spec.levels, strict=True)]))
        calibration = {method: dict(zip(spec.levels, _coverage(bounds, y_test), strict=True))
                       for method, bounds in methods.items()}
        metrics["mc_dropout_passes"] = float(config.mc_passes)
        metrics["baseline_window"] = float(baseline_window)

    def write_files(folder: Path) -> None:
        if spec is None:
            model.save(folder / MODEL_FILE)
        else:  # saved uncompiled: the training loss is a closure no loader needs
            saved = k.Model.from_config(model.get_config())
            saved.set_weights(model.get_weights())
            saved.save(folder / MODEL_FILE)
        (folder / PREPROCESSING_FILE).write_text(
            json.dumps(scaler.to_dict()), encoding="utf-8")
        _price_report(folder, metrics=metrics, config=config, dates=split.test_dates,
                      actual=y_test, forecast=forecast, naive=naive, source=source,
                      calibration=calibration)

    path, manifest = write_artifact(
        store_dir / name, name=name, kind="forecaster", version=new_version(),
        write_files=write_files, metrics=metrics,
        input_spec={"shape": [None, config.window, 1], "dtype": "float32",
                    "window": config.window,
                    "features": ("log(close / last close) / window volatility"
                                 if spec else "log(close / last close) / scale"),
                    "outputs": ["next_return"] + [f"q{q:g}" for q in
                                                  (spec.quantiles if spec else ())],
                    "intervals": spec.to_dict() if spec else None},
        data={"source": source, "rows": len(frame), "fingerprint": fingerprint(frame),
              "train_until": str(frame["date"].iloc[len(split.train) - 1]),
              "test_from": str(split.test_dates[0]), "config": _jsonable(asdict(config))})
    return PriceResult(path, manifest, metrics, time.monotonic() - started)


def conformal_spec(spec: IntervalSpec, outputs: np.ndarray, targets: np.ndarray
                   ) -> IntervalSpec:
    """Split-conformal offsets (conformalized quantile regression, Romano et al. 2019): per
    level, the ``ceil((n + 1) * level) / n`` empirical quantile of how far each calibration
    target lies outside its raw interval (negative inside), in the normalized unit."""
    q = np.sort(np.asarray(outputs, dtype=np.float64)[:, 1:], axis=1)
    z = np.asarray(targets, dtype=np.float64).reshape(-1)
    n = len(z)
    offsets = []
    for level in spec.levels:
        lo, hi = spec.columns(level)
        excess = np.maximum(q[:, lo] - z, z - q[:, hi])
        offsets.append(float(np.quantile(excess, min(1.0, math.ceil((n + 1) * level) / n),
                                         method="higher")))
    return replace(spec, offsets=tuple(offsets))


def mc_dropout_bounds(model: Any, scaler: PriceScaler, windows: np.ndarray,
                      levels: tuple[float, ...], *, passes: int, seed: int) -> np.ndarray:
    """Monte Carlo dropout: ``passes`` forward passes with dropout on; each level's interval
    from the empirical quantiles of the point forecasts, ``(n, len(levels), 2)`` prices."""
    set_seed(seed)
    inputs = scaler.inputs(windows)
    draws = np.stack([np.asarray(model(inputs, training=True))[:, 0]
                      for _ in range(passes)], axis=1).astype(np.float64)
    units, last = scaler.units(windows), np.asarray(windows, dtype=np.float64)[:, -1]
    out = np.empty((len(windows), len(levels), 2))
    for j, level in enumerate(levels):
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=1)
        out[:, j, 0], out[:, j, 1] = last * np.exp(lo * units), last * np.exp(hi * units)
    return out


def _baseline_rows(closes: np.ndarray, first_target: int, returns: int) -> np.ndarray:
    """Per target ``closes[t]`` (``t >= first_target``), its last ``returns + 1`` closes."""
    targets = np.arange(first_target, len(closes))
    if returns < BASELINE_MIN_RETURNS:
        raise DataError(f"the baseline needs {BASELINE_MIN_RETURNS + 1} closes before the test "
                        f"period, there are {first_target}")
    return closes[targets[:, None] - returns - 1 + np.arange(returns + 1)[None, :]]


def _coverage(bounds: np.ndarray, actual: np.ndarray) -> list[float]:
    y = np.asarray(actual, dtype=np.float64)[:, None]
    return [float(v) for v in np.mean((bounds[..., 0] <= y) & (y <= bounds[..., 1]), axis=0)]


def _interval_metrics(methods: dict[str, np.ndarray], actual: np.ndarray,
                      levels: tuple[float, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, bounds in methods.items():
        cover = _coverage(bounds, actual)
        for j, level in enumerate(levels):
            if level not in REPORTED_LEVELS:
                continue
            tag = f"interval_{name}_{round(level * 100)}"
            out[f"{tag}_coverage"] = cover[j]
            out[f"{tag}_width"] = float(np.mean(bounds[:, j, 1] - bounds[:, j, 0]))
            out[f"{tag}_score"] = float(np.mean(interval_score(
                bounds[:, j, 0], bounds[:, j, 1], actual, level)))
    return out


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}


def _price_report(folder: Path, *, metrics: dict[str, float], config: PriceConfig,
                  dates: np.ndarray, actual: np.ndarray, forecast: np.ndarray,
                  naive: np.ndarray, source: str,
                  calibration: dict[str, dict[float, float]]) -> None:
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
    images = ["forecast_vs_actual.png"]
    rows = [{"model": m, "RMSE": metrics[f"{m}_rmse"], "MAE": metrics[f"{m}_mae"],
             "MAPE %": metrics[f"{m}_mape"], "MASE": metrics[f"{m}_mase"]}
            for m in ("lstm", "naive")]
    sections = [
        ("Next-day close, test period", markdown_table(rows, ["model", "RMSE", "MAE",
                                                              "MAPE %", "MASE"])),
        ("Skill and direction", markdown_table([{
            "skill vs naive (1 - RMSE ratio)": metrics["skill_rmse"],
            "Diebold–Mariano stat (LSTM vs naive)": metrics["dm_stat"],
            "DM p-value": metrics["dm_p_value"],
            "direction accuracy": metrics["direction_accuracy"],
            "direction ROC AUC": metrics["direction_auc"],
            "test days": int(metrics["test_days"])}],
            ["skill vs naive (1 - RMSE ratio)", "Diebold–Mariano stat (LSTM vs naive)",
             "DM p-value", "direction accuracy", "direction ROC AUC", "test days"])),
    ]
    if calibration:
        names = {"lstm": "LSTM quantile head + conformal + online tracking (served)",
                 "lstm_static": "LSTM quantile head + conformal, no tracking",
                 "mc_dropout": f"MC dropout, K={config.mc_passes}",
                 "baseline": "empirical quantiles of the last "
                             f"{int(metrics['baseline_window'])} returns"}
        interval_rows = [
            {"method": names[m], "level": f"{round(level * 100)} %",
             "coverage": metrics[f"interval_{m}_{round(level * 100)}_coverage"],
             "mean width (USD)": metrics[f"interval_{m}_{round(level * 100)}_width"],
             "interval score": metrics[f"interval_{m}_{round(level * 100)}_score"]}
            for level in REPORTED_LEVELS for m in names]
        choice = markdown_table([{
            "method": name, "mean |coverage - nominal| (validation, before conformal)":
            metrics[f"val_calibration_error_{key}"]}
            for key, name in (("quantile_head", "quantile head"),
                              ("mc_dropout", f"MC dropout, K={config.mc_passes}"))],
            ["method", "mean |coverage - nominal| (validation, before conformal)"])
        sections += [
            ("Intervals, test period", markdown_table(
                interval_rows, ["method", "level", "coverage", "mean width (USD)",
                                "interval score"])
             + "\n\nThe interval score (Winkler) is in USD; lower is better."),
            ("Choice of method", choice),
        ]
        fig, axes = figure(1, 1, size=(6, 6))
        ax = axes[0, 0]
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
        for name, cover in calibration.items():
            ax.plot(list(cover), list(cover.values()), marker="o", label=names[name])
        ax.set_xlabel("nominal coverage of the central interval")
        ax.set_ylabel("observed coverage, test period")
        ax.set_title("Reliability of the forecast intervals")
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "interval_reliability.png", dpi=90)
        images.append("interval_reliability.png")
    write_report(
        folder, title="Gold LSTM forecaster — held-out test period",
        summary={"metrics": metrics, "config": _jsonable(asdict(replace(config))),
                 "source": source,
                 "calibration": {name: {f"{level:g}": v for level, v in cover.items()}
                                 for name, cover in calibration.items()}},
        sections=sections, images=images)
