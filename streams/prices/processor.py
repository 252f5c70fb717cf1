"""One batch of ``prices`` in, ``forecasts`` and ``dead-letters`` out, in three steps.

1. :meth:`PriceProcessor.plan` (event loop): decode, apply the tick rule to each symbol's
   history, and collect the windows that need a forecast.
2. :meth:`PriceProcessor.infer` (a worker thread): one batched inference for all of them.
3. :meth:`PriceProcessor.finish` (event loop): score the previous forecast of each symbol
   against the tick that just arrived, build the forecast records, remember the new forecasts.

**The tick rule.** Per symbol, a tick newer than the newest seen extends the history. A tick
equal to one already in the history (same ``ts`` and ``price``, e.g. redelivered after a
restart) is *replayed*: its forecast is computed again from the history as it stood then, so
at-least-once delivery never loses a forecast (consumers de-duplicate on ``symbol, ts``). Any
other tick at or before the newest ``ts`` — out of order, or a conflicting price for a seen
``ts`` — goes to ``dead-letters`` as ``out_of_order``. The first ``W - 1`` ticks of a symbol
only warm its window up.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from tickcast.models.predictors import Forecaster
from tickcast.streams.deadletters import dead_letter
from tickcast.streams.evaluation.forecast_error import RollingForecastErrors
from tickcast.streams.events import EventError, Forecast, PriceTick, decode_price
from tickcast.streams.messages import InMessage, OutMessage
from tickcast.streams.metrics import Metrics

__all__ = ["REPLAY_ROOM", "Plan", "PriceProcessor", "SymbolState", "history_keep"]

# Ticks kept beyond the window, so redeliveries can be re-forecast. After a crash, Kafka
# redelivers what was processed but not yet committed: at most the commit interval's worth
# (``broker_commit_every`` = 256 acked events) plus the batches in flight.
REPLAY_ROOM: Final = 768
MIN_WINDOW: Final = 32  # history kept while no forecaster serves (a typical window)


@dataclass(slots=True)
class SymbolState:
    """What the worker remembers per symbol (stored in a Faust table: see
    :mod:`tickcast.streams.prices.state`)."""

    ts: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    """The forecast made at the newest tick, waiting for the next one to be scored."""
    seq: int = 0
    """Ticks ever appended (the sequence number of the next one)."""
    written: int = 0
    """``seq`` when the state was last written to the table."""

    def append(self, tick: PriceTick, *, keep: int) -> None:
        self.ts.append(tick.ts)
        self.price.append(tick.price)
        self.seq += 1
        del self.ts[:-keep], self.price[:-keep]


def history_keep(window: int | None) -> int:
    """Ticks of history kept per symbol: the window plus room for crash replays."""
    return max(window or 0, MIN_WINDOW) + REPLAY_ROOM


@dataclass(slots=True, eq=False)
class Job:
    """A tick that gets a forecast: its window, and whether it is new or replayed."""

    msg: InMessage
    tick: PriceTick
    window: np.ndarray
    new: bool
    previous: dict[str, Any] | Job | None
    """The forecast this tick scores: remembered from an earlier batch, or made by an
    earlier job of this batch (known only after inference)."""


@dataclass(slots=True)
class Plan:
    started: float
    jobs: list[Job] = field(default_factory=list)
    dead: list[OutMessage] = field(default_factory=list)
    states: dict[str, SymbolState] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)
    forecaster: Forecaster | None = None
    last_job: dict[str, Job] = field(default_factory=dict)
    size: int = 0
    """Messages in the batch."""
    ok: int = 0
    """Valid ticks (metrics are counted per batch, not per tick)."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """Valid ticks by outcome (``tickcast_ticks_total``)."""
    scales: np.ndarray | None = None
    """Per job, the naive in-sample error of its window (set by :meth:`PriceProcessor.infer`)."""


class PriceProcessor:
    def __init__(self, *, metrics: Metrics, max_event_bytes: int, eval_window: int,
                 symbol_cap: int = 50, clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.clock = clock
        """Wall time for ``processed_at`` and latency (a backtest passes event time)."""
        self.on_scored: Callable[[PriceTick, dict[str, Any]], None] | None = None
        """Called with each tick and the forecast it scores (a backtest records them)."""
        self.max_event_bytes = max_event_bytes
        self.errors = RollingForecastErrors(eval_window)
        self.symbol_cap = symbol_cap
        self._symbols: set[str] = set()

    # -- 1. plan --------------------------------------------------------------------------
    def plan(self, batch: Sequence[InMessage], load: Callable[[str], SymbolState],
             forecaster: Forecaster | None) -> Plan:
        plan = Plan(started=time.perf_counter(), forecaster=forecaster, size=len(batch))
        window = forecaster.window if forecaster is not None else None
        for msg in batch:
            try:
                tick = decode_price(msg.value, max_bytes=self.max_event_bytes)
            except EventError as exc:
                plan.dead.append(self._reject(msg, exc))
                continue
            state = plan.states.get(tick.symbol)
            if state is None:
                state = plan.states[tick.symbol] = load(tick.symbol)
            plan.partitions[tick.symbol] = msg.partition
            self._plan_tick(plan, msg, tick, state, window)
        return plan

    def _plan_tick(self, plan: Plan, msg: InMessage, tick: PriceTick, state: SymbolState,
                   window: int | None) -> None:
        newest = state.ts[-1] if state.ts else None
        if newest is None or tick.ts > newest:
            pending: dict[str, Any] | Job | None = plan.last_job.pop(tick.symbol, None)
            if pending is None:
                pending = state.pending
            # The state is logged to the changelog every batch: keep it small.
            state.append(tick, keep=history_keep(window))
            state.pending = None
            end = len(state.price)
            new = True
        else:
            end = _replay_end(state, tick)
            if end is None:
                plan.dead.append(self._reject(msg, EventError(
                    "out_of_order", f"{tick.symbol} tick ts={tick.ts} is not newer than the "
                    f"newest seen ({newest}) and matches no recent tick")))
                return
            pending, new = None, False
        plan.ok += 1
        if window is None:
            plan.outcomes["no_model"] += 1
            return
        if end < window:
            plan.outcomes["warming_up"] += 1
            return
        closes = np.asarray(state.price[end - window:end], dtype=np.float64)
        job = Job(msg, tick, closes, new, pending)
        plan.jobs.append(job)
        if new:
            plan.last_job[tick.symbol] = job

    # -- 2. infer (worker thread) -----------------------------------------------------------
    def infer(self, plan: Plan) -> np.ndarray:
        if not plan.jobs or plan.forecaster is None:
            return np.zeros(0)
        windows = np.stack([job.window for job in plan.jobs])
        started = time.perf_counter()
        forecasts = plan.forecaster.predict_prices(windows)
        self.metrics.inference_seconds.labels(model="lstm").observe(time.perf_counter() - started)
        # MASE's scale: the naive one-step error within each window (0 for a flat one).
        plan.scales = (np.abs(np.diff(windows, axis=1)).mean(axis=1) if windows.shape[1] > 1
                       else np.zeros(len(windows)))
        return forecasts

    # -- 3. finish ------------------------------------------------------------------------
    def finish(self, plan: Plan, forecasts: np.ndarray) -> list[OutMessage]:
        out = list(plan.dead)
        m, outcomes = self.metrics, plan.outcomes
        version = plan.forecaster.version if plan.forecaster else ""
        now_ms = int(self.clock() * 1000)
        scales = plan.scales.tolist() if plan.scales is not None else [0.0] * len(plan.jobs)
        made: dict[int, dict[str, Any]] = {}
        latencies: list[float] = []
        newest: dict[str, tuple[float, float]] = {}  # symbol -> (price, forecast) for gauges
        failed = 0
        for job, value, scale in zip(plan.jobs, forecasts, scales, strict=True):
            tick, last, forecast = job.tick, float(job.window[-1]), float(value)
            if not math.isfinite(forecast):
                out.append(self._reject(job.msg, EventError(
                    "scoring_failed", f"the forecaster returned {value} for this window")))
                failed += 1
                continue
            if job.new:
                previous = job.previous
                self._score(tick, made.get(id(previous)) if isinstance(previous, Job)
                            else previous)
                pending = {"ts": tick.ts, "last": last, "forecast": forecast,
                           "version": version, "scale": scale}
                made[id(job)] = plan.states[tick.symbol].pending = pending
                outcomes["forecast"] += 1
            else:
                outcomes["replayed"] += 1
            latency = (now_ms - job.msg.timestamp_ms) if job.msg.timestamp_ms else None
            record = Forecast(symbol=tick.symbol, ts=tick.ts, last_price=last,
                              forecast=forecast, horizon=1, model_version=version,
                              id=tick.id, processed_at=now_ms, latency_ms=latency)
            if latency is not None:
                latencies.append(max(latency, 0) / 1000)
            newest[tick.symbol] = (tick.price, forecast)
            out.append(OutMessage("forecasts", tick.symbol.encode(), record.to_bytes()))
        m.latency.labels(topic="forecasts").observe_many(latencies)
        for symbol, (price, forecast) in newest.items():
            self._export_symbol(symbol, price, forecast)
        # One outcome per input: a valid tick whose forecast failed is a dead letter only.
        if plan.ok - failed:
            m.events_in.labels(topic="prices", outcome="ok").inc(plan.ok - failed)
        if len(plan.dead) + failed:
            m.events_in.labels(topic="prices", outcome="dead_letter").inc(len(plan.dead) + failed)
        for outcome, n in outcomes.items():
            m.ticks.labels(outcome=outcome).inc(n)
        m.events_out.labels(topic="forecasts").inc(
            sum(1 for o in out if o.topic == "forecasts"))
        self._export_errors()
        m.batch_size.labels(agent="prices").observe(plan.size)
        m.batch_seconds.labels(agent="prices").observe(time.perf_counter() - plan.started)
        return out

    # -- scoring ----------------------------------------------------------------------------
    def _score(self, tick: PriceTick, pending: dict[str, Any] | None) -> None:
        """The forecast made at the previous tick meets the price it predicted."""
        if pending is None:
            return
        scale = pending.get("scale")  # absent from states written by older versions
        self.errors.update(last=float(pending["last"]), forecast=float(pending["forecast"]),
                           actual=tick.price, scale=float(scale) if scale else None)
        self.metrics.forecasts_scored.inc()
        if self.on_scored is not None:
            self.on_scored(tick, pending)

    def _export_errors(self) -> None:
        m, values = self.metrics, self.errors.get()
        if not values:
            return
        for model, prefix in (("lstm", "model"), ("naive", "naive")):
            m.forecast_rmse.labels(model=model).set(values[f"{prefix}_rmse"])
            m.forecast_mae.labels(model=model).set(values[f"{prefix}_mae"])
            m.forecast_mape.labels(model=model).set(values[f"{prefix}_mape"])
            m.forecast_mase.labels(model=model).set(values[f"{prefix}_mase"])
        m.forecast_skill.set(values["skill"])
        m.forecast_direction_auc.set(values["direction_auc"])
        m.forecast_dm.labels(value="stat").set(values["dm_stat"])
        m.forecast_dm.labels(value="p_value").set(values["dm_p_value"])
        m.forecast_window.set(len(self.errors))

    def _export_symbol(self, symbol: str, price: float, forecast: float) -> None:
        if symbol not in self._symbols and len(self._symbols) >= self.symbol_cap:
            symbol = "other"  # bounded label cardinality
        else:
            self._symbols.add(symbol)
        self.metrics.last_price.labels(symbol=symbol).set(price)
        self.metrics.last_forecast.labels(symbol=symbol).set(forecast)

    def _reject(self, msg: InMessage, error: EventError) -> OutMessage:
        """The dead letter of ``msg`` (its ``events_in`` outcome is counted by :meth:`finish`)."""
        self.metrics.dead_letters.labels(topic="prices", reason=error.reason).inc()
        self.metrics.events_out.labels(topic="dead-letters").inc()
        value = dead_letter(source_topic=msg.topic, partition=msg.partition, offset=msg.offset,
                            key=msg.key, raw=msg.value, error=error)
        return OutMessage("dead-letters", msg.topic.encode(), value)


def _replay_end(state: SymbolState, tick: PriceTick) -> int | None:
    """History length at the moment ``tick`` arrived, if ``tick`` is in the history."""
    for i in range(len(state.ts) - 1, -1, -1):
        if state.ts[i] == tick.ts:
            return i + 1 if state.price[i] == tick.price else None
        if state.ts[i] < tick.ts:
            return None
    return None
