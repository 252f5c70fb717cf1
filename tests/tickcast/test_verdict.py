"""Live evidence for the gate, read back from a worker's /metrics exposition."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import PointForecaster
from tickcast.scrape import Samples
from tickcast.streams.gate import AUCEvidence, DMEvidence, Policy
from tickcast.streams.messages import InMessage
from tickcast.streams.metrics import Metrics
from tickcast.streams.prices.processor import PriceProcessor, SymbolState
from tickcast.verdict import live_evidence


def samples(metrics: Metrics) -> Samples:
    text = generate_latest(metrics.registry).decode()
    return Samples({(s.name, tuple(sorted(s.labels.items()))): s.value
                    for family in text_string_to_metric_families(text) for s in family.samples})


class Scaled(PointForecaster):
    def __init__(self, factor: float, version: str, window: int = 3) -> None:
        self.factor, self.version, self.window = factor, version, window

    def predict_prices(self, windows: np.ndarray) -> np.ndarray:
        return windows[:, -1] * self.factor


def test_forecast_evidence_round_trips_through_the_exposition() -> None:
    import json

    metrics = Metrics()
    processor = PriceProcessor(metrics=metrics, max_event_bytes=4096, eval_window=50,
                               gate=Policy(min_events=10, max_events=100))
    states: dict[str, SymbolState] = {}
    rng = np.random.default_rng(1)
    prices = 100 + rng.normal(size=80).cumsum()
    batch = [InMessage("prices", 0, i, b"X", json.dumps(
        {"symbol": "X", "ts": i + 1, "price": float(p)}).encode()) for i, p in enumerate(prices)]
    plan = processor.plan(batch, lambda s, _p: states.setdefault(s, SymbolState()),
                          Scaled(1.0, "v1"), Scaled(1.02, "v2"))  # type: ignore[arg-type]
    processor.finish(plan, processor.infer(plan))
    expected = processor.evidence()
    assert isinstance(expected, DMEvidence)
    assert expected.stat > 0
    metrics.challenger_info.labels(model="lstm", version="v2").set(1)  # as ModelManager does
    source = live_evidence("w1", samples(metrics), kind="forecaster", challenger="v2")
    assert isinstance(source.evidence, DMEvidence)
    assert source.evidence.n == expected.n
    assert source.evidence.stat == pytest.approx(expected.stat)
    assert source.evidence.p == pytest.approx(expected.p)
    assert processor.verdict().decision == "reject"
    other = live_evidence("w1", samples(metrics), kind="forecaster", challenger="v3")
    assert other.evidence is None
    assert "shadows v2, not v3" in other.note
    assert metrics.registry.get_sample_value(
        "tickcast_challenger_verdict", {"model": "lstm", "decision": "reject_worse"}) == 1.0


def test_sentiment_evidence_needs_both_classes_first() -> None:
    metrics = Metrics()
    metrics.challenger_info.labels(model="rnn", version="v2").set(1)
    metrics.export_evidence_version("rnn", None, "v1")  # no batch has run since the swap
    source = live_evidence("w1", samples(metrics), kind="sentiment", challenger="v2")
    assert source.evidence is None
    assert "no evidence on v2 yet (it holds v1" in source.note
    metrics.export_evidence_version("rnn", "v1", "v2")
    source = live_evidence("w1", samples(metrics), kind="sentiment", challenger="v2")
    assert source.evidence is None
    assert "no test yet" in source.note
    for bound, value in (("estimate", 0.05), ("low", 0.01), ("high", 0.09)):
        metrics.challenger_auc_diff.labels(bound=bound).set(value)
    metrics.challenger_window.labels(model="rnn").set(400)
    source = live_evidence("w1", samples(metrics), kind="sentiment", challenger="v2")
    assert source.evidence == AUCEvidence(n=400, diff=0.05, low=0.01, high=0.09)
