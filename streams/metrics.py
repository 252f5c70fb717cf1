"""Prometheus metrics of a worker: names, units and label sets in one place.

Names follow Prometheus conventions: ``tickcast_`` namespace, base units, ``_total`` on
counters, bounded labels (``topic``, ``reason``, ``model``, ``outcome``) pre-initialised so
dashboards see zeros rather than gaps. Each :class:`Metrics` owns its registry, so tests get a
fresh one and two workers in one process never collide.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Final

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from tickcast.streams.events import REASONS
from tickcast.streams.gate import VERDICTS, Verdict, verdict_label
from tickcast.streams.settings import SettingsError

__all__ = ["INPUT_TOPICS", "LABEL_OUTCOMES", "BatchHistogram", "Metrics", "serve_metrics"]

INPUT_TOPICS: Final = ("prices", "texts", "labels")
LABEL_OUTCOMES: Final = ("matched", "waiting", "duplicate", "expired")
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
STAGE_BUCKETS: Final = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0)
"""Buckets of the stage timings, fine around the latency objective (50 ms) and the stall
threshold (250 ms)."""


class Metrics:
    """All metrics of one worker, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_in = Counter(
            "tickcast_events_in_total", "Events consumed, by logical input topic and outcome "
            "(ok or dead_letter).", ["topic", "outcome"], registry=r)
        self.events_out = Counter(
            "tickcast_events_out_total", "Events produced, by logical output topic.", ["topic"],
            registry=r)
        self.dead_letters = Counter(
            "tickcast_dead_letters_total", "Input events sent to dead-letters, by reason.",
            ["topic", "reason"], registry=r)
        self.scored = Counter(
            "tickcast_texts_scored_total", "Texts scored, by sentiment model.", ["model"],
            registry=r)
        self.labels = Counter(
            "tickcast_labels_total", "Ground-truth labels seen, by outcome: matched to a scored "
            "text, waiting for its text, duplicate of one already counted, or expired unmatched.",
            ["outcome"], registry=r)
        self.auc = Gauge(
            "tickcast_sentiment_auc", "Rolling ROC AUC of each sentiment model over the last "
            "TICKCAST_AUC_WINDOW labelled texts (NaN while the window has a single class).",
            ["model"], registry=r)
        self.auc_window = Gauge(
            "tickcast_sentiment_auc_window_labels", "Labelled texts in the rolling AUC window, "
            "by class.", ["model", "label"], registry=r)
        self.batch_size = Histogram(
            "tickcast_batch_size", "Events per processed batch, by agent.", ["agent"],
            buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram(
            "tickcast_batch_duration_seconds", "Wall time to process one batch, by agent.",
            ["agent"], registry=r)
        self.model_info = Gauge(
            "tickcast_model_info", "Model version serving (value 1), by model.",
            ["model", "version"], registry=r)
        self.challenger_info = Gauge(
            "tickcast_challenger_info", "Model version in shadow beside the champion (value "
            "1), by model; absent when none.", ["model", "version"], registry=r)
        self.model_swaps = Counter(
            "tickcast_model_swaps_total", "model-updates handled, by model and outcome: "
            "swapped, current (already serving or shadowing), stale (older), refused (failed "
            "a check), shadowing (a challenger loaded), shadow_cleared, shadow_refused (a "
            "challenger failed a check; the champion is unaffected), unknown_model, "
            "invalid_event.", ["model", "outcome"], registry=r)
        self.model_update_errors = Counter(
            "tickcast_model_update_errors_total", "Malformed model-updates events, by reason.",
            ["reason"], registry=r)
        self.agreement = Gauge(
            "tickcast_sentiment_agreement_ratio", "Share of the last TICKCAST_AUC_WINDOW texts "
            "scored by both models on which the RNN and VADER call the same class.",
            registry=r)
        self.kappa = Gauge(
            "tickcast_sentiment_kappa", "Cohen's kappa between the RNN's and VADER's calls over "
            "the same window (NaN when undefined).", registry=r)
        self.auc_diff = Gauge(
            "tickcast_sentiment_auc_diff", "RNN AUC minus VADER AUC on the same labelled texts "
            "(both models serving), with its 95% DeLong interval: bound=estimate|low|high.",
            ["bound"], registry=r)
        self.pending = Gauge(
            "tickcast_sentiment_pending", "Scored texts waiting for a label, and labels waiting "
            "for their text.", ["kind"], registry=r)
        self.ticks = Counter(
            "tickcast_ticks_total", "Valid price ticks by outcome: forecast, replayed "
            "(redelivered; forecast again), warming_up (window not full), no_model.",
            ["outcome"], registry=r)
        self.inference_seconds = Histogram(
            "tickcast_inference_duration_seconds", "Wall time of one batched inference, by "
            "model.", ["model"], buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25,
                                          .5, 1.0), registry=r)
        self.latency = BatchHistogram(
            "tickcast_event_latency_seconds", "From an input event's Kafka timestamp to its "
            "output being produced, by output topic.", ["topic"],
            buckets=(.005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0), registry=r)
        self.queue_wait = Histogram(
            "tickcast_batch_queue_wait_seconds", "From the oldest event's Kafka timestamp in "
            "a batch to the start of its processing, by agent.", ["agent"],
            buckets=(.005, .01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0), registry=r)
        self.forecasts_scored = Counter(
            "tickcast_forecasts_scored_total", "Forecasts compared with the price they "
            "predicted.", registry=r)
        self.forecast_rmse = Gauge(
            "tickcast_forecast_rmse", "Rolling RMSE of next-tick forecasts (price units), for "
            "the LSTM and naive persistence on the same ticks.", ["model"], registry=r)
        self.forecast_mae = Gauge(
            "tickcast_forecast_mae", "Rolling mean absolute error (price units).", ["model"],
            registry=r)
        self.forecast_mape = Gauge(
            "tickcast_forecast_mape_ratio", "Rolling mean absolute percentage error, as a "
            "ratio (0.01 = 1%).", ["model"], registry=r)
        self.forecast_skill = Gauge(
            "tickcast_forecast_skill_ratio", "1 - RMSE(LSTM)/RMSE(naive) over the window: > 0 "
            "means the LSTM beats persistence.", registry=r)
        self.forecast_direction_auc = Gauge(
            "tickcast_forecast_direction_auc", "Rolling ROC AUC of the predicted move as a "
            "score for 'the price goes up'.", registry=r)
        self.forecast_mase = Gauge(
            "tickcast_forecast_mase", "Rolling mean absolute scaled error: each error divided "
            "by the naive one-step error of the window it was forecast from (< 1 beats what "
            "persistence did in-sample).", ["model"], registry=r)
        self.forecast_dm = Gauge(
            "tickcast_forecast_dm", "Diebold-Mariano test of the LSTM against naive "
            "persistence on scaled squared errors over the window (HLN-corrected): "
            "value=stat (< 0: LSTM better) or p_value (two-sided).", ["value"], registry=r)
        self.interval_coverage = Gauge(
            "tickcast_forecast_interval_coverage_ratio", "Share of the window's next prices "
            "inside the central interval at level=80|95 (%), for model=lstm (the forecaster's "
            "intervals) and model=baseline (persistence with the empirical quantiles of the "
            "symbol's recent returns). Honest intervals cover their level.",
            ["model", "level"], registry=r)
        self.interval_width = Gauge(
            "tickcast_forecast_interval_width_ratio", "Mean width of the central interval "
            "over the window, relative to the last price (0.02 = 2% of the price).",
            ["model", "level"], registry=r)
        self.interval_score = Gauge(
            "tickcast_forecast_interval_score_ratio", "Mean interval (Winkler) score over the "
            "window relative to the last price: the width plus 2/(1 - level) times any miss; "
            "lower is better, and it cannot be gamed by claiming narrower or wider intervals.",
            ["model", "level"], registry=r)
        self.interval_window = Gauge(
            "tickcast_forecast_interval_window", "Scored forecasts with intervals in the "
            "rolling window (at most TICKCAST_FORECAST_WINDOW).", registry=r)
        self.challenger_dm = Gauge(
            "tickcast_challenger_forecast_dm", "Diebold-Mariano test of the challenger in "
            "shadow against the champion on the same ticks (scaled squared errors, "
            "HLN-corrected): value=stat (< 0: the challenger is better) or p_value.",
            ["model", "value"], registry=r)
        self.challenger_auc_diff = Gauge(
            "tickcast_challenger_auc_diff", "Challenger AUC minus champion (RNN) AUC on the "
            "same labelled texts, with its 95% DeLong interval: bound=estimate|low|high.",
            ["bound"], registry=r)
        self.challenger_evidence = Gauge(
            "tickcast_challenger_evidence_info", "The challenger version the exported "
            "evidence (tickcast_challenger_*) is about (value 1); it follows a new challenger "
            "at the next batch.", ["model", "version"], registry=r)
        self.challenger_verdict = Gauge(
            "tickcast_challenger_verdict", "The gate's decision on the challenger from this "
            "worker's evidence (value 1; the others 0): promote, reject_worse (significantly "
            "worse), reject_no_gain (no significant gain at TICKCAST_GATE_MAX_EVENTS), watch.",
            ["model", "decision"], registry=r)
        self.challenger_window = Gauge(
            "tickcast_challenger_window_size", "Events in the challenger's paired window: "
            "scored forecasts (model=lstm) or labelled texts (model=rnn) that both the "
            "challenger and the champion scored.", ["model"], registry=r)
        self.challenger_outputs = Counter(
            "tickcast_challenger_outputs_total", "Events the challenger in shadow scored "
            "(scored), or failed to (failed: no challenger output; the champion's is sent "
            "as usual).", ["model", "outcome"], registry=r)
        self.forecast_window = Gauge(
            "tickcast_forecast_window_size", "Scored forecasts in the rolling window.",
            registry=r)
        self.state_loads = Counter(
            "tickcast_state_loads_total", "Symbol states read from the state store into the "
            "worker's cache: a symbol's first tick after a start or a rebalance, or after the "
            "cache (TICKCAST_STATE_CACHE) dropped it.", registry=r)
        self.state_changelog_records = Counter(
            "tickcast_state_changelog_records_total", "Records the worker wrote to its "
            "state changelog (a tombstone counts).", registry=r)
        self.state_changelog_bytes = Counter(
            "tickcast_state_changelog_bytes_total", "Key and value bytes the worker wrote to "
            "its state changelog, before compression and before compaction.", registry=r)
        self.state_cached = Gauge(
            "tickcast_state_cached_symbols", "Symbols whose decoded state the worker holds "
            "(at most TICKCAST_STATE_CACHE).", registry=r)
        self.last_price = Gauge(
            "tickcast_last_price", "Latest price per symbol (symbols beyond the cap fold into "
            "'other').", ["symbol"], registry=r)
        self.last_forecast = Gauge(
            "tickcast_last_forecast", "Latest next-tick forecast per symbol (same cap).",
            ["symbol"], registry=r)
        self.consumer_lag = Gauge(
            "tickcast_consumer_lag", "Messages behind the end of each input topic on this "
            "worker's partitions (high-water mark minus committed offset).", ["topic"],
            registry=r)
        self.delivery_seconds = Histogram(
            "tickcast_delivery_duration_seconds", "From handing a batch's outputs and state "
            "writes to the producer to the broker acknowledging all of them, by agent.",
            ["agent"], buckets=STAGE_BUCKETS, registry=r)
        self.commit_seconds = Histogram(
            "tickcast_commit_duration_seconds", "Wall time of one offset commit.",
            buckets=STAGE_BUCKETS, registry=r)
        self.loop_lag = Histogram(
            "tickcast_event_loop_lag_seconds", "How late a periodic timer on the worker's "
            "event loop fires: time the loop was blocked by something else.",
            buckets=STAGE_BUCKETS, registry=r)
        self.gc_pause = Histogram(
            "tickcast_gc_pause_seconds", "Python garbage-collection pauses, by generation.",
            ["generation"], buckets=STAGE_BUCKETS, registry=r)
        self.rebalances = Counter(
            "tickcast_rebalances_total", "Partition assignments this worker received (the "
            "first one included).", registry=r)
        self.ready = Gauge(
            "tickcast_ready", "1 once the worker consumes: partitions assigned and its tables "
            "recovered after the latest rebalance; 0 from a revocation until then.",
            registry=r)
        self.assigned_partitions = Gauge(
            "tickcast_assigned_partitions", "Input-topic partitions assigned to this worker "
            "(0 until it joined the consumer group).", ["topic"], registry=r)
        self._preinitialise()

    def _preinitialise(self) -> None:
        for topic in INPUT_TOPICS:
            for outcome in ("ok", "dead_letter"):
                self.events_in.labels(topic=topic, outcome=outcome)
            for reason in REASONS:
                self.dead_letters.labels(topic=topic, reason=reason)
        for topic in ("forecasts", "sentiment", "dead-letters"):
            self.events_out.labels(topic=topic)
        for topic in INPUT_TOPICS:
            self.assigned_partitions.labels(topic=topic)
            self.consumer_lag.labels(topic=topic)
        for agent in ("prices", "sentiment"):
            self.delivery_seconds.labels(agent=agent)
        for generation in ("0", "1", "2"):
            self.gc_pause.labels(generation=generation)
        for outcome in ("forecast", "replayed", "warming_up", "no_model"):
            self.ticks.labels(outcome=outcome)
        for model in ("lstm", "naive"):
            for gauge in (self.forecast_rmse, self.forecast_mae, self.forecast_mape,
                          self.forecast_mase):
                gauge.labels(model=model).set(math.nan)
        for gauge in (self.forecast_skill, self.forecast_direction_auc):
            gauge.set(math.nan)
        for value in ("stat", "p_value"):
            self.forecast_dm.labels(value=value).set(math.nan)
        for model in ("lstm", "baseline"):
            for level in ("80", "95"):
                for gauge in (self.interval_coverage, self.interval_width, self.interval_score):
                    gauge.labels(model=model, level=level).set(math.nan)
        for gauge in (self.forecast_rmse, self.forecast_mae, self.forecast_mape,
                      self.forecast_mase):
            gauge.labels(model="challenger").set(math.nan)
        for value in ("stat", "p_value"):
            self.challenger_dm.labels(model="lstm", value=value).set(math.nan)
        for bound in ("estimate", "low", "high"):
            self.challenger_auc_diff.labels(bound=bound).set(math.nan)
        self.auc.labels(model="challenger").set(math.nan)
        for model in ("lstm", "rnn"):
            self.challenger_window.labels(model=model)
            for decision in VERDICTS:
                self.challenger_verdict.labels(model=model, decision=decision)
            for outcome in ("scored", "failed"):
                self.challenger_outputs.labels(model=model, outcome=outcome)
        for outcome in LABEL_OUTCOMES:
            self.labels.labels(outcome=outcome)
        for kind in ("texts", "labels"):
            self.pending.labels(kind=kind)
        self.agreement.set(math.nan)
        self.kappa.set(math.nan)
        for bound in ("estimate", "low", "high"):
            self.auc_diff.labels(bound=bound).set(math.nan)

    def export_evidence_version(self, model: str, old: str | None, new: str | None) -> None:
        """Tag the exported evidence with the challenger it is about."""
        if old is not None and old != new:
            with contextlib.suppress(KeyError):
                self.challenger_evidence.remove(model, old)
        if new is not None:
            self.challenger_evidence.labels(model=model, version=new).set(1)

    def export_verdict(self, model: str, verdict: Verdict | None) -> None:
        """One decision at 1, the others at 0; all 0 while no challenger is in shadow."""
        current = verdict_label(verdict) if verdict is not None else None
        for decision in VERDICTS:
            self.challenger_verdict.labels(model=model, decision=decision).set(
                1.0 if decision == current else 0.0)

    def observe_queue_wait(self, agent: str, timestamps_ms: list[int | None]) -> None:
        """Oldest Kafka timestamp in a batch -> now, as the batch starts processing."""
        stamps = [t for t in timestamps_ms if t]
        if stamps:
            wait = time.time() - min(stamps) / 1000
            self.queue_wait.labels(agent=agent).observe(max(wait, 0.0))

    def register_model(self, model: str, version: str | None) -> None:
        """Pre-initialise a sentiment model's series; mark ``version`` serving if given."""
        self.scored.labels(model=model)
        self.auc.labels(model=model).set(math.nan)
        for label in ("0", "1"):
            self.auc_window.labels(model=model, label=label).set(0)
        if version is not None:
            self.model_info.labels(model=model, version=version).set(1)


