"""One batch of ``prices`` in, ``forecasts`` and ``dead-letters`` out, in three steps.

1. :meth:`PriceProcessor.plan` (event loop): decode (:meth:`PriceProcessor.decode`), apply
   the tick rule to each symbol's history, and collect the windows that need a forecast,
   made ready for the model.
2. :meth:`PriceProcessor.run` (the inference thread): the batched model calls for all of
   them, and nothing else (they release the GIL; everything around them needs it).
3. :meth:`PriceProcessor.complete`, then :meth:`PriceProcessor.finish` (event loop): the
   forecasts and their intervals from the model's outputs; score the previous forecast of
   each symbol against the tick that just arrived, build the forecast records, remember the
   new forecasts. (:meth:`PriceProcessor.infer` is steps 2 and 3a in one call.)

**The tick rule.** Per symbol, a tick newer than the newest seen extends the history. A tick
equal to one already in the history (same ``ts`` and ``price``, e.g. redelivered after a
restart) is *replayed*: its forecast is computed again from the history as it stood then, so
at-least-once delivery never loses a forecast (consumers de-duplicate on ``symbol, ts``). Any
other tick at or before the newest ``ts`` — out of order, or a conflicting price for a seen
``ts`` — goes to ``dead-letters`` as ``out_of_order``. The first ``W - 1`` ticks of a symbol
only warm its window up.

**Lanes.** A decoded batch can be split into parts by symbol (:meth:`Decoded.lanes`), each
planned, inferred and finished on its own. A symbol always falls in the same lane, so as long
as each lane's parts are planned and finished in batch order, the tick rule sees every
symbol's ticks in order whatever the other lanes do; the worker plans and finishes one lane
on the loop while the other's part is inferred in the thread.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from tickcast.models.predictors import Forecaster, Prepared
from tickcast.models.preprocessing import SERVED_LEVELS
from tickcast.streams.deadletters import dead_letter
from tickcast.streams.evaluation.forecast_error import (
    Exports,
    RollingForecastErrors,
    RollingLossPairs,
)
from tickcast.streams.evaluation.intervals import (
    BASELINE_MIN_RETURNS,
    TRACKING_RATE,
    RollingIntervals,
    empirical_bounds,
    track,
    widen,
)
from tickcast.streams.events import (
    EventError,
    Forecast,
    PriceTick,
    decode_price,
    interval_fields,
)
from tickcast.streams.gate import DMEvidence, Policy, Verdict, decide
from tickcast.streams.messages import InMessage, OutMessage
from tickcast.streams.metrics import Metrics

__all__ = ["REPLAY_ROOM", "Decoded", "Plan", "PriceProcessor", "SymbolState", "history_keep",
           "history_keep_for", "lane"]

log = logging.getLogger(__name__)

# Ticks kept beyond the window, so redeliveries can be re-forecast. After a crash, Kafka
# redelivers what was processed but not yet committed: at most the commit interval's worth
# (``broker_commit_every`` = 256 acked events) plus the batches in flight.
REPLAY_ROOM: Final = 768
MIN_WINDOW: Final = 32  # history kept while no forecaster serves (a typical window)


@dataclass(slots=True)
class SymbolState:
    """What the worker remembers per symbol (stored in a Faust table: see
    :mod:`tickcast.streams.prices.state`)."""

    ts: array[int] = field(default_factory=lambda: array("q"))
    """Event times of the history kept, oldest first (machine integers: a list would hold a
    Python object per tick, about four times the memory)."""
    price: array[float] = field(default_factory=lambda: array("d"))
    pending: dict[str, Any] | None = None
    """The forecast made at the newest tick, waiting for the next one to be scored."""
    seq: int = 0
    """Ticks ever appended (the sequence number of the next one)."""
    written: int = 0
    """``seq`` when the state was last written to the table."""
    track: dict[str, Any] | None = None
    """The intervals' online tracking: ``{"version": model version, "theta": one offset per
    served level}`` (``None``: not yet)."""
    stale: tuple[str, ...] = ()
    """Stored keys of an older state format, deleted by the next write."""

    def append(self, tick: PriceTick, *, keep: int) -> None:
        self.ts.append(tick.ts)
        self.price.append(tick.price)
        self.seq += 1
        del self.ts[:-keep], self.price[:-keep]


def history_keep(window: int | None) -> int:
    """Ticks of history kept per symbol: the window plus room for crash replays."""
    return max(window or 0, MIN_WINDOW) + REPLAY_ROOM


def history_keep_for(*forecasters: Forecaster | None) -> int:
    """:func:`history_keep` for the longest window of the forecasters serving (the champion
    and the challenger in shadow)."""
    windows = [f.window for f in forecasters if f is not None]
    return history_keep(max(windows) if windows else None)


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
    shadow: np.ndarray | None = None
    """The challenger's window, when one is in shadow and the history is long enough."""
    history: array[float] | None = None
    """The closes behind the baseline intervals (up to ``B + 1``, ending with the window's),
    when the forecaster has intervals."""


