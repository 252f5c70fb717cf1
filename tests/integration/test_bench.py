"""The benchmark harness runs end to end on a small workload (numbers are not asserted:
speed targets live in `make bench`, as ratios measured in one run)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tickcast.bench.harness import BenchConfig, run_bench, table
from tickcast.models.registry import ModelStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_quick_bench_measures_every_pipeline(kafka_bootstrap: str, tmp_path: Path,
                                             store: ModelStore) -> None:
    config = replace(BenchConfig.quick(), ticks=1000, texts=300, baseline_seconds=3.0,
                     latency_seconds=2.0, texts_only=200)
    results = run_bench(config, bootstrap=kafka_bootstrap, model_dir=store.root,
                        state=tmp_path / "bench", log=lambda _: None)
    window = 10  # the tiny forecaster's
    assert results["expected_outputs"] == 1000 - 10 * (window - 1) + 300
    assert results["tickcast_texts_only"]["events"] == config.texts_only
    for name in ("tickcast", "tickcast_texts_only", "ceiling", "faust_passthrough", "baseline"):
        assert results[name]["events_per_s"] > 0
        assert results[name]["rss_peak_mib"] > 0
    assert results["tickcast"]["ready_s"] > 0
    assert results["latency"]["forecasts"] > 0
    assert all(row["max_abs_diff"] <= 1e-4 for row in results["micro"])
    assert "tickcast over baseline" in table(results)
    # the run's topics (inputs, outputs, Faust's changelogs) are gone afterwards
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        prefix = results["prefix"]
        left = [t for t in admin.list_topics() if t.startswith(prefix)]
    finally:
        admin.close()
    assert prefix.startswith("bench")
    assert not left
