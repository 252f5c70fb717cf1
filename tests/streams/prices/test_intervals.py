"""Forecast intervals in the price processor: on every record, evaluated when the next tick
arrives (gauges equal NumPy on the same records), beside the baseline, tracked per symbol
exactly as the training report replays it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.helpers import Predicting
from tests.streams.prices.test_processor import Harness, tick
from tickcast.models.predictors import Prediction
from tickcast.models.preprocessing import SERVED_LEVELS
from tickcast.streams.evaluation.intervals import empirical_bounds, interval_score, tracked

UNIT = 0.01


class BandForecaster(Predicting):
    """+0.1 % with fixed relative bands (2 % and 5 % wide): every number checkable by hand.
    ``broken`` windows (ending at that price) get NaN bounds."""

    intervals = True

    def __init__(self, window: int = 3, broken: float | None = None) -> None:
        self.window, self.version, self.broken = window, "band-v1", broken

    def predict(self, windows: np.ndarray) -> Prediction:
        last = windows[:, -1]
        bounds = np.stack([np.stack([last * 0.99, last * 1.01], axis=1),
                           np.stack([last * 0.975, last * 1.025], axis=1)], axis=1)
        if self.broken is not None:
            bounds[last == self.broken] = np.nan
        return Prediction(last * 1.001, bounds, np.full(len(last), UNIT))


def walk(n: int, seed: int = 0, sigma: float = 0.012) -> list[float]:
    rng = np.random.default_rng(seed)
    return (100 * np.exp(np.cumsum(rng.normal(0, sigma, n)))).round(6).tolist()


def harness(rate: float, window: int = 3) -> Harness:
    h = Harness(BandForecaster(window))
    h.processor.tracking_rate = rate
    return h


def feed(h: Harness, prices: list[float], batch: int, symbol: str = "XAU", start: int = 0
         ) -> list[dict]:
    """Ticks ``start + 1, start + 2, ...`` in batches; the forecast records."""
    out: list[dict] = []
    for k in range(0, len(prices), batch):
        out += [o for topic, o in h.run(*[tick(symbol, start + t + 1, p) for t, p in
                                          enumerate(prices[k:k + batch], start=k)])
                if topic == "forecasts"]
    return out


def bounds_of(records: list[dict]) -> np.ndarray:
    return np.array([[[r["lower_80"], r["upper_80"]], [r["lower_95"], r["upper_95"]]]
                     for r in records])


def test_every_forecast_carries_its_intervals_and_the_gauges_equal_numpy() -> None:
    h = harness(rate=0.0)
    prices = walk(300)
    out = feed(h, prices, batch=37)
    assert len(out) == 300 - 2  # one per tick after the 3-tick warm-up
    b = bounds_of(out)
    last = np.array([r["last_price"] for r in out])
    assert b[:, 0] == pytest.approx(np.stack([last * 0.99, last * 1.01], axis=1))
    # Every forecast but the last met its next price; the window (100) holds the newest.
    actual = np.array(prices[3:])[-100:]
    b, last = b[:-1][-100:], last[:-1][-100:]
    for j, level in enumerate(SERVED_LEVELS):
        labels = {"model": "lstm", "level": f"{round(level * 100)}"}
        covered = (b[:, j, 0] <= actual) & (actual <= b[:, j, 1])
        assert h.value("tickcast_forecast_interval_coverage_ratio", **labels) == pytest.approx(
            covered.mean())
        assert h.value("tickcast_forecast_interval_width_ratio", **labels) == pytest.approx(
            np.mean((b[:, j, 1] - b[:, j, 0]) / last))
        assert h.value("tickcast_forecast_interval_score_ratio", **labels) == pytest.approx(
            np.mean(interval_score(b[:, j, 0], b[:, j, 1], actual, level) / last))
    assert h.value("tickcast_forecast_interval_window") == 100


def test_the_baseline_uses_the_symbols_recent_returns() -> None:
    h = harness(rate=0.0)
    h.processor.baseline_window = 40
    prices = walk(200, seed=1)
    out = feed(h, prices, batch=64)
    # The forecast at tick i (0-based) used closes up to i; its baseline the last 41 of them
    # (fewer than 21 closes: none yet).
    ts = np.array([r["ts"] for r in out])[:-1][-100:]
    actual = np.array(prices)[ts]
    closes = np.array(prices)
    rows = np.stack([closes[t - 41:t] for t in ts])
    base = empirical_bounds(rows, SERVED_LEVELS)
    covered = (base[:, 1, 0] <= actual) & (actual <= base[:, 1, 1])
    assert h.value("tickcast_forecast_interval_coverage_ratio", model="baseline",
                   level="95") == pytest.approx(covered.mean())


@pytest.mark.parametrize("batch", [1, 7, 500])
def test_tracking_serves_what_the_training_report_replays(batch: int) -> None:
    """Online tracking through the processor (across batches, through the state table)
    equals the report's replay of the same outcomes, whatever the batching; too-narrow
    bands widen until they cover their level."""
    prices = walk(500, seed=2, sigma=0.015)  # wilder than the bands assume
    static = feed(harness(rate=0.0), prices, batch=batch)
    served = feed(harness(rate=0.05), prices, batch=batch)
    actual = np.array(prices[3:])
    replay = tracked(bounds_of(static)[:-1], np.full(len(actual), UNIT), actual, SERVED_LEVELS,
                     rate=0.05)
    assert bounds_of(served)[:-1] == pytest.approx(replay)
    # The point forecast does not move; the intervals do.
    assert [r["forecast"] for r in served] == [r["forecast"] for r in static]
    b = bounds_of(served)[:-1]
    cover95 = np.mean((b[:, 1, 0] <= actual) & (actual <= b[:, 1, 1]))
    raw95 = np.mean((bounds_of(static)[:-1, 1, 0] <= actual)
                    & (actual <= bounds_of(static)[:-1, 1, 1]))
    assert raw95 < 0.92
    assert cover95 == pytest.approx(0.95, abs=0.02)


def test_tracking_offsets_survive_a_restart_through_the_table() -> None:
    h = harness(rate=0.05)
    feed(h, walk(50, seed=3), batch=10)
    track = h.states["XAU"]["track"]
    assert track["version"] == "band-v1"
    assert len(track["theta"]) == len(SERVED_LEVELS)
    assert any(t != 0 for t in track["theta"])


def test_tracking_off_serves_the_models_intervals_whatever_was_learnt() -> None:
    """Rate 0 ignores offsets stored while it was on; a new model version starts its own."""
    prices = walk(200, seed=4, sigma=0.015)
    h = harness(rate=0.05)
    feed(h, prices[:150], batch=25)
    assert any(h.states["XAU"]["track"]["theta"])
    h.processor.tracking_rate = 0.0
    later = feed(h, prices[150:], batch=25, start=150)
    last = np.array([r["last_price"] for r in later])
    assert bounds_of(later)[:, 0] == pytest.approx(np.stack([last * 0.99, last * 1.01], axis=1))
    h.processor.tracking_rate = 0.05
    h.forecaster.version = "band-v2"  # a new champion: the old offsets are not its own
    swapped = feed(h, [p * 1.001 for p in prices[-3:]], batch=3, start=200)
    assert len(swapped) == 3
    last = swapped[0]["last_price"]
    assert [swapped[0]["lower_80"], swapped[0]["upper_80"]] == pytest.approx(
        [last * 0.99, last * 1.01])
    track = h.states["XAU"]["track"]  # two outcomes of v2's own: two steps from zero
    assert track["version"] == "band-v2"
    assert all(abs(t) <= 2 * 0.05 for t in track["theta"])


def test_a_short_baseline_window_still_gives_a_baseline() -> None:
    h = harness(rate=0.0, window=30)
    h.processor.baseline_window = 20  # fewer returns than the model's window holds
    feed(h, walk(120, seed=5), batch=40)
    assert h.value("tickcast_forecast_interval_coverage_ratio", model="baseline",
                   level="95") is not None
    assert not math.isnan(h.value("tickcast_forecast_interval_coverage_ratio",
                                  model="baseline", level="95"))


def test_unusable_bounds_are_a_dead_letter_with_one_outcome() -> None:
    h = Harness(BandForecaster(broken=13.0))
    out = h.run(*[tick("XAU", t, p) for t, p in enumerate([10.0, 11.0, 12.0, 13.0, 14.0], 1)])
    assert [(topic, o.get("reason")) for topic, o in out] == [
        ("forecasts", None), ("dead-letters", "scoring_failed"), ("forecasts", None)]
    assert "intervals" in out[1][1]["error"]
    assert h.value("tickcast_events_in_total", topic="prices", outcome="ok") == 4
    assert h.value("tickcast_events_in_total", topic="prices", outcome="dead_letter") == 1
    assert all(not math.isnan(o["lower_95"]) for topic, o in out if topic == "forecasts")


def test_a_point_only_forecaster_emits_no_bounds() -> None:
    out = Harness().run(*[tick("XAU", t, 100.0 + t) for t in range(1, 6)])
    assert out
    assert all("lower_80" not in o for _, o in out)


def test_a_symbols_pending_forecast_and_tracking_hold_nothing_the_collector_walks() -> None:
    """With a symbol per tick, every state lives until its symbol's next tick; containers
    the cyclic collector keeps walking would make each full pass grow with the symbols."""
    import gc

    from tickcast.streams.prices.processor import SymbolState

    h = harness(0.05)
    states: dict[str, SymbolState] = {}
    prices = walk(60, seed=3)
    for t in range(0, 60, 3):
        batch = [tick("XAU", t + i + 1, p) for i, p in enumerate(prices[t:t + 3])]
        plan = h.processor.plan(batch, lambda s, _p: states.setdefault(s, SymbolState()),
                                h.forecaster)  # type: ignore[arg-type]
        h.processor.finish(plan, h.processor.infer(plan))
    state = states["XAU"]
    assert state.pending is not None
    assert "bounds" in state.pending
    assert "baseline" in state.pending
    assert state.track is not None
    gc.collect()
    assert not gc.is_tracked(state.pending)
    assert not gc.is_tracked(state.track)


@pytest.mark.parametrize(("level_95", "usable"), [
    ((90.0, 110.0), True), ((95.0, 95.0), True), ((math.nan, 110.0), False),
    ((90.0, math.inf), False), ((0.0, 110.0), False), ((-1.0, 110.0), False),
    ((111.0, 110.0), False)])
def test_bounds_are_usable_only_when_finite_positive_and_ordered_at_every_level(
        level_95: tuple[float, float], usable: bool) -> None:
    from tickcast.streams.prices.processor import _usable

    good = [[95.0, 105.0], [90.0, 110.0]]
    bounds = np.array([good, [good[0], list(level_95)], good])
    assert _usable(bounds).tolist() == [True, usable, True]