class BatchHistogram(Collector):
    """A labelled Prometheus histogram fed a whole batch of observations at once.

    ``Histogram.observe`` takes two locks per value, on the worker's event loop, for every
    event. Here a batch is bucketed with numpy and added under one lock. The exposition is a
    standard histogram (``_bucket{le}``, ``_sum``, ``_count``), equal to what ``Histogram``
    shows for the same values.
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], *,
                 buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self.name, self.documentation = name, documentation
        self.labelnames = tuple(labelnames)
        self.bounds = np.asarray(sorted(buckets), dtype=np.float64)
        self._children: dict[tuple[str, ...], _BatchChild] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def labels(self, **labels: str) -> _BatchChild:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        key = tuple(str(labels[n]) for n in self.labelnames)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, _BatchChild(self.bounds))
        return child

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        bounds = [*(_bound(b) for b in self.bounds), "+Inf"]
        with self._lock:
            children = list(self._children.items())
        for key, child in children:
            counts, total = child.snapshot()
            cumulative = np.cumsum(counts)
            family.add_metric(list(key), list(zip(bounds, map(float, cumulative), strict=True)),
                              total)
        yield family


class _BatchChild:
    def __init__(self, bounds: np.ndarray) -> None:
        self._bounds = bounds
        self._counts = np.zeros(len(bounds) + 1, dtype=np.int64)  # the last is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: Sequence[float] | np.ndarray) -> None:
        """Count each value in the first bucket whose bound is >= it (Prometheus ``le``)."""
        x = np.asarray(values, dtype=np.float64)
        if x.size == 0:
            return
        add = np.bincount(np.searchsorted(self._bounds, x, side="left"),
                          minlength=len(self._counts))
        total = float(x.sum())
        with self._lock:
            self._counts += add
            self._sum += total

    def snapshot(self) -> tuple[np.ndarray, float]:
        with self._lock:
            return self._counts.copy(), self._sum


def _bound(bound: float) -> str:
    # Prometheus' own formatting of bucket bounds (floatToGoString): 0.005, 1.0, 10.0
    return repr(float(bound))


def serve_metrics(metrics: Metrics, *, addr: str, port: int) -> int:
    """Serve ``/metrics`` on ``addr:port`` in a daemon thread; returns the bound port."""
    try:
        server, _thread = start_http_server(port, addr=addr, registry=metrics.registry)
    except OSError as exc:
        raise SettingsError(f"cannot serve /metrics on {addr}:{port}: {exc.strerror or exc}; "
                            "set TICKCAST_METRICS_PORT to a free port (0 picks one)") from None
    return int(server.server_address[1])
