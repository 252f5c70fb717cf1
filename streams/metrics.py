"""Prometheus metrics of a worker: names, units and label sets in one place.

Names follow Prometheus conventions: ``tickcast_`` namespace, base units, ``_total`` on
counters, bounded labels (``topic``, ``reason``, ``model``, ``outcome``) pre-initialised so
dashboards see zeros rather than gaps. Each :class:`Metrics` owns its registry, so tests get a
fresh one and two workers in one process never collide.
"""

from __future__ import annotations

import math
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from tickcast.streams.events import REASONS

__all__ = ["INPUT_TOPICS", "LABEL_OUTCOMES", "Metrics", "serve_metrics"]

INPUT_TOPICS: Final = ("prices", "texts", "labels")
LABEL_OUTCOMES: Final = ("matched", "waiting", "duplicate", "expired")
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


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
        self.pending = Gauge(
            "tickcast_sentiment_pending", "Scored texts waiting for a label, and labels waiting "
            "for their text.", ["kind"], registry=r)
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
        for outcome in LABEL_OUTCOMES:
            self.labels.labels(outcome=outcome)
        for kind in ("texts", "labels"):
            self.pending.labels(kind=kind)

    def register_model(self, model: str, version: str) -> None:
        """Pre-initialise a sentiment model's series and mark ``version`` as serving."""
        self.scored.labels(model=model)
        self.auc.labels(model=model).set(math.nan)
        for label in ("0", "1"):
            self.auc_window.labels(model=model, label=label).set(0)
        self.model_info.labels(model=model, version=version).set(1)


def serve_metrics(metrics: Metrics, *, addr: str, port: int) -> int:
    """Serve ``/metrics`` on ``addr:port`` in a daemon thread; returns the bound port."""
    try:
        server, _thread = start_http_server(port, addr=addr, registry=metrics.registry)
    except OSError as exc:
        raise OSError(f"cannot serve /metrics on {addr}:{port}: {exc.strerror or exc}; "
                      "set TICKCAST_METRICS_PORT to a free port (0 picks one)") from None
    return int(server.server_address[1])