@dataclass(slots=True)
class Decoded:
    """A batch decoded (or a part of one: :meth:`lanes`)."""

    started: float
    """When the batch's processing started (``time.perf_counter``)."""
    ticks: list[tuple[InMessage, PriceTick]] = field(default_factory=list)
    """The valid ticks, in batch order."""
    dead: list[OutMessage] = field(default_factory=list)
    """The dead letters of the messages that did not decode."""
    size: int = 0
    """Messages of the batch this part accounts for in ``tickcast_batch_size`` (the first
    part takes the whole batch, the others none)."""
    last: bool = True
    """Whether this is the batch's last part (it observes ``tickcast_batch_seconds``)."""

    def lanes(self, count: int) -> list[Decoded]:
        """The batch in ``count`` parts, one per lane: a symbol always goes to the same lane
        (:func:`lane`), every tick of it in batch order. Lanes without ticks give empty
        parts; the first part takes the dead letters and the batch's size."""
        groups: list[list[tuple[InMessage, PriceTick]]] = [[] for _ in range(count)]
        for item in self.ticks:
            groups[lane(item[1].symbol, count)].append(item)
        out = [Decoded(self.started, group, last=False) for group in groups]
        out[0].dead, out[0].size = self.dead, self.size
        out[-1].last = True
        return out


def lane(symbol: str, count: int) -> int:
    """The lane of ``symbol`` among ``count``: the same in every batch and every process."""
    return zlib.crc32(symbol.encode()) % count


@dataclass(slots=True)
class Plan:
    started: float
    jobs: list[Job] = field(default_factory=list)
    dead: list[OutMessage] = field(default_factory=list)
    states: dict[str, SymbolState] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)
    forecaster: Forecaster | None = None
    challenger: Forecaster | None = None
    last_job: dict[str, Job] = field(default_factory=dict)
    size: int = 0
    """Messages of the batch counted in ``tickcast_batch_size`` (see :attr:`Decoded.size`)."""
    last: bool = True
    """Whether this plan finishes its batch (see :attr:`Decoded.last`)."""
    ok: int = 0
    """Valid ticks (metrics are counted per batch, not per tick)."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """Valid ticks by outcome (``tickcast_ticks_total``)."""
    scales: np.ndarray | None = None
    """Per job, the naive in-sample error of its window (set by
    :meth:`PriceProcessor.complete`)."""
    shadow: np.ndarray | None = None
    """Per job, the challenger's forecast (NaN where it made none)."""
    bounds: np.ndarray | None = None
    """Per job, the forecaster's intervals ``(len(SERVED_LEVELS), 2)``, if it has them."""
    units: np.ndarray | None = None
    """Per job, the window's volatility unit (with ``bounds``)."""
    baseline: np.ndarray | None = None
    """Per job, the baseline's intervals (NaN where the history is too short for them)."""
    prepared: Prepared | None = None
    """The jobs' windows made ready for the forecaster's model call (``None``: no jobs)."""
    shadow_index: list[int] = field(default_factory=list)
    """The jobs the challenger has a window for."""
    shadow_prepared: Prepared | None = None
    """Their windows made ready for the challenger's model call."""
    shadow_outputs: np.ndarray | None = None
    """The challenger's model outputs (``None``: none, or its call failed)."""


