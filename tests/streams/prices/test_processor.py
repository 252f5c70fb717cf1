"""The tick rule, one forecast per tick after warm-up, and the forecaster scoring itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import PointForecaster
from tickcast.streams.messages import InMessage
from tickcast.streams.metrics import Metrics
from tickcast.streams.prices.processor import PriceProcessor, history_keep
from tickcast.streams.prices.state import load_state, state_writes


class DriftForecaster(PointForecaster):
    """Predicts +1% on every window: simple enough to check every number by hand."""

    def __init__(self, window: int = 3, version: str = "v1") -> None:
        self.window, self.version = window, version

    def predict_prices(self, windows: np.ndarray) -> np.ndarray:
        return windows[:, -1] * 1.01


def tick(symbol: str, ts: int, price: float, offset: int = 0) -> InMessage:
    value = json.dumps({"symbol": symbol, "ts": ts, "price": price}).encode()
    return InMessage("prices", 0, offset, symbol.encode(), value, timestamp_ms=None)


class Harness:
    def __init__(self, forecaster: object | None = None) -> None:
        self.metrics = Metrics()
        self.processor = PriceProcessor(metrics=self.metrics, max_event_bytes=4096,
                                        eval_window=100)
        self.states: dict[str, dict] = {}
        self.forecaster = forecaster if forecaster is not None else DriftForecaster()

    def run(self, *messages: InMessage) -> list[tuple[str, dict]]:
        keep = history_keep(getattr(self.forecaster, "window", None))
        plan = self.processor.plan(list(messages),
                                   lambda s, _p: load_state(s, self.states.get, keep=keep),
                                   self.forecaster)  # type: ignore[arg-type]
        out = self.processor.finish(plan, self.processor.infer(plan))
        for symbol, state in plan.states.items():
            for key, value in state_writes(symbol, state, keep=keep):
                if value is None:
                    self.states.pop(key, None)
                else:
                    self.states[key] = json.loads(json.dumps(value))  # as the table would
        return [(o.topic, json.loads(o.value)) for o in out]

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)


def test_one_forecast_per_tick_after_warm_up() -> None:
    h = Harness()
    out = h.run(*[tick("XAU", t, 100.0 + t) for t in range(1, 6)])
    assert [o["ts"] for _, o in out] == [3, 4, 5]
    assert all(topic == "forecasts" for topic, _ in out)
    assert out[0][1]["forecast"] == pytest.approx(103.0 * 1.01)
    assert out[0][1]["model_version"] == "v1"
    assert h.value("tickcast_ticks_total", outcome="warming_up") == 2


def test_state_carries_across_batches_and_symbols_are_independent() -> None:
    h = Harness()
    h.run(tick("XAU", 1, 10.0), tick("BTC", 1, 5.0), tick("XAU", 2, 11.0))
    out = h.run(tick("XAU", 3, 12.0), tick("BTC", 2, 6.0))
    assert [(o["symbol"], o["ts"]) for _, o in out] == [("XAU", 3)]


def test_forecast_errors_against_naive_on_the_same_ticks() -> None:
    h = Harness()
    prices = [100.0, 101.0, 99.0, 102.0, 104.0, 103.0, 103.0]
    h.run(*[tick("XAU", t, p) for t, p in enumerate(prices[:4], start=1)])  # split batches
    h.run(*[tick("XAU", t, p) for t, p in enumerate(prices[4:], start=5)])
    # forecasts exist at ticks 3..7; those made at 3..6 are scored by ticks 4..7
    last = np.array(prices[2:6])
    actual = np.array(prices[3:7])
    lstm_err, naive_err = last * 1.01 - actual, last - actual
    assert h.value("tickcast_forecasts_scored_total") == 4
    assert h.value("tickcast_forecast_rmse", model="lstm") == pytest.approx(
        np.sqrt(np.mean(lstm_err**2)))
    assert h.value("tickcast_forecast_rmse", model="naive") == pytest.approx(
        np.sqrt(np.mean(naive_err**2)))
    assert h.value("tickcast_forecast_mape_ratio", model="lstm") == pytest.approx(
        np.mean(np.abs(lstm_err / actual)))
    assert h.value("tickcast_forecast_skill_ratio") == pytest.approx(
        1 - np.sqrt(np.mean(lstm_err**2)) / np.sqrt(np.mean(naive_err**2)))
    # direction: the +1% forecast always calls "up"; flat tick 7 is left out
    from sklearn.metrics import roc_auc_score

    moved = actual[:3] > last[:3]
    assert h.value("tickcast_forecast_direction_auc") == pytest.approx(
        roc_auc_score(moved, (last * 0.01)[:3]))


def test_mase_and_diebold_mariano_against_naive_across_a_restart_of_the_state() -> None:
    """Each error is scaled by the naive error within the window it was forecast from; the
    scale travels with the pending forecast through the table, like the rest of the state."""
    import dieboldmariano

    h = Harness()
    rng = np.random.default_rng(4)
    prices = list(100.0 + rng.normal(size=40).cumsum())
    h.run(*[tick("XAU", t, p) for t, p in enumerate(prices[:20], start=1)])
    # A new worker: empty rolling windows, the same table.
    h.processor = PriceProcessor(metrics=h.metrics, max_event_bytes=4096, eval_window=100)
    h.run(*[tick("XAU", t, p) for t, p in enumerate(prices[20:], start=21)])
    # Forecasts made at ticks 20..39 (0-based 19..38) meet ticks 21..40 in the new worker.
    made = range(19, 39)
    last = np.array([prices[i] for i in made])
    actual = np.array([prices[i + 1] for i in made])
    scale = np.array([np.mean(np.abs(np.diff(prices[i - 2:i + 1]))) for i in made])
    assert h.value("tickcast_forecast_mase", model="lstm") == pytest.approx(
        np.mean(np.abs(last * 1.01 - actual) / scale))
    assert h.value("tickcast_forecast_mase", model="naive") == pytest.approx(
        np.mean(np.abs(last - actual) / scale))
    stat, p = dieboldmariano.dm_test(list(actual / scale), list(last * 1.01 / scale),
                                     list(last / scale))
    assert h.value("tickcast_forecast_dm", value="stat") == pytest.approx(stat)
    assert h.value("tickcast_forecast_dm", value="p_value") == pytest.approx(p)


def test_redelivered_ticks_are_forecast_again_not_lost() -> None:
    h = Harness()
    first = h.run(*[tick("XAU", t, 10.0 + t) for t in range(1, 6)])
    again = h.run(tick("XAU", 4, 14.0), tick("XAU", 5, 15.0))
    assert [o for _, o in again] == [
        {**o, "processed_at": again[i][1]["processed_at"]} for i, (_, o) in
        enumerate(first[1:])]
    assert h.value("tickcast_ticks_total", outcome="replayed") == 2
    assert h.value("tickcast_forecasts_scored_total") == 2  # replays score nothing twice


@pytest.mark.parametrize(("ts", "price"), [(2, 99.0), (0, 10.0)])
def test_out_of_order_ticks_are_dead_lettered(ts: int, price: float) -> None:
    h = Harness()
    h.run(*[tick("XAU", t, 10.0 + t) for t in range(1, 4)])
    out = h.run(tick("XAU", ts, price))
    assert [topic for topic, _ in out] == ["dead-letters"]
    assert out[0][1]["reason"] == "out_of_order"
    assert "not newer than the newest seen (3)" in out[0][1]["error"]


def test_bad_ticks_are_dead_lettered_and_good_ones_still_forecast() -> None:
    h = Harness()
    bad = InMessage("prices", 0, 9, b"XAU", b'{"symbol":"XAU","ts":4,"price":-1}')
    out = h.run(*[tick("XAU", t, 10.0 + t) for t in range(1, 4)], bad, tick("XAU", 5, 15.0))
    assert [(topic, o.get("reason")) for topic, o in out] == [
        ("dead-letters", "invalid_value"), ("forecasts", None), ("forecasts", None)]


def test_without_a_model_ticks_still_build_the_window() -> None:
    h = Harness()
    h.forecaster = None
    assert h.run(*[tick("XAU", t, 10.0 + t) for t in range(1, 5)]) == []
    assert h.value("tickcast_ticks_total", outcome="no_model") == 4
    h.forecaster = DriftForecaster()
    out = h.run(tick("XAU", 5, 15.0))  # the window is already full: no new warm-up
    assert [o["ts"] for _, o in out] == [5]


def test_symbol_label_cardinality_is_capped() -> None:
    h = Harness(DriftForecaster(window=1))
    h.processor.symbol_cap = 2
    h.run(*[tick(f"S{i}", 1, 10.0 + i) for i in range(5)])
    symbols = {s.labels["symbol"] for s in h.metrics.last_price.collect()[0].samples}
    assert symbols == {"S0", "S1", "other"}


class NaNForecaster(DriftForecaster):
    """Returns NaN for windows ending at a price of 13.0: a model that cannot score them."""

    def predict_prices(self, windows: np.ndarray) -> np.ndarray:
        out = windows[:, -1] * 1.01
        out[windows[:, -1] == 13.0] = np.nan
        return out


def test_each_tick_has_one_outcome_and_the_batch_size_is_the_batch() -> None:
    h = Harness(NaNForecaster())
    bad = InMessage("prices", 0, 9, b"XAU", b"not json")
    out = h.run(*[tick("XAU", t, 10.0 + t) for t in range(1, 5)], bad)
    assert [(topic, o.get("reason")) for topic, o in out] == [
        ("dead-letters", "not_json"), ("dead-letters", "scoring_failed"), ("forecasts", None)]
    # Three ticks became forecasts or warm-up, two became dead letters: five inputs, five
    # outcomes; the tick whose forecast was NaN is a dead letter only, not also "ok".
    assert h.value("tickcast_events_in_total", topic="prices", outcome="ok") == 3
    assert h.value("tickcast_events_in_total", topic="prices", outcome="dead_letter") == 2
    assert h.value("tickcast_batch_size_count", agent="prices") == 1
    assert h.value("tickcast_batch_size_sum", agent="prices") == 5


class Persistence(PointForecaster):
    """Forecasts the last price: the naive forecast, as a challenger with its own window."""

    def __init__(self, window: int = 5, version: str = "naive-v1", fail: bool = False) -> None:
        self.window, self.version, self.fail = window, version, fail

    def predict_prices(self, windows: np.ndarray) -> np.ndarray:
        if self.fail:
            raise RuntimeError("broken challenger")
        assert windows.shape[1] == self.window
        return windows[:, -1].copy()


def _challenged(harness: Harness, challenger: object | None) -> None:
    plan = harness.processor.plan
    harness.processor.plan = (  # type: ignore[method-assign]
        lambda batch, load, forecaster: plan(batch, load, forecaster, challenger))


def test_a_challenger_in_shadow_is_tested_against_the_champion_on_the_same_ticks() -> None:
    import dieboldmariano

    rng = np.random.default_rng(8)
    prices = list(100.0 + rng.normal(size=60).cumsum())
    ticks = [tick("XAU", t, p) for t, p in enumerate(prices, start=1)]
    alone = Harness()
    without = alone.run(*ticks[:30]) + alone.run(*ticks[30:])
    h = Harness()
    _challenged(h, Persistence(window=5))
    out = h.run(*ticks[:30]) + h.run(*ticks[30:])
    # The champion's records are those of a worker without the challenger.
    strip = ("processed_at", "challenger_version", "challenger_forecast")
    assert [{k: v for k, v in o.items() if k not in strip} for _, o in out] == [
        {k: v for k, v in o.items() if k not in strip} for _, o in without]
    # The challenger (window 5) forecasts from the 5th tick on; the champion from the 3rd.
    shadowed = [o for _, o in out if "challenger_forecast" in o]
    assert [o["ts"] for o in shadowed] == list(range(5, 61))
    assert all(o["challenger_forecast"] == o["last_price"] for o in shadowed)
    # DM over the forecasts both made and the next tick scored (made at ticks 5..59).
    made = range(4, 59)
    last = np.array([prices[i] for i in made])
    actual = np.array([prices[i + 1] for i in made])
    scale = np.array([np.mean(np.abs(np.diff(prices[i - 2:i + 1]))) for i in made])
    stat, p = dieboldmariano.dm_test(list(actual / scale), list(last / scale),
                                     list(last * 1.01 / scale))
    assert h.value("tickcast_challenger_window_size", model="lstm") == len(made)
    assert h.value("tickcast_challenger_forecast_dm", model="lstm", value="stat") == \
        pytest.approx(stat)
    assert h.value("tickcast_challenger_forecast_dm", model="lstm", value="p_value") == \
        pytest.approx(p)
    assert h.value("tickcast_forecast_mase", model="challenger") == pytest.approx(
        np.mean(np.abs(last - actual) / scale))


def test_a_failing_challenger_costs_only_its_own_outputs() -> None:
    prices = [100.0 + t for t in range(12)]
    h = Harness()
    _challenged(h, Persistence(window=3, fail=True))
    out = h.run(*[tick("XAU", t, p) for t, p in enumerate(prices, start=1)])
    assert len(out) == 10
    assert all(topic == "forecasts" and "challenger_forecast" not in o for topic, o in out)
    assert h.value("tickcast_challenger_outputs_total", model="lstm", outcome="failed") == 10
    assert h.value("tickcast_challenger_window_size", model="lstm") == 0


def test_a_new_challenger_starts_its_evidence_again() -> None:
    prices = [100.0 + (t % 3) for t in range(30)]
    h = Harness()
    _challenged(h, Persistence(window=3, version="a"))
    h.run(*[tick("XAU", t, p) for t, p in enumerate(prices[:20], start=1)])
    assert h.value("tickcast_challenger_window_size", model="lstm") > 0
    del h.processor.plan  # back to the method, then a new challenger
    _challenged(h, Persistence(window=3, version="b"))
    out = h.run(tick("XAU", 21, prices[20]))
    # The forecast "a" made at tick 20 is not scored as "b"'s evidence.
    assert h.value("tickcast_challenger_window_size", model="lstm") == 0
    assert out[0][1]["challenger_version"] == "b"
