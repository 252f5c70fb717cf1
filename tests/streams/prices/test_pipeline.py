"""Two lanes: a batch split by symbol, its parts planned, inferred and finished interleaved
with the next batch's, give exactly what one batch at a time gives."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from tests.streams.prices.test_intervals import BandForecaster, walk
from tests.streams.prices.test_processor import Harness, tick
from tickcast.streams.evaluation.forecast_error import RollingForecastErrors
from tickcast.streams.messages import InMessage
from tickcast.streams.metrics import Metrics
from tickcast.streams.prices.pipeline import LanePipeline
from tickcast.streams.prices.processor import Plan, PriceProcessor, lane
from tickcast.streams.prices.state import load_state, state_writes

SYMBOLS = ["XAU", "XAG", "BTC", "ETH", "EURUSD", "SPX"]


def test_the_symbols_fall_in_both_lanes() -> None:
    assert {lane(s, 2) for s in SYMBOLS} == {0, 1}  # else the tests below prove little


def test_lanes_keep_every_tick_of_a_symbol_together_and_in_order() -> None:
    processor = PriceProcessor(metrics=Metrics(), max_event_bytes=4096, eval_window=10)
    batch = [tick(s, t, 100.0 + t) for t in range(1, 5) for s in SYMBOLS]
    batch.insert(3, InMessage("prices", 0, 99, b"x", b"{not json"))
    decoded = processor.decode(batch)
    parts = decoded.lanes(2)
    assert [len(p.dead) for p in parts] == [1, 0]  # the dead letters go with the first part
    assert [p.size for p in parts] == [len(batch), 0]  # the batch is counted once
    assert [p.last for p in parts] == [False, True]
    for k, part in enumerate(parts):
        assert {t.symbol for _, t in part.ticks} == {s for s in SYMBOLS if lane(s, 2) == k}
    for symbol in SYMBOLS:  # each symbol's ticks in batch order, in one part
        part = parts[lane(symbol, 2)]
        assert [t.ts for _, t in part.ticks if t.symbol == symbol] == [1, 2, 3, 4]
    assert sum(len(p.ticks) for p in parts) == len(decoded.ticks) == len(batch) - 1


@pytest.mark.parametrize("seed", ["1", "2"])
def test_a_lane_is_the_same_in_every_process(seed: str) -> None:
    """Not Python's ``hash`` of a string, which changes with the process's hash seed."""
    code = ("from tickcast.streams.prices.processor import lane; "
            f"print([lane(s, 2) for s in {SYMBOLS!r}])")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
    assert json.loads(out) == [lane(s, 2) for s in SYMBOLS]


def feed() -> list[list[InMessage]]:
    """Batches of interleaved ticks of every symbol, with a replayed batch (a redelivery), an
    out-of-order tick, bad JSON, and small batches between large ones."""
    prices = {s: walk(400, seed=i) for i, s in enumerate(SYMBOLS)}
    ticks = [tick(s, t, prices[s][t - 1], offset=t) for t in range(1, 401) for s in SYMBOLS]
    batches, start = [], 0
    for size in [300, 70, 10, 200, 130, 1, 500, 90, 400, 200, 500]:
        batches.append(ticks[start:start + size])
        start += size
    batches.append(ticks[start:])
    batches.insert(5, list(batches[4]))  # redelivered whole: every tick is a replay
    batches[7].insert(20, tick("XAU", 1, 1.0))  # out of order
    batches[9].insert(5, InMessage("prices", 0, 0, b"x", b"{not json"))
    return batches


class Lanes:
    """The pipeline over the processor as the agent wires it (the model calls in a thread,
    everything else on the loop) with a dict as the table;
    ``queued`` is always true, so every split batch is held back for the next one."""

    def __init__(self, forecaster: Any, *, split_min: int = 64) -> None:
        self.h = Harness(forecaster)
        self.outputs: list[tuple[str, dict]] = []
        self.tracked: list[tuple[list[int], int]] = []
        self.keep = 800
        h = self.h

        async def send(plan: Plan, values: np.ndarray) -> list[asyncio.Future[Any]]:
            out = h.processor.finish(plan, h.processor.complete(plan, values))
            self.outputs += [(o.topic, json.loads(o.value)) for o in out]
            for symbol, state in plan.states.items():
                for key, value in state_writes(symbol, state, keep=self.keep):
                    if value is None:
                        h.states.pop(key, None)
                    else:
                        h.states[key] = json.loads(json.dumps(value))
            done = asyncio.get_running_loop().create_future()
            done.set_result(len(out))
            return [done]

        async def track(events: Any, deliveries: list[asyncio.Future[Any]]) -> None:
            self.tracked.append(([m.offset for m in events],
                                 sum([await d for d in deliveries])))

        self.pipeline = LanePipeline(
            h.processor, load=lambda s, _p: load_state(s, h.states.get, keep=self.keep),
            infer=lambda plan: asyncio.get_running_loop().run_in_executor(
                None, h.processor.run, plan),
            send=send, track=track, queued=lambda: True, split_min=split_min)

    def run(self, batches: list[list[InMessage]]) -> None:
        async def main() -> None:
            for batch in batches:
                await self.pipeline.batch(batch, batch, self.h.forecaster, None)
            await self.pipeline.flush()

        asyncio.run(main())


def comparable(outputs: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """Outputs without the wall-clock fields, sorted (lanes reorder symbols, never a
    symbol's own records)."""
    rows = []
    for topic, o in outputs:
        o = {k: v for k, v in o.items()
             if k not in ("processed_at", "latency_ms", "dead_lettered_at")}
        rows.append((topic, json.dumps(o, sort_keys=True)))
    return sorted(rows)


@pytest.mark.parametrize("forecaster", [BandForecaster(window=5)], ids=["intervals"])
def test_two_lanes_give_what_one_batch_at_a_time_gives(forecaster: Any) -> None:
    batches = feed()
    one = Harness(forecaster)
    lanes = Lanes(forecaster)
    for h in (one, lanes.h):
        h.processor.tracking_rate = 0.05
        # Every scored forecast in the window, whatever the order across symbols.
        h.processor.errors = RollingForecastErrors(10_000)
    sequential = [o for batch in batches for o in one.run(*batch)]
    lanes.run(batches)

    assert comparable(lanes.outputs) == comparable(sequential)
    for symbol in SYMBOLS:  # each symbol's forecasts in order
        ts = [o["ts"] for topic, o in lanes.outputs
              if topic == "forecasts" and o["symbol"] == symbol]
        assert ts == [o["ts"] for topic, o in sequential
                      if topic == "forecasts" and o["symbol"] == symbol]
    # Every batch tracked once, in order, with all of its outputs.
    assert [offsets for offsets, _ in lanes.tracked] == [[m.offset for m in b] for b in batches]
    assert sum(n for _, n in lanes.tracked) == len(sequential)
    # The same counters, one outcome per tick, and the batches counted once each.
    for name, labels in [("tickcast_ticks_total", {"outcome": o})
                         for o in ("forecast", "replayed", "warming_up")] + [
            ("tickcast_events_in_total", {"topic": "prices", "outcome": o})
            for o in ("ok", "dead_letter")] + [
            ("tickcast_forecasts_scored_total", {}),
            ("tickcast_batch_size_count", {"agent": "prices"}),
            ("tickcast_batch_size_sum", {"agent": "prices"}),
            ("tickcast_batch_seconds_count", {"agent": "prices"})]:
        assert lanes.h.value(name, **labels) == one.value(name, **labels), (name, labels)
    assert one.value("tickcast_ticks_total", outcome="replayed") > 0
    assert one.value("tickcast_events_in_total", topic="prices", outcome="dead_letter") == 2
    # The stored states (histories, pending forecasts, tracking) are the same.
    assert lanes.h.states == one.states
    # The rolling errors hold the same scored forecasts (in another order across symbols).
    assert len(lanes.h.processor.errors) == len(one.processor.errors) > 1000
    a, b = lanes.h.processor.errors.get(), one.processor.errors.get()
    assert a.keys() == b.keys()
    for key in a:
        assert math.isclose(a[key], b[key], rel_tol=1e-9, abs_tol=1e-12) or (
            math.isnan(a[key]) and math.isnan(b[key])), key


def test_without_queued_events_nothing_is_held_back() -> None:
    lanes = Lanes(BandForecaster(window=5))
    lanes.pipeline.queued = lambda: False
    batches = feed()[:3]

    async def main() -> None:
        for k, batch in enumerate(batches, start=1):
            await lanes.pipeline.batch(batch, batch, lanes.h.forecaster, None)
            assert len(lanes.tracked) == k  # tracked before the next batch arrives

    asyncio.run(main())


def test_a_failed_inference_stops_the_pipeline_and_acknowledges_nothing_more() -> None:
    class Failing(BandForecaster):
        calls = 0

        def predict(self, windows: np.ndarray) -> Any:
            Failing.calls += 1
            if Failing.calls == 4:
                raise RuntimeError("inference failed")
            return super().predict(windows)

    lanes = Lanes(Failing(window=5))
    with pytest.raises(RuntimeError, match="inference failed"):
        lanes.run(feed())
    lanes.pipeline.abandon()
    tracked = [offsets for offsets, _ in lanes.tracked]
    assert tracked == [[m.offset for m in b] for b in feed()[:len(tracked)]]
    assert len(tracked) < 3


def test_the_inference_thread_makes_only_the_model_calls() -> None:
    """The thread holds the GIL only around the model calls: preparing the inputs and turning
    the outputs into forecasts, for the champion and the challenger alike, run on the loop's
    thread (a thread doing numpy between the calls waits for the GIL between every step)."""
    import threading

    calls: list[tuple[str, str, bool]] = []

    class Spy(BandForecaster):
        def __init__(self, name: str) -> None:
            super().__init__(window=5)
            self.name = name

        def prepare(self, windows: np.ndarray) -> Any:
            calls.append((self.name, "prepare", threading.current_thread() is main))
            return super().prepare(windows)

        def predict_outputs(self, features: Any) -> Any:
            calls.append((self.name, "predict_outputs", threading.current_thread() is main))
            return super().predict_outputs(features)

        def complete(self, prepared: Any, outputs: Any) -> Any:
            calls.append((self.name, "complete", threading.current_thread() is main))
            return super().complete(prepared, outputs)

    main = threading.current_thread()
    champion, challenger = Spy("champion"), Spy("challenger")
    lanes = Lanes(champion)

    async def run() -> None:
        for batch in feed()[:6]:
            await lanes.pipeline.batch(batch, batch, champion, challenger)
        await lanes.pipeline.flush()

    asyncio.run(run())
    seen = {(name, method) for name, method, _ in calls}
    assert seen == {(n, m) for n in ("champion", "challenger")
                    for m in ("prepare", "predict_outputs", "complete")}
    for name, method, on_main in calls:
        assert on_main == (method != "predict_outputs"), (name, method)
