"""The benchmark harness runs end to end on a small workload (numbers are not asserted:
speed targets live in `make bench`, as ratios measured in one run)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from tickcast_bench.harness import BenchConfig, Target, quix_installed, run_bench, table

from tickcast.models.registry import ModelStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _renamed(store: ModelStore, name: str, new_name: str) -> str:
    """A copy of ``name``'s LATEST artifact under ``new_name``, made LATEST there."""
    version = store.latest(name)
    assert version is not None
    target = store.path(new_name, version)
    shutil.copytree(store.path(name, version), target)
    manifest = json.loads((target / "manifest.json").read_text())
    (target / "manifest.json").write_text(json.dumps({**manifest, "name": new_name}))
    store.promote(new_name, version)
    return version


def test_quick_bench_measures_every_pipeline(kafka_bootstrap: str, tmp_path: Path,
                                             store: ModelStore) -> None:
    """On models named otherwise than the defaults (TICKCAST_FORECASTER_MODEL and
    TICKCAST_SENTIMENT_MODEL), which every pipeline must serve."""
    lstm, rnn = _renamed(store, "gold-lstm", "bench-lstm"), _renamed(store, "sentiment-rnn",
                                                                     "bench-rnn")
    shutil.rmtree(store.root / "gold-lstm")
    shutil.rmtree(store.root / "sentiment-rnn")
    config = replace(BenchConfig.quick(), ticks=1000, texts=300, baseline_seconds=3.0,
                     latency_seconds=2.0, texts_only=200)
    target = Target(bootstrap=kafka_bootstrap, model_dir=store.root, forecaster="bench-lstm",
                    sentiment="bench-rnn")
    results = run_bench(config, target, state=tmp_path / "bench", log=lambda _: None)
    assert results["models"] == {"lstm": lstm, "rnn": rnn}
    window = 10  # the tiny forecaster's
    assert results["expected_outputs"] == 1000 - 10 * (window - 1) + 300
    # Every output came out ("events" counts only those after the clock started, which on
    # this tiny input can find most of them already done).
    assert results["tickcast_texts_only"]["outputs"] == config.texts_only
    for name in ("tickcast", "tickcast_texts_only", "ceiling", "faust_passthrough", "baseline"):
        assert results[name]["events_per_s"] > 0
        assert results[name]["rss_peak_mib"] > 0
    if quix_installed() or os.environ.get("CI"):  # make setup installs the Quix peer
        for name in ("quix_passthrough", "quix_pipeline"):
            assert results[name]["events_per_s"] > 0, name
        assert results["quix_pipeline"]["events"] == results["expected_outputs"]
    assert results["tickcast"]["ready_s"] > 0
    for name in ("tickcast", "tickcast_texts_only"):  # the quick run has no 2-worker run
        # The worker's CPU per event counts its whole life; its cores count only the span
        # measured, from the moment it is seen ready, which can find this tiny input already
        # done (0 cores then).
        assert results[name]["cpu_s_per_1k_events"] > 0
        assert 0 <= results[name]["worker_cores"] <= (os.cpu_count() or 1)
        assert 0 < results[name]["machine_cores_busy"] <= (os.cpu_count() or 1)
    assert results["latency"]["forecasts"] > 0
    # A worker with a challenger in shadow for each model, on the same input; the backtest
    # engine on it without a broker; latency with the challengers.
    assert results["tickcast_challenger"]["outputs"] == results["expected_outputs"]
    assert results["tickcast_challenger"]["events_per_s"] > 0
    assert results["backtest"]["events"] == 1000 + 300
    assert results["latency_challenger"]["forecasts"] > 0
    assert {"challenger_over_tickcast", "backtest_over_tickcast",
            "intervals_over_point_only"} <= set(results["ratios"])
    # The forecaster's point-only twin: the same outputs, none of the intervals' work.
    assert results["tickcast_point_only"]["outputs"] == results["expected_outputs"]
    assert "With a challenger in shadow" in table(results)
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
    # nor are the pipelines' scratch files (progress, Faust's data directories), here or
    # beside the models
    assert not [p.name for p in (tmp_path / "bench").iterdir() if p.is_dir()
                and p.name.startswith(("ceiling-", "faust-", "baseline-"))]
    assert not list(store.root.parent.glob("bench-*"))


def test_latency_probe_reports_percentiles_and_deletes_its_topics(
        kafka_bootstrap: str, tmp_path: Path, store: ModelStore,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from kafka import KafkaAdminClient
    from tickcast_bench import probe

    monkeypatch.setenv("TICKCAST_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("TICKCAST_MODEL_DIR", str(store.root))
    out = tmp_path / "latency.json"
    assert probe.main(["--latency", "100", "--seconds", "2", "--state",
                       str(tmp_path / "probe"), "--json", str(out)]) == 0
    line, worst = capsys.readouterr().out.strip().splitlines()[-2:]
    assert line.startswith("run 1/1: latency at ")
    assert " p99 " in line
    # 200 ticks over 10 symbols; the tiny forecaster's first 9 ticks per symbol warm it up
    assert "(110 forecasts, ready in " in line
    assert "0 rebalance(s) after ready" in line
    assert worst.strip().startswith("worst second ")
    (run,) = json.loads(out.read_text())["runs"]
    # Two seconds planned; a sender that falls behind on a busy machine adds rows, never drops
    # a forecast.
    seconds = [row["second"] for row in run["timeline"]]
    assert seconds == list(range(len(seconds)))
    assert len(seconds) >= 2
    assert sum(row["forecasts"] for row in run["timeline"]) == 110
    assert run["timeline"][1]["stages"]["produce_ack"]["n"] > 0
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert not [t for t in admin.list_topics() if t.startswith("plat")]
    finally:
        admin.close()


def test_latency_probe_refuses_a_rate_of_zero(capsys: pytest.CaptureFixture[str]) -> None:
    from tickcast_bench import probe

    assert probe.main(["--latency", "0"]) == 2
    assert "must be > 0" in capsys.readouterr().err


def test_passthrough_probe_forwards_the_whole_backlog(
        kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tickcast_bench import probe
    from tickcast_bench.harness import delete_topics

    monkeypatch.setenv("TICKCAST_KAFKA_BOOTSTRAP", kafka_bootstrap)
    assert probe.main(["--ticks", "300", "--passthrough", "--state", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    prefix = out.split(" ticks and 0 texts to ")[1].split("*")[0]
    try:
        assert "Faust passthrough" in out
        assert "(300 events)" in out  # every tick forwarded, counted from the first
        # a second run on the same backlog counts what its topics hold
        assert probe.main(["--prefix", prefix, "--passthrough", "--state",
                           str(tmp_path)]) == 0
        assert "(300 events)" in capsys.readouterr().out
    finally:
        delete_topics(kafka_bootstrap, prefix)
