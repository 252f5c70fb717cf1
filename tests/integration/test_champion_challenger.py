"""Champion and challenger on the real broker: shadow serving, the gate's decisions with
their audit events, and a backtest that agrees with a live worker on the same events."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.helpers import biased_forecaster, wait_for
from tests.integration.conftest import consume, produce
from tests.integration.test_streaming_inference import gold_ticks
from tickcast.cli import main
from tickcast.models.registry import ModelStore
from tickcast.training.data import sample_texts

pytestmark = pytest.mark.integration
WINDOW = 10  # the tiny forecaster's
CHALLENGER_FIELDS = ("challenger_version", "challenger_forecast")


def _cli_env(monkeypatch: pytest.MonkeyPatch, worker, store: ModelStore, tmp_path: Path) -> None:
    for name, value in {"KAFKA_BOOTSTRAP": worker.bootstrap, "TOPIC_PREFIX": worker.prefix,
                        "TOPIC_PARTITIONS": "4", "MODEL_DIR": str(store.root),
                        "STATE_DIR": str(tmp_path / "cli"), "GATE_MIN_EVENTS": "100"}.items():
        monkeypatch.setenv(f"TICKCAST_{name}", value)


def _verdict(worker, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["models", "verdict", "gold-lstm", "--metrics", worker.metrics_url,
                 "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _champion_fields(record: dict) -> dict:
    return {k: v for k, v in record.items()
            if k not in (*CHALLENGER_FIELDS, "processed_at", "latency_ms")}


def test_the_gate_rejects_a_worse_challenger_and_promotes_a_better_one(
        start_worker, store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    good = store.latest("gold-lstm")
    assert good is not None
    bad = biased_forecaster(store.root, store.path("gold-lstm", good), bias=2.0).version
    bare = start_worker(TICKCAST_MODEL_DIR=str(store.root))  # never sees a challenger
    worker = start_worker(TICKCAST_MODEL_DIR=str(store.root), TICKCAST_GATE_MIN_EVENTS="100")
    _cli_env(monkeypatch, worker, store, tmp_path)

    # 1. A worse challenger in shadow: the champion's outputs are untouched, the gate rejects.
    assert main(["models", "shadow", "gold-lstm", bad, "--publish"]) == 0
    wait_for(lambda: worker.value("tickcast_challenger_info", model="lstm", version=bad) == 1,
             "the worker to load the challenger")
    n = 300
    produce(worker.bootstrap, gold_ticks(worker.prefix, 4000, n))
    produce(bare.bootstrap, gold_ticks(bare.prefix, 4000, n))
    expected = n - WINDOW + 1
    shadowed = [json.loads(v) for _, v in consume(
        worker.bootstrap, f"{worker.prefix}forecasts", expected=expected)]
    alone = [json.loads(v) for _, v in consume(
        bare.bootstrap, f"{bare.prefix}forecasts", expected=expected)]
    assert len(shadowed) == len(alone) == expected
    assert sorted(map(_champion_fields, shadowed), key=lambda r: r["ts"]) == sorted(
        map(_champion_fields, alone), key=lambda r: r["ts"])
    assert {r["challenger_version"] for r in shadowed} == {bad}
    assert all(r["challenger_forecast"] > r["forecast"] for r in shadowed)  # biased upwards
    wait_for(lambda: worker.value("tickcast_challenger_window_size", model="lstm")
             == expected - 1, "every shadow forecast but the last to be scored")
    verdict = _verdict(worker, capsys)
    assert (verdict["decision"], verdict["worse"]) == ("reject", True)
    assert verdict["evidence"]["n"] == expected - 1
    assert worker.value("tickcast_challenger_verdict", model="lstm",
                        decision="reject_worse") == 1
    assert main(["models", "verdict", "gold-lstm", "--metrics", worker.metrics_url, "--apply",
                 "--publish"]) == 0
    wait_for(lambda: worker.value("tickcast_challenger_info", model="lstm", version=bad)
             is None, "the shadow to end")
    assert store.challenger("gold-lstm") is None
    assert store.latest("gold-lstm") == good

    # 2. The biased version serves; the good one, older, challenges it and is promoted.
    assert main(["models", "promote", "gold-lstm", bad, "--publish"]) == 0
    assert main(["models", "shadow", "gold-lstm", good, "--publish"]) == 0
    wait_for(lambda: worker.value("tickcast_challenger_info", model="lstm", version=good) == 1
             and worker.value("tickcast_model_info", model="lstm", version=bad) == 1,
             "the biased champion and the good challenger")
    produce(worker.bootstrap, gold_ticks(worker.prefix, 4300, n))
    # --auto reads the workers until the gate decides; what is left of the last challenger's
    # evidence is never taken for this one's.
    capsys.readouterr()
    assert main(["models", "verdict", "gold-lstm", "--metrics", worker.metrics_url, "--auto",
                 "--interval", "0.5", "--timeout", "120", "--publish"]) == 0
    printed = capsys.readouterr().out
    assert "verdict: PROMOTE" in printed
    assert "REJECT" not in printed
    wait_for(lambda: worker.value("tickcast_model_info", model="lstm", version=good) == 1,
             "the promoted challenger to serve")
    assert worker.value("tickcast_challenger_info", model="lstm", version=good) is None
    assert store.latest("gold-lstm") == good

    # 3. Both decisions are audit events on model-updates, with their statistics.
    updates = consume(worker.bootstrap, f"{worker.prefix}model-updates", expected=100,
                      timeout=10)
    schema = Draft202012Validator(json.loads(
        (resources.files("tickcast.streams") / "schemas" / "model-updates.schema.json")
        .read_text()))
    decisions = []
    for key, value in updates:
        event = json.loads(value)
        schema.validate(event)
        if event.get("role") == "decision":
            assert key == f"gold-lstm#decision#{event['version']}".encode()
            decisions.append(event)
    assert [(d["decision"], d["version"], d["champion"]) for d in decisions] == [
        ("reject", bad, good), ("promote", good, bad)]
    for decision in decisions:
        evidence = decision["evidence"]
        assert evidence["kind"] == "dm"
        assert evidence["n"] >= 100
        assert evidence["p_value"] < 0.05
        assert evidence["policy"]["min_events"] == 100
    assert worker.value("tickcast_model_swaps_total", model="lstm", outcome="audit") == 2


def test_a_backtest_of_the_same_events_ends_with_the_workers_metrics(
        start_worker, store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    worker = start_worker(TICKCAST_MODEL_DIR=str(store.root))
    ticks = gold_ticks(worker.prefix, 5000, 250)
    texts = sample_texts().head(400)
    text_records = []
    for i, row in enumerate(texts.itertuples(index=False)):
        event = {"id": str(row.id), "ts": 1_700_000_000_000 + i, "text": str(row.text),
                 "label": int(row.label)}
        text_records.append((f"{worker.prefix}texts", str(row.id).encode(),
                             json.dumps(event).encode()))
    produce(worker.bootstrap, ticks + text_records)
    wait_for(lambda: worker.value("tickcast_forecasts_scored_total") == 250 - WINDOW,
             "every forecast but the last to be scored")
    wait_for(lambda: worker.value("tickcast_labels_total", outcome="matched") == len(texts),
             "every text to meet its label")

    prices_file, texts_file = tmp_path / "prices.jsonl", tmp_path / "texts.jsonl"
    prices_file.write_bytes(b"".join(v + b"\n" for _, _, v in ticks))
    texts_file.write_bytes(b"".join(v + b"\n" for _, _, v in text_records))
    monkeypatch.setenv("TICKCAST_MODEL_DIR", str(store.root))
    out = tmp_path / "backtest"
    assert main(["backtest", "--prices", str(prices_file), "--texts", str(texts_file),
                 "--out", str(out), "--no-progress"]) == 0
    final: dict[tuple[str, str], float] = {}
    with (out / "series.csv").open() as f:
        for row in csv.DictReader(f):
            if row["value"]:
                final[(row["kind"], row["metric"])] = float(row["value"])
    live = worker.metrics()
    pairs = {
        ("prices", "model_rmse"): ("tickcast_forecast_rmse", {"model": "lstm"}),
        ("prices", "naive_rmse"): ("tickcast_forecast_rmse", {"model": "naive"}),
        ("prices", "model_mase"): ("tickcast_forecast_mase", {"model": "lstm"}),
        ("prices", "skill"): ("tickcast_forecast_skill_ratio", {}),
        ("prices", "dm_stat"): ("tickcast_forecast_dm", {"value": "stat"}),
        ("prices", "dm_p_value"): ("tickcast_forecast_dm", {"value": "p_value"}),
        ("prices", "direction_auc"): ("tickcast_forecast_direction_auc", {}),
        ("texts", "auc_rnn"): ("tickcast_sentiment_auc", {"model": "rnn"}),
        ("texts", "auc_vader"): ("tickcast_sentiment_auc", {"model": "vader"}),
        ("texts", "auc_diff"): ("tickcast_sentiment_auc_diff", {"bound": "estimate"}),
        ("texts", "auc_diff_low"): ("tickcast_sentiment_auc_diff", {"bound": "low"}),
        ("texts", "kappa"): ("tickcast_sentiment_kappa", {}),
    }
    for key, (name, labels) in pairs.items():
        assert key in final, key
        assert live.value(name, **labels) == pytest.approx(final[key], rel=1e-5), key
