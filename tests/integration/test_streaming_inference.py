"""Streaming inference on the real broker: forecasts per tick, RNN beside VADER, hot swaps
without a restart, tampered updates refused, and state restored after a restart."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from tests.helpers import wait_for
from tests.integration.conftest import consume, produce
from tickcast.models.registry import ModelStore
from tickcast.streams.evaluation.intervals import interval_score
from tickcast.training.data import gold_closes, sample_texts
from tickcast.training.publish import publish_update

pytestmark = pytest.mark.integration
WINDOW = 10  # the tiny forecaster's



def gold_ticks(prefix: str, start: int, n: int) -> list[tuple[str, bytes, bytes]]:
    gold = gold_closes().iloc[start:start + n]
    out = []
    for date, close in zip(gold["date"], gold["close"], strict=True):
        ts = int(date.timestamp() * 1000)
        out.append((f"{prefix}prices", b"XAU", json.dumps(
            {"symbol": "XAU", "ts": ts, "price": float(close), "id": f"XAU-{ts}"}).encode()))
    return out


def forecasts_of(worker, expected: int, timeout: float = 60.0) -> list[dict]:
    records = consume(worker.bootstrap, f"{worker.prefix}forecasts", expected=expected,
                      timeout=timeout)
    return [json.loads(v) for _, v in records]


def test_one_forecast_per_tick_and_errors_match_numpy(start_worker, store: ModelStore
                                                      ) -> None:
    worker = start_worker(TICKCAST_MODEL_DIR=str(store.root))
    ticks = gold_ticks(worker.prefix, 4000, 300)
    produce(worker.bootstrap, ticks)
    out = forecasts_of(worker, expected=300 - WINDOW + 1)
    assert len(out) == 300 - WINDOW + 1
    assert len({f["ts"] for f in out}) == len(out)
    assert {f["model_version"] for f in out} == {store.latest("gold-lstm")}
    # nothing more arrives: exactly one per tick after warm-up
    assert len(forecasts_of(worker, expected=len(out) + 1, timeout=3)) == len(out)

    wait_for(lambda: worker.value("tickcast_forecasts_scored_total") == len(out) - 1,
             "every forecast but the last to be scored")
    prices = np.array([json.loads(v)["price"] for _, _, v in ticks])[WINDOW:]
    made = np.array([f["forecast"] for f in out])[:-1]
    last = np.array([f["last_price"] for f in out])[:-1]
    lstm_rmse = np.sqrt(np.mean((made - prices) ** 2))
    naive_rmse = np.sqrt(np.mean((last - prices) ** 2))
    assert worker.value("tickcast_forecast_rmse", model="lstm") == pytest.approx(lstm_rmse)
    assert worker.value("tickcast_forecast_rmse", model="naive") == pytest.approx(naive_rmse)
    assert worker.value("tickcast_forecast_skill_ratio") == pytest.approx(
        1 - lstm_rmse / naive_rmse)
    moved = prices != last
    assert worker.value("tickcast_forecast_direction_auc") == pytest.approx(
        roc_auc_score(prices[moved] > last[moved], (made - last)[moved]))
    # Every forecast carries nested intervals; the coverage, width and score gauges equal
    # NumPy on the bounds the records carried and the prices that followed.
    for f in out:
        assert 0 < f["lower_95"] <= f["lower_80"] < f["upper_80"] <= f["upper_95"], f
    for level in ("80", "95"):
        lo = np.array([f[f"lower_{level}"] for f in out])[:-1]
        hi = np.array([f[f"upper_{level}"] for f in out])[:-1]
        labels = {"model": "lstm", "level": level}
        assert worker.value("tickcast_forecast_interval_coverage_ratio", **labels
                            ) == pytest.approx(np.mean((lo <= prices) & (prices <= hi)))
        assert worker.value("tickcast_forecast_interval_width_ratio", **labels
                            ) == pytest.approx(np.mean((hi - lo) / last))
        assert worker.value("tickcast_forecast_interval_score_ratio", **labels
                            ) == pytest.approx(np.mean(interval_score(lo, hi, prices,
                                                                      int(level) / 100) / last))
        assert 0 <= worker.value("tickcast_forecast_interval_coverage_ratio", model="baseline",
                                 level=level) <= 1
    assert worker.value("tickcast_forecast_interval_window") == len(out) - 1


def test_rnn_scores_beside_vader_and_gauges_match_sklearn(start_worker, store: ModelStore
                                                          ) -> None:
    worker = start_worker(TICKCAST_MODEL_DIR=str(store.root))
    texts = sample_texts().sample(n=200, random_state=5)
    produce(worker.bootstrap, [(f"{worker.prefix}texts", row.id.encode(), json.dumps(
        {"id": row.id, "ts": 1, "text": row.text, "label": int(row.label)}).encode())
        for row in texts.itertuples()])
    records = [json.loads(v) for _, v in consume(worker.bootstrap, f"{worker.prefix}sentiment",
                                                 expected=200)]
    assert len(records) == 200
    assert {r["rnn_version"] for r in records} == {store.latest("sentiment-rnn")}
    wait_for(lambda: worker.value("tickcast_labels_total", outcome="matched") == 200,
             "200 matched labels")
    # The window is in processing order, which is the order of `records` per partition;
    # with all 200 inside the 500-wide window, order does not matter.
    y = np.array([r["label"] for r in records])
    rnn = np.array([r["rnn_score"] for r in records])
    compound = np.array([r["vader_compound"] for r in records])
    assert worker.value("tickcast_sentiment_auc", model="rnn") == pytest.approx(
        roc_auc_score(y, rnn))
    assert worker.value("tickcast_sentiment_kappa") == pytest.approx(
        cohen_kappa_score(rnn >= 0.5, compound >= 0.05))
    assert worker.value("tickcast_sentiment_agreement_ratio") == pytest.approx(
        np.mean([r["agree"] for r in records]))
    assert worker.value("tickcast_sentiment_auc_diff", bound="estimate") == pytest.approx(
        roc_auc_score(y, rnn) - roc_auc_score(y, compound))


def new_version(store: ModelStore, version: str):
    """Write a copy of LATEST as a newer version (what a training run would do)."""
    source = store.path("gold-lstm", store.latest("gold-lstm"))
    target = store.path("gold-lstm", version)
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.update(version=version, created_at=manifest["created_at"] + 60_000)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return store.verify("gold-lstm", version)


def test_hot_swap_mid_stream_loses_and_doubles_nothing(start_worker, store: ModelStore
                                                       ) -> None:
    worker = start_worker(TICKCAST_MODEL_DIR=str(store.root))
    old = store.latest("gold-lstm")
    produce(worker.bootstrap, gold_ticks(worker.prefix, 5000, 150))
    assert len(forecasts_of(worker, expected=150 - WINDOW + 1)) == 150 - WINDOW + 1
    manifest = new_version(store, "v-swapped")
    publish_update(manifest, bootstrap=[worker.bootstrap], topic=f"{worker.prefix}model-updates")
    wait_for(lambda: worker.value("tickcast_model_swaps_total", model="lstm",
                                  outcome="swapped") == 1, "the swap")
    produce(worker.bootstrap, gold_ticks(worker.prefix, 5150, 150))
    out = forecasts_of(worker, expected=300 - WINDOW + 1)
    assert len(out) == 300 - WINDOW + 1
    assert len({f["ts"] for f in out}) == len(out)
    versions = [f["model_version"] for f in out]
    assert versions[: 150 - WINDOW + 1] == [old] * (150 - WINDOW + 1)
    assert versions[150 - WINDOW + 1:] == ["v-swapped"] * 150
    assert worker.proc.poll() is None  # no restart


def test_tampered_update_is_refused_and_the_old_model_keeps_serving(
        start_worker, store: ModelStore) -> None:
    worker = start_worker(TICKCAST_MODEL_DIR=str(store.root))
    old = store.latest("gold-lstm")
    manifest = new_version(store, "v-tampered")
    (store.path("gold-lstm", "v-tampered") / "preprocessing.json").write_text(
        '{"window": 10, "scale": 1e-9}')
    publish_update(manifest, bootstrap=[worker.bootstrap], topic=f"{worker.prefix}model-updates")
    wait_for(lambda: worker.value("tickcast_model_swaps_total", model="lstm",
                                  outcome="refused") == 1, "the refusal")
    assert worker.value("tickcast_model_info", model="lstm", version=old) == 1
    assert worker.value("tickcast_model_info", model="lstm", version="v-tampered") is None
    produce(worker.bootstrap, gold_ticks(worker.prefix, 6000, 20))
    assert {f["model_version"] for f in forecasts_of(worker, expected=11)} == {old}


def test_a_restarted_worker_resumes_its_windows(start_worker, store: ModelStore) -> None:
    first = start_worker(TICKCAST_MODEL_DIR=str(store.root))
    produce(first.bootstrap, gold_ticks(first.prefix, 7000, 40))
    assert len(forecasts_of(first, expected=40 - WINDOW + 1)) == 40 - WINDOW + 1
    wait_for(lambda: first.value("tickcast_forecasts_scored_total") == 40 - WINDOW,
             "the first worker to finish")
    time.sleep(1.5)  # one commit interval: the changelog and offsets are flushed
    first.proc.terminate()
    first.proc.wait(timeout=30)
    second = start_worker(prefix=first.prefix, TICKCAST_MODEL_DIR=str(store.root))
    produce(second.bootstrap, gold_ticks(second.prefix, 7040, 3))
    out = forecasts_of(second, expected=40 - WINDOW + 1 + 3)
    assert len(out) == 40 - WINDOW + 1 + 3  # the 3 new ticks forecast at once: no warm-up
    assert second.value("tickcast_ticks_total", outcome="warming_up") == 0
    assert second.value("tickcast_forecasts_scored_total") == 3  # the pending one survived