class PriceProcessor:
    def __init__(self, *, metrics: Metrics, max_event_bytes: int, eval_window: int,
                 symbol_cap: int = 50, clock: Callable[[], float] = time.time,
                 gate: Policy | None = None, baseline_window: int = 250,
                 tracking_rate: float = TRACKING_RATE) -> None:
        self.metrics = metrics
        self.clock = clock
        """Wall time for ``processed_at`` and latency (a backtest passes event time)."""
        self.monotonic: Callable[[], float] = time.monotonic
        """Elapsed time, for how often large windows are recomputed (``refresh_due``)."""
        self.on_scored: Callable[[PriceTick, dict[str, Any]], None] | None = None
        """Called with each tick and the forecast it scores (a backtest records them)."""
        self.max_event_bytes = max_event_bytes
        self.errors = RollingForecastErrors(eval_window)
        self.eval_window = eval_window
        # The challenger in shadow: its errors, and its losses paired with the champion's on
        # the same ticks. Both restart when the challenger changes.
        self.gate = gate or Policy()
        self.challenger_version: str | None = None
        self.challenger_errors = RollingForecastErrors(eval_window)
        self.challenger_pairs = RollingLossPairs(self.gate.max_events)
        self.symbol_cap = symbol_cap
        self._symbol_gauges: dict[str, tuple[Any, Any]] = {}
        """Up to ``symbol_cap`` symbols' (last price, last forecast) gauge children."""
        self.baseline_window = baseline_window
        self.tracking_rate = tracking_rate
        """Step of the intervals' online tracking per outcome (0: served as the model made
        them)."""
        self.intervals = RollingIntervals(eval_window)
        self._exports = Exports()
        """When each exported statistic was last computed."""

    # -- 1. plan --------------------------------------------------------------------------
    def decode(self, batch: Sequence[InMessage]) -> Decoded:
        """Decode ``batch``: its valid ticks, and a dead letter for every other message."""
        decoded = Decoded(started=time.perf_counter(), size=len(batch))
        for msg in batch:
            try:
                tick = decode_price(msg.value, max_bytes=self.max_event_bytes)
            except EventError as exc:
                decoded.dead.append(self._reject(msg, exc))
                continue
            decoded.ticks.append((msg, tick))
        return decoded

    def plan(self, batch: Sequence[InMessage] | Decoded, load: Callable[[str, int], SymbolState],
             forecaster: Forecaster | None, challenger: Forecaster | None = None) -> Plan:
        """The plan of ``batch`` (messages, or a batch or part already decoded)."""
        decoded = batch if isinstance(batch, Decoded) else self.decode(batch)
        plan = Plan(started=decoded.started, forecaster=forecaster, size=decoded.size,
                    last=decoded.last, dead=list(decoded.dead),
                    challenger=challenger if forecaster is not None else None)
        window = forecaster.window if forecaster is not None else None
        keep = history_keep_for(forecaster, challenger)
        # With intervals, each job also takes the baseline's history: its last B + 1 closes.
        span = (self.baseline_window + 1
                if forecaster is not None and forecaster.intervals else None)
        for msg, tick in decoded.ticks:
            state = plan.states.get(tick.symbol)
            if state is None:
                state = plan.states[tick.symbol] = load(tick.symbol, msg.partition)
            plan.partitions[tick.symbol] = msg.partition
            self._plan_tick(plan, msg, tick, state, window, keep, span)
        self._prepare(plan)
        return plan

    def _prepare(self, plan: Plan) -> None:
        """The jobs' windows made ready for the model calls (see :meth:`run`)."""
        if not plan.jobs or plan.forecaster is None:
            return
        plan.prepared = plan.forecaster.prepare(np.stack([job.window for job in plan.jobs]))
        if plan.challenger is None:
            return
        plan.shadow_index = [i for i, job in enumerate(plan.jobs) if job.shadow is not None]
        if not plan.shadow_index:
            return
        try:
            plan.shadow_prepared = plan.challenger.prepare(
                np.stack([plan.jobs[i].shadow for i in plan.shadow_index]))
        except Exception:  # a failure costs the challenger this batch and nothing else
            log.exception("the challenger %s failed on a batch of %d", plan.challenger.version,
                          len(plan.shadow_index))

    def _plan_tick(self, plan: Plan, msg: InMessage, tick: PriceTick, state: SymbolState,
                   window: int | None, keep: int, span: int | None) -> None:
        newest = state.ts[-1] if state.ts else None
        if newest is None or tick.ts > newest:
            pending: dict[str, Any] | Job | None = plan.last_job.pop(tick.symbol, None)
            if pending is None:
                pending = state.pending
            # The state is logged to the changelog every batch: keep it small.
            state.append(tick, keep=keep)
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
        job = Job(msg, tick, np.asarray(state.price[end - window:end], dtype=np.float64), new,
                  pending)
        if span is not None:
            # A slice (a copy) here; the 2-D array is built with the batch's in the worker
            # thread.
            job.history = state.price[max(0, end - span):end]
        if plan.challenger is not None and end >= plan.challenger.window:
            job.shadow = np.asarray(state.price[end - plan.challenger.window:end],
                                    dtype=np.float64)
        plan.jobs.append(job)
        if new:
            plan.last_job[tick.symbol] = job

    # -- 2. run (the inference thread) ------------------------------------------------------
    def run(self, plan: Plan) -> np.ndarray:
        """The plan's model calls, and nothing else: the champion's outputs (the challenger's
        go to ``plan.shadow_outputs``). On the ONNX path each call releases the GIL for all of
        its work, so the thread that makes them holds the GIL only to start and to return;
        everything around them is numpy on the loop (:meth:`plan`, :meth:`complete`), where a
        thread waiting for the GIL between small steps would otherwise slow the batch."""
        prepared = plan.prepared
        if prepared is None or plan.forecaster is None:
            return np.zeros((0, 1))
        started = time.perf_counter()
        outputs = plan.forecaster.predict_outputs(prepared.features)
        self.metrics.inference_seconds.labels(model="lstm").observe(time.perf_counter() - started)
        if plan.challenger is not None and plan.shadow_prepared is not None:
            started = time.perf_counter()
            try:
                plan.shadow_outputs = plan.challenger.predict_outputs(
                    plan.shadow_prepared.features)
            except Exception:  # a failure costs the challenger this batch and nothing else
                log.exception("the challenger %s failed on a batch of %d",
                              plan.challenger.version, len(plan.shadow_index))
            self.metrics.inference_seconds.labels(model="lstm_challenger").observe(
                time.perf_counter() - started)
        return outputs

    # -- 3a. complete (event loop) ----------------------------------------------------------
    def complete(self, plan: Plan, outputs: np.ndarray) -> np.ndarray:
        """The models' outputs -> the forecasts (and the plan's intervals, baseline, MASE
        scales and the challenger's forecasts)."""
        if plan.prepared is None or plan.forecaster is None:
            return np.zeros(0)
        prediction = plan.forecaster.complete(plan.prepared, outputs)
        plan.bounds, plan.units = prediction.bounds, prediction.units
        if plan.bounds is not None:
            plan.baseline = self._baseline(plan)
        windows = plan.prepared.windows
        # MASE's scale: the naive one-step error within each window (0 for a flat one).
        plan.scales = (np.abs(np.diff(windows, axis=1)).mean(axis=1) if windows.shape[1] > 1
                       else np.zeros(len(windows)))
        if plan.challenger is not None:
            plan.shadow = self._challenger_forecasts(plan)
        return prediction.prices

    def infer(self, plan: Plan) -> np.ndarray:
        """:meth:`run` and :meth:`complete` in one call, for callers without an inference
        thread (the backtest, tests)."""
        return self.complete(plan, self.run(plan))

    def _baseline(self, plan: Plan) -> np.ndarray:
        """The baseline's intervals per job, from the closes it has (rows of one length are
        computed together; fewer than ``BASELINE_MIN_RETURNS`` returns give NaN)."""
        out = np.full((len(plan.jobs), len(SERVED_LEVELS), 2), np.nan)
        by_length: dict[int, list[int]] = {}
        for i, job in enumerate(plan.jobs):
            if job.history is not None and len(job.history) > BASELINE_MIN_RETURNS:
                by_length.setdefault(len(job.history), []).append(i)
        for index in by_length.values():
            out[index] = empirical_bounds(np.array([plan.jobs[i].history for i in index],
                                                   dtype=np.float64), SERVED_LEVELS)
        return out

    def _challenger_forecasts(self, plan: Plan) -> np.ndarray:
        """Per job, the challenger's forecast (NaN where it has no window, or failed)."""
        assert plan.challenger is not None
        shadow = np.full(len(plan.jobs), np.nan)
        if plan.shadow_prepared is None or plan.shadow_outputs is None:
            return shadow
        try:
            values = plan.challenger.complete(plan.shadow_prepared, plan.shadow_outputs).prices
            shadow[plan.shadow_index] = np.asarray(values, dtype=np.float64).reshape(
                len(plan.shadow_index))
        except Exception:
            log.exception("the challenger %s failed on a batch of %d", plan.challenger.version,
                          len(plan.shadow_index))
        return shadow

    # -- 3b. finish ------------------------------------------------------------------------
    def finish(self, plan: Plan, forecasts: np.ndarray) -> list[OutMessage]:
        out = list(plan.dead)
        m, outcomes = self.metrics, plan.outcomes
        version = plan.forecaster.version if plan.forecaster else ""
        now_ms = int(self.clock() * 1000)
        scales = plan.scales.tolist() if plan.scales is not None else [0.0] * len(plan.jobs)
        challenger = plan.challenger.version if plan.challenger is not None else None
        if challenger != self.challenger_version:
            self._restart_challenger(challenger)
        shadow = plan.shadow.tolist() if plan.shadow is not None else [math.nan] * len(plan.jobs)
        # Intervals as flat [lower_80, upper_80, lower_95, upper_95] per job.
        n = len(plan.jobs)
        bounds = plan.bounds.reshape(n, -1).tolist() if plan.bounds is not None else None
        usable = _usable(plan.bounds).tolist() if plan.bounds is not None else None
        units = plan.units.tolist() if plan.units is not None else None
        baseline = plan.baseline.reshape(n, -1).tolist() if plan.baseline is not None else None
        shadowed = 0
        made: dict[int, dict[str, Any]] = {}
        latencies: list[float] = []
        newest: dict[str, tuple[float, float]] = {}  # symbol -> (price, forecast) for gauges
        failed = scored = 0
        for i, (job, value, scale, rival) in enumerate(zip(plan.jobs, forecasts, scales, shadow,
                                                           strict=True)):
            tick, last, forecast = job.tick, float(job.window[-1]), float(value)
            interval = bounds[i] if bounds is not None else None
            if not math.isfinite(forecast):
                out.append(self._reject(job.msg, EventError(
                    "scoring_failed", f"the forecaster returned {value} for this window")))
                failed += 1
                continue
            if usable is not None and not usable[i]:
                out.append(self._reject(job.msg, EventError(
                    "scoring_failed", f"the forecaster returned the intervals {interval} for "
                    "this window")))
                failed += 1
                continue
            rival_ok = challenger is not None and math.isfinite(rival)
            shadowed += rival_ok
            state = plan.states[tick.symbol]
            if job.new:
                previous = job.previous
                scored += self._score(tick, made.get(id(previous)) if isinstance(previous, Job)
                                      else previous, state)
            if interval is not None and units is not None:
                theta = self._theta(state, version)
                if theta is not None:
                    interval = widen(interval, units[i], theta)
            if job.new:
                pending = {"ts": tick.ts, "last": last, "forecast": forecast,
                           "version": version, "scale": scale}
                if interval is not None:
                    pending["bounds"] = tuple(interval)
                    assert baseline is not None
                    if math.isfinite(baseline[i][0]):
                        pending["baseline"] = tuple(baseline[i])
                if rival_ok:
                    pending["challenger"] = {"version": challenger, "forecast": rival}
                made[id(job)] = state.pending = pending
                outcomes["forecast"] += 1
            else:
                outcomes["replayed"] += 1
            latency = (now_ms - job.msg.timestamp_ms) if job.msg.timestamp_ms else None
            record = Forecast(symbol=tick.symbol, ts=tick.ts, last_price=last,
                              forecast=forecast, horizon=1, model_version=version,
                              id=tick.id, processed_at=now_ms, latency_ms=latency,
                              challenger_version=challenger if rival_ok else None,
                              challenger_forecast=rival if rival_ok else None,
                              **(interval_fields(interval) if interval is not None else {}))
            if latency is not None:
                latencies.append(max(latency, 0) / 1000)
            newest[tick.symbol] = (tick.price, forecast)
            # Finite throughout: the tick's price (decoded), the forecast, the challenger's
            # (both checked above) and the intervals (usable).
            out.append(OutMessage("forecasts", tick.symbol.encode(),
                                  record.to_bytes(checked=True)))
        if scored:
            m.forecasts_scored.inc(scored)
        m.latency.labels(topic="forecasts").observe_many(latencies)
        self._export_symbols(newest)
        # One outcome per input: a valid tick whose forecast failed is a dead letter only.
        if plan.ok - failed:
            m.events_in.labels(topic="prices", outcome="ok").inc(plan.ok - failed)
        if len(plan.dead) + failed:
            m.events_in.labels(topic="prices", outcome="dead_letter").inc(len(plan.dead) + failed)
        for outcome, n in outcomes.items():
            m.ticks.labels(outcome=outcome).inc(n)
        m.events_out.labels(topic="forecasts").inc(
            sum(1 for o in out if o.topic == "forecasts"))
        if plan.last:  # whole-window statistics: once a batch, not once a part
            self._export_errors()
            self._export_intervals()
        if challenger is not None:
            m.challenger_outputs.labels(model="lstm", outcome="scored").inc(shadowed)
            missed = sum(1 for job in plan.jobs if job.shadow is not None) - shadowed
            if missed:
                m.challenger_outputs.labels(model="lstm", outcome="failed").inc(missed)
            if plan.last:
                self._export_challenger()
        if plan.size:
            m.batch_size.labels(agent="prices").observe(plan.size)
        if plan.last:
            m.batch_seconds.labels(agent="prices").observe(time.perf_counter() - plan.started)
        return out

    # -- scoring ----------------------------------------------------------------------------
    def _score(self, tick: PriceTick, pending: dict[str, Any] | None,
               state: SymbolState | None = None) -> bool:
        """The forecast made at the previous tick meets the price it predicted (and moves the
        symbol's interval tracking); whether there was one."""
        if pending is None:
            return False
        scale = pending.get("scale")  # absent from states written by older versions
        self.errors.update(last=float(pending["last"]), forecast=float(pending["forecast"]),
                           actual=tick.price, scale=float(scale) if scale else None)
        interval = pending.get("bounds")
        if interval is not None:
            self.intervals.update(last=float(pending["last"]), actual=tick.price,
                                  bounds={"lstm": interval, "baseline": pending.get("baseline")})
            made_by = str(pending.get("version", ""))
            if self.tracking_rate and state is not None:
                theta = self._theta(state, made_by) or [0.0] * len(SERVED_LEVELS)
                state.track = {"version": made_by, "theta": tuple(track(
                    theta, interval, tick.price, SERVED_LEVELS, self.tracking_rate))}
        rival = pending.get("challenger")
        if rival is not None and rival.get("version") == self.challenger_version and scale:
            last, actual = float(pending["last"]), tick.price
            self.challenger_errors.update(last=last, forecast=float(rival["forecast"]),
                                          actual=actual, scale=float(scale))
            self.challenger_pairs.update(
                ((float(rival["forecast"]) - actual) / scale) ** 2,
                ((float(pending["forecast"]) - actual) / scale) ** 2)
        if self.on_scored is not None:
            self.on_scored(tick, pending)
        return True

    def _theta(self, state: SymbolState, version: str) -> list[float] | None:
        """The symbol's tracking offsets for ``version``'s intervals: none while tracking is
        off, and none learnt on another model version (they start again with each model)."""
        t = state.track
        if not self.tracking_rate or not isinstance(t, dict) or t.get("version") != version:
            return None
        return list(t["theta"])

    def _restart_challenger(self, version: str | None) -> None:
        """A new challenger (or none): its evidence starts again; forecasts still pending from
        the previous one are not scored."""
        log.info("forecast evidence on the challenger restarts: %s -> %s",
                 self.challenger_version, version)
        old, self.challenger_version = self.challenger_version, version
        self.challenger_errors = RollingForecastErrors(self.eval_window)
        self.challenger_pairs = RollingLossPairs(self.gate.max_events)
        # The empty evidence is exported before the tag saying whose it is: a scrape that
        # sees the new tag never sees the previous challenger's numbers.
        self._export_challenger()
        self.metrics.export_evidence_version("lstm", old, version)

    def _export_challenger(self) -> None:
        m = self.metrics
        if self._due("challenger", self.challenger_errors):
            values = self.challenger_errors.get()
            for name, gauge in (("rmse", m.forecast_rmse), ("mae", m.forecast_mae),
                                ("mape", m.forecast_mape), ("mase", m.forecast_mase)):
                gauge.labels(model="challenger").set(values.get(f"model_{name}", math.nan))
        dm = self.challenger_pairs.get()
        m.challenger_dm.labels(model="lstm", value="stat").set(dm.stat if dm else math.nan)
        m.challenger_dm.labels(model="lstm", value="p_value").set(
            dm.p_value if dm else math.nan)
        m.challenger_window.labels(model="lstm").set(len(self.challenger_pairs))
        m.export_verdict("lstm", self.verdict() if self.challenger_version else None)

    def evidence(self) -> DMEvidence | None:
        """The challenger against the champion, for the gate (``None``: no test yet)."""
        dm = self.challenger_pairs.get()
        return None if dm is None else DMEvidence(n=dm.n, stat=dm.stat, p=dm.p_value)

    def verdict(self) -> Verdict:
        return decide(self.evidence(), self.gate)

    def _due(self, name: str, stats: RollingForecastErrors | RollingIntervals) -> bool:
        """Whether ``stats`` changed enough since it was last exported to compute it again
        (:func:`~tickcast.streams.evaluation.forecast_error.refresh_due`)."""
        return self._exports.due(name, stats, self.monotonic)

    def _export_errors(self) -> None:
        if not self._due("errors", self.errors):
            return
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

    def _export_intervals(self) -> None:
        if not self._due("intervals", self.intervals):
            return
        m = self.metrics
        for (model, level), values in self.intervals.get().items():
            labels = {"model": model, "level": f"{round(level * 100)}"}
            m.interval_coverage.labels(**labels).set(values["coverage"])
            m.interval_width.labels(**labels).set(values["width"])
            m.interval_score.labels(**labels).set(values["score"])
        m.interval_window.set(len(self.intervals))

    def _export_symbols(self, newest: dict[str, tuple[float, float]]) -> None:
        """Each symbol's last price and forecast; symbols beyond the first ``symbol_cap``
        fold into ``other`` (bounded label cardinality), set once a batch."""
        gauges, m = self._symbol_gauges, self.metrics
        other = None
        for symbol, values in newest.items():
            pair = gauges.get(symbol)
            if pair is None:
                if len(gauges) >= self.symbol_cap:
                    other = values
                    continue
                pair = gauges[symbol] = (m.last_price.labels(symbol=symbol),
                                         m.last_forecast.labels(symbol=symbol))
            pair[0].set(values[0])
            pair[1].set(values[1])
        if other is not None:
            m.last_price.labels(symbol="other").set(other[0])
            m.last_forecast.labels(symbol="other").set(other[1])

    def _reject(self, msg: InMessage, error: EventError) -> OutMessage:
        """The dead letter of ``msg`` (its ``events_in`` outcome is counted by :meth:`finish`)."""
        self.metrics.dead_letters.labels(topic="prices", reason=error.reason).inc()
        self.metrics.events_out.labels(topic="dead-letters").inc()
        value = dead_letter(source_topic=msg.topic, partition=msg.partition, offset=msg.offset,
                            key=msg.key, raw=msg.value, error=error)
        return OutMessage("dead-letters", msg.topic.encode(), value)


def _usable(bounds: np.ndarray) -> np.ndarray:
    """Per job, whether its ``(levels, 2)`` bounds are finite and positive with lower <= upper
    at every level."""
    lo, hi = bounds[..., 0], bounds[..., 1]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(lo) & np.isfinite(hi) & (lo > 0) & (lo <= hi)
    return ok.all(axis=-1)


def _replay_end(state: SymbolState, tick: PriceTick) -> int | None:
    """History length at the moment ``tick`` arrived, if ``tick`` is in the history."""
    for i in range(len(state.ts) - 1, -1, -1):
        if state.ts[i] == tick.ts:
            return i + 1 if state.price[i] == tick.price else None
        if state.ts[i] < tick.ts:
            return None
    return None
