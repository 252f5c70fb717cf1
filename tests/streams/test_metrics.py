"""Metric names follow Prometheus conventions; label sets are bounded and pre-initialised."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tickcast.streams.events import REASONS
from tickcast.streams.metrics import BatchHistogram, Metrics, serve_metrics
from tickcast.streams.settings import SettingsError


def families(metrics: Metrics) -> list:
    from prometheus_client import generate_latest

    return list(text_string_to_metric_families(generate_latest(metrics.registry).decode()))


def test_names_units_and_prefix() -> None:
    for family in families(Metrics()):
        assert family.name.startswith("tickcast_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if "duration" in family.name and not family.name.endswith("_created"):
            assert family.name.endswith("_seconds")  # (*_created: off in the worker)


def test_dead_letter_series_exist_before_any_event() -> None:
    metrics = Metrics()
    for reason in REASONS:
        assert metrics.registry.get_sample_value(
            "tickcast_dead_letters_total", {"topic": "texts", "reason": reason}) == 0.0


def test_each_worker_has_its_own_registry_and_endpoint() -> None:
    first, second = Metrics(), Metrics()
    first.register_model("vader", "3.3.2")
    first.scored.labels(model="vader").inc(3)
    port = serve_metrics(first, addr="127.0.0.1", port=0)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'tickcast_texts_scored_total{model="vader"} 3.0' in body
    assert 'tickcast_model_info{model="vader",version="3.3.2"} 1.0' in body
    assert second.registry.get_sample_value("tickcast_texts_scored_total",
                                            {"model": "vader"}) is None


def test_port_in_use_is_a_clear_error() -> None:
    import socket

    import pytest

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        with pytest.raises(SettingsError, match="TICKCAST_METRICS_PORT"):
            serve_metrics(Metrics(), addr="127.0.0.1", port=taken)


def test_batch_histogram_exposes_what_a_prometheus_histogram_does() -> None:
    import numpy as np
    from prometheus_client import Histogram

    buckets = (.005, .01, .025, .05, .1, .25, .5, 1.0)
    plain, batched = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("lat_seconds", "doc", ["topic"], buckets=buckets, registry=plain)
    histogram = BatchHistogram("lat_seconds", "doc", ["topic"], buckets=buckets,
                               registry=batched)
    # values on bucket bounds (le is inclusive), beyond the last bound, and zero
    values = [0.0, 0.005, 0.0051, 0.1, 0.3, 1.0, 7.5, *np.linspace(0, 2, 50)]
    for v in values:
        reference.labels(topic="forecasts").observe(v)
    histogram.labels(topic="forecasts").observe_many(values[:20])
    histogram.labels(topic="forecasts").observe_many(np.asarray(values[20:]))
    histogram.labels(topic="forecasts").observe_many([])

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {(s.name, s.labels.get("le", "")): s.value
                for family in registry.collect() for s in family.samples
                if not s.name.endswith("_created")}

    expected, got = samples(plain), samples(batched)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert got[("lat_seconds_bucket", "0.005")] == 2 + 1  # 0.0, 0.005 and linspace's 0
    with pytest.raises(ValueError, match="takes labels"):
        histogram.labels(model="lstm")
