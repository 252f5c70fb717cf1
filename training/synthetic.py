"""Synthetic instruments with known volatility: do a forecaster's intervals adapt to a symbol
it never trained on?

:func:`regime_walk` generates a geometric random walk whose daily log-return volatility
switches between known regimes (calmer and wilder than gold), with normal or Student-t
innovations scaled to that volatility. Within a regime the true central interval of the next
close is known exactly; :func:`coverage_by_regime` measures how often a forecaster's intervals
cover the next close in each regime, leaving out the first ``W`` days after each switch (their
windows straddle two regimes, so no fixed volatility is true for them).

``python -m tickcast.training.synthetic --model-dir DIR`` prints the table for the store's
``LATEST`` forecaster.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tickcast.models.preprocessing import SERVED_LEVELS
from tickcast.streams.evaluation.intervals import TRACKING_RATE

__all__ = ["REGIMES", "RegimeCoverage", "coverage_by_regime", "regime_walk", "served_bounds",
           "true_halfwidth"]

REGIMES = (0.002, 0.03, 0.008, 0.06)
"""Daily log-return volatilities: very calm, wild, gold-like, very wild."""


def regime_walk(*, vols: tuple[float, ...] = REGIMES, days: int = 2500, start: float = 100.0,
                innovations: str = "normal", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(closes, volatility of the return *into* each close): ``days`` closes per regime."""
    rng = np.random.default_rng(seed)
    sigma = np.repeat(np.asarray(vols, dtype=np.float64), days)
    if innovations == "normal":
        shocks = rng.standard_normal(len(sigma))
    elif innovations == "t5":
        shocks = rng.standard_t(5, len(sigma)) / np.sqrt(5 / 3)  # unit variance
    else:
        raise ValueError(f"innovations must be 'normal' or 't5', got {innovations!r}")
    returns = sigma * shocks
    closes = start * np.exp(np.cumsum(np.r_[0.0, returns]))
    return closes, np.r_[sigma[0], sigma]


@dataclass(frozen=True, slots=True)
class RegimeCoverage:
    vol: float
    level: float
    coverage: float
    width_ratio: float
    """Mean width of the served intervals (in log price) over the true interval's."""
    n: int


def true_halfwidth(level: float, vol: float, innovations: str) -> float:
    """Half the width, in log price, of the true central interval of a regime's return."""
    from scipy import stats

    q = (1 + level) / 2
    if innovations == "normal":
        return float(stats.norm.ppf(q)) * vol
    return float(stats.t.ppf(q, 5) / np.sqrt(5 / 3)) * vol


def served_bounds(forecaster: Any, closes: np.ndarray, *, symbol: str = "SYNTH",
                  batch: int = 256, tracking_rate: float = TRACKING_RATE) -> np.ndarray:
    """The intervals the worker's price processor serves for one symbol's ``closes``, fed
    to it in batches as a worker would be: ``(n, len(SERVED_LEVELS), 2)``, row ``i`` for
    ``closes[i + 1]``, NaN while the window warms up."""
    from tickcast.streams.messages import InMessage
    from tickcast.streams.metrics import Metrics
    from tickcast.streams.prices.processor import PriceProcessor, SymbolState

    processor = PriceProcessor(metrics=Metrics(), max_event_bytes=4096, eval_window=100,
                               tracking_rate=tracking_rate)
    states: dict[str, SymbolState] = {}

    def load(name: str, _partition: int) -> SymbolState:
        return states.setdefault(name, SymbolState())

    messages = [InMessage("prices", 0, i, symbol.encode(), json.dumps(
        {"symbol": symbol, "ts": i + 1, "price": float(c)}).encode())
        for i, c in enumerate(closes[:-1])]
    out = np.full((len(closes) - 1, len(SERVED_LEVELS), 2), np.nan)
    for k in range(0, len(messages), batch):
        plan = processor.plan(messages[k:k + batch], load, forecaster)
        for record in processor.finish(plan, processor.infer(plan)):
            if record.topic != "forecasts":
                raise ValueError(f"the processor rejected a synthetic tick: {record.value!r}")
            f = json.loads(record.value)
            out[f["ts"] - 1] = [[f[f"lower_{round(level * 100)}"],
                                 f[f"upper_{round(level * 100)}"]] for level in SERVED_LEVELS]
    return out


def coverage_by_regime(forecaster: Any, closes: np.ndarray, vol: np.ndarray, *,
                       innovations: str = "normal", tracking_rate: float = TRACKING_RATE
                       ) -> list[RegimeCoverage]:
    """Coverage of each served level per regime, of the intervals the worker serves (see
    :func:`served_bounds`), over the forecasts whose whole window and target lie in one
    regime."""
    w = forecaster.window
    bounds = served_bounds(forecaster, closes, tracking_rate=tracking_rate)[w - 1:]
    targets = closes[w:]
    # The window's returns and the target's return all from one regime.
    span = np.lib.stride_tricks.sliding_window_view(vol[1:], w)  # returns into closes 1..
    pure = np.all(span == span[:, :1], axis=1)
    out = []
    for v in np.unique(vol):
        rows = pure & (span[:, 0] == v)
        for j, level in enumerate(SERVED_LEVELS):
            b = bounds[rows, j]
            y = targets[rows]
            width = float(np.mean(np.log(b[:, 1] / b[:, 0])))
            out.append(RegimeCoverage(
                float(v), level, float(np.mean((b[:, 0] <= y) & (y <= b[:, 1]))),
                width / (2 * true_halfwidth(level, float(v), innovations)), int(rows.sum())))
    return out


def main(argv: list[str] | None = None) -> int:
    from tickcast.models.predictors import load_latest
    from tickcast.models.registry import ModelStore

    parser = argparse.ArgumentParser(prog="python -m tickcast.training.synthetic",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--name", default="gold-lstm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracking-rate", type=float, default=TRACKING_RATE,
                        help="the worker's TICKCAST_INTERVAL_TRACKING_RATE [%(default)s]")
    args = parser.parse_args(argv)
    forecaster = load_latest(ModelStore(args.model_dir), args.name, kind="forecaster")
    print(f"{args.name}/{forecaster.version}: coverage of the next close per regime")
    print("| innovations | daily vol | 80 % covers | 95 % covers | 80 % width / true "
          "| 95 % width / true | forecasts |")
    print("|---|---|---|---|---|---|---|")
    for innovations in ("normal", "t5"):
        closes, vol = regime_walk(innovations=innovations, seed=args.seed)
        rows = coverage_by_regime(forecaster, closes, vol, innovations=innovations,
                                  tracking_rate=args.tracking_rate)
        for v in sorted({r.vol for r in rows}):
            c = {r.level: r for r in rows if r.vol == v}
            print(f"| {innovations} | {v:.3f} | {c[0.8].coverage:.3f} | {c[0.95].coverage:.3f} "
                  f"| {c[0.8].width_ratio:.2f} | {c[0.95].width_ratio:.2f} | {c[0.8].n} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
