"""End to end on the real broker: kafka-python in, a real worker process, Kafka and HTTP out."""

from __future__ import annotations

import json
import math

import pytest
from sklearn.metrics import roc_auc_score
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tests.helpers import wait_for
from tests.integration.conftest import consume, produce
from tickcast.training.data import sample_texts

pytestmark = pytest.mark.integration


def test_labelled_texts_come_back_scored_and_auc_matches_sklearn(start_worker) -> None:
    worker = start_worker(TICKCAST_AUC_WINDOW="150")
    texts = sample_texts().sample(n=240, random_state=3).reset_index(drop=True)
    # Half the labels inline, half later on `labels` (joined by id), one record per text.
    records = []
    for i, row in texts.iterrows():
        event = {"id": row.id, "ts": 1_700_000_000_000 + i, "text": row.text}
        if i % 2 == 0:
            event["label"] = int(row.label)
        records.append((f"{worker.prefix}texts", row.id.encode(), json.dumps(event).encode()))
    labels = [(f"{worker.prefix}labels", row.id.encode(),
               json.dumps({"id": row.id, "label": int(row.label)}).encode())
              for i, row in texts.iterrows() if i % 2 == 1]
    produce(worker.bootstrap, records + labels)

    out = consume(worker.bootstrap, f"{worker.prefix}sentiment", expected=len(texts))
    assert len(out) == len(texts)
    analyzer = SentimentIntensityAnalyzer()
    by_id = {json.loads(value)["id"]: json.loads(value) for _, value in out}
    assert set(by_id) == set(texts.id)
    for row in texts.itertuples():
        assert by_id[row.id]["vader_compound"] == analyzer.polarity_scores(row.text)["compound"]
    assert all(key == json.loads(value)["id"].encode() for key, value in out)

    wait_for(lambda: worker.value("tickcast_labels_total", outcome="matched") == len(texts),
             what="every label to be matched")
    # The window holds the last 150 labels in the order the worker matched them (which
    # interleaves partitions); exact equality with sklearn is the next test's job.
    gauge = worker.value("tickcast_sentiment_auc", model="vader")
    n_window = (worker.value("tickcast_sentiment_auc_window_labels", model="vader", label="0")
                + worker.value("tickcast_sentiment_auc_window_labels", model="vader", label="1"))
    assert n_window == 150
    assert gauge is not None
    assert not math.isnan(gauge)
    assert 0.6 < gauge <= 1.0  # VADER is informative on human-rated texts


def test_auc_gauge_over_http_equals_sklearn_on_the_same_labels(start_worker) -> None:
    worker = start_worker(TICKCAST_AUC_WINDOW="500")
    texts = sample_texts().sample(n=300, random_state=11).reset_index(drop=True)
    records = [(f"{worker.prefix}texts", row.id.encode(), json.dumps(
        {"id": row.id, "ts": 1_700_000_000_000, "text": row.text, "label": int(row.label)}
    ).encode()) for row in texts.itertuples()]
    produce(worker.bootstrap, records)
    wait_for(lambda: worker.value("tickcast_labels_total", outcome="matched") == len(texts),
             what="300 matched labels")
    analyzer = SentimentIntensityAnalyzer()
    scores = [analyzer.polarity_scores(t)["compound"] for t in texts.text]
    expected = roc_auc_score(texts.label, scores)
    assert worker.value("tickcast_sentiment_auc", model="vader") == pytest.approx(expected,
                                                                                  abs=1e-9)


BAD_EVENTS = {
    "not_json": b"this is not json",
    "not_utf8": b'{"id":"x","ts":1,"text":"\xc3\x28"}',
    "missing_field": b'{"id":"m1","ts":1}',
    "wrong_type": b'{"id":"w1","ts":"2024-01-01T00:00:00Z","text":"iso time"}',
    "empty_text": b'{"id":"e1","ts":1,"text":""}',
    "not_object": b"[1,2,3]",
    "unknown_field": b'{"id":"u1","ts":1,"text":"hi","score":3}',
    "invalid_value": b'{"id":"v1","ts":1,"text":"hi","label":7}',
    "oversized": json.dumps({"id": "o1", "ts": 1, "text": "y" * 9000}).encode(),
    "empty_value": b"",
}


def test_bad_events_go_to_dead_letters_and_good_ones_around_them_are_scored(
        start_worker) -> None:
    worker = start_worker(TICKCAST_MAX_EVENT_BYTES="8192")
    topic = f"{worker.prefix}texts"
    records, good_ids = [], []
    for n, (reason, raw) in enumerate(BAD_EVENTS.items()):
        good = f"good-{n}"
        good_ids.append(good)
        records.append((topic, good.encode(), json.dumps(
            {"id": good, "ts": 1_700_000_000_000, "text": f"A fine day number {n}"}).encode()))
        records.append((topic, reason.encode(), raw))
    records.append((f"{worker.prefix}labels", b"l", b'{"id":"l","label":"positive"}'))
    produce(worker.bootstrap, records)

    dead = consume(worker.bootstrap, f"{worker.prefix}dead-letters",
                   expected=len(BAD_EVENTS) + 1)
    letters = [json.loads(value) for _, value in dead]
    reasons = sorted(d["reason"] for d in letters if d["source_topic"] == "texts")
    assert reasons == sorted(BAD_EVENTS)
    assert [d["reason"] for d in letters if d["source_topic"] == "labels"] == ["wrong_type"]
    assert all(d["error"] and d["offset"] >= 0 for d in letters)
    scored = consume(worker.bootstrap, f"{worker.prefix}sentiment", expected=len(good_ids))
    assert sorted(json.loads(v)["id"] for _, v in scored) == sorted(good_ids)
    for reason in BAD_EVENTS:
        assert worker.value("tickcast_dead_letters_total", topic="texts", reason=reason) == 1
    assert worker.proc.poll() is None  # still running
