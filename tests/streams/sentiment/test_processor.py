"""A batch of good and bad texts and labels: outputs, dead letters and metrics."""

from __future__ import annotations

import base64
import json
import math
import random
from collections.abc import Sequence

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tickcast.streams.messages import InMessage
from tickcast.streams.metrics import Metrics
from tickcast.streams.sentiment.join import LabelJoin
from tickcast.streams.sentiment.processor import SentimentProcessor
from tickcast.streams.sentiment.scoring import VaderScorer
from tickcast.training.sentiment import SentimentResult


@pytest.fixture(scope="module")
def vader() -> VaderScorer:
    return VaderScorer()


def make(vader: VaderScorer, rnn: object = None) -> tuple[SentimentProcessor, Metrics]:
    metrics = Metrics()
    processor = SentimentProcessor(vader=vader, join=LabelJoin(window_size=50, pending_max=100),
                                   metrics=metrics, max_event_bytes=2048,
                                   rnn=lambda: rnn)  # type: ignore[arg-type,return-value]
    return processor, metrics


def msg(topic: str, offset: int, value: object) -> InMessage:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return InMessage(topic=topic, partition=0, offset=offset, key=b"k", value=raw)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_scores_texts_and_dead_letters_bad_ones(vader: VaderScorer) -> None:
    processor, metrics = make(vader)
    batch = [
        msg("texts", 0, {"id": "a", "ts": 1, "text": "I love this, it is great!", "label": 1}),
        msg("texts", 1, b"\xff\xfe"),
        msg("texts", 2, {"id": "b", "ts": 2, "text": "Terrible, awful, I hate it."}),
        msg("labels", 3, {"id": "b", "label": 0}),
        msg("labels", 4, {"id": "c"}),
        msg("texts", 5, {"id": "d", "ts": 3, "text": "   "}),
    ]
    out = processor.process(batch)
    assert [o.topic for o in out] == [
        "sentiment", "dead-letters", "sentiment", "dead-letters", "dead-letters"]
    analyzer = SentimentIntensityAnalyzer()
    for o, text in [(out[0], "I love this, it is great!"), (out[2], "Terrible, awful, I hate it.")]:
        record = json.loads(o.value)
        assert record["vader_compound"] == analyzer.polarity_scores(text)["compound"]
        assert record["rnn_score"] is None
        assert record["rnn_version"] is None
    dead = [json.loads(o.value) for o in out if o.topic == "dead-letters"]
    assert [(d["source_topic"], d["offset"], d["reason"]) for d in dead] == [
        ("texts", 1, "not_utf8"), ("labels", 4, "missing_field"), ("texts", 5, "empty_text")]
    assert base64.b64decode(dead[0]["raw"]) == b"\xff\xfe"
    assert sample(metrics, "tickcast_dead_letters_total", topic="labels",
                  reason="missing_field") == 1
    assert sample(metrics, "tickcast_events_in_total", topic="texts", outcome="ok") == 2
    assert sample(metrics, "tickcast_events_in_total", topic="texts", outcome="dead_letter") == 2
    assert sample(metrics, "tickcast_labels_total", outcome="matched") == 2
    assert sample(metrics, "tickcast_sentiment_auc", model="vader") == 1.0


def test_bad_label_is_emitted_as_dead_letter(vader: VaderScorer) -> None:
    processor, _ = make(vader)
    out = processor.process([msg("labels", 9, {"id": "x", "label": "yes"})])
    assert len(out) == 1
    assert out[0].topic == "dead-letters"
    assert json.loads(out[0].value)["reason"] == "wrong_type"
    assert out[0].key == b"labels"


def test_auc_gauge_is_nan_while_one_class(vader: VaderScorer) -> None:
    processor, metrics = make(vader)
    processor.process([msg("texts", 0, {"id": "a", "ts": 1, "text": "good", "label": 1})])
    assert math.isnan(sample(metrics, "tickcast_sentiment_auc", model="vader"))


class FlakyScorer:
    """Fails on any batch containing 'boom', returns garbage for 'nan'."""

    name, version = "rnn", "test-1"

    def score_batch(self, texts: Sequence[str]) -> list[float]:
        if any("boom" in t for t in texts):
            raise RuntimeError("model exploded")
        return [math.nan if "nan" in t else 0.7 for t in texts]


def test_a_failing_model_dead_letters_only_the_texts_it_cannot_score(vader: VaderScorer) -> None:
    processor, metrics = make(vader, FlakyScorer())
    out = processor.process([
        msg("texts", 0, {"id": "a", "ts": 1, "text": "fine text"}),
        msg("texts", 1, {"id": "b", "ts": 1, "text": "boom"}),
        msg("texts", 2, {"id": "c", "ts": 1, "text": "nan please"}),
    ])
    assert [o.topic for o in out] == ["sentiment", "dead-letters", "dead-letters"]
    assert json.loads(out[0].value)["rnn_score"] == 0.7
    assert json.loads(out[0].value)["rnn_version"] == "test-1"
    reasons = [json.loads(o.value) for o in out[1:]]
    assert {r["reason"] for r in reasons} == {"scoring_failed"}
    assert "model exploded" in reasons[0]["error"]
    assert sample(metrics, "tickcast_texts_scored_total", model="rnn") == 1


class FixedRNN:
    """A stand-in RNN scorer: P(positive) from a table, for exact metric checks."""

    name = "rnn"

    def __init__(self, version: str, table: dict[str, float]) -> None:
        self.version, self.table = version, table

    def score_batch(self, texts: Sequence[str]) -> list[float]:
        return [self.table[t] for t in texts]


def test_agreement_kappa_and_auc_difference(vader: VaderScorer) -> None:
    import numpy as np
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    from tickcast.streams.evaluation import delong

    texts = ["great wonderful", "awful terrible", "fine I guess", "not good", "love it",
             "hate it", "okay", "meh bad", "superb", "dreadful"]
    labels = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    rnn_scores = [0.9, 0.2, 0.6, 0.55, 0.8, 0.3, 0.4, 0.45, 0.7, 0.1]
    processor, metrics = make(vader, FixedRNN("v1", dict(zip(texts, rnn_scores, strict=True))))
    out = processor.process([msg("texts", i, {"id": f"t{i}", "ts": 1, "text": t, "label": y})
                             for i, (t, y) in enumerate(zip(texts, labels, strict=True))])
    records = [json.loads(o.value) for o in out]
    compound = np.array([r["vader_compound"] for r in records])
    rnn_calls, vader_calls = np.array(rnn_scores) >= 0.5, compound >= 0.05
    assert [r["agree"] for r in records] == list(rnn_calls == vader_calls)
    assert sample(metrics, "tickcast_sentiment_agreement_ratio") == pytest.approx(
        np.mean(rnn_calls == vader_calls))
    assert sample(metrics, "tickcast_sentiment_kappa") == pytest.approx(
        cohen_kappa_score(rnn_calls, vader_calls))
    assert sample(metrics, "tickcast_sentiment_auc", model="rnn") == pytest.approx(
        roc_auc_score(labels, rnn_scores))
    expected = delong(np.array(rnn_scores), (compound + 1) / 2, np.array(labels))
    assert sample(metrics, "tickcast_sentiment_auc_diff", bound="estimate") == pytest.approx(
        roc_auc_score(labels, rnn_scores) - roc_auc_score(labels, compound))
    assert sample(metrics, "tickcast_sentiment_auc_diff", bound="low") == pytest.approx(
        expected.low)


def test_each_input_has_one_outcome_and_the_batch_size_is_the_batch(
        vader: VaderScorer) -> None:
    processor, metrics = make(vader, FlakyScorer())
    processor.process([
        msg("texts", 0, {"id": "a", "ts": 1, "text": "fine text"}),
        msg("texts", 1, {"id": "b", "ts": 1, "text": "boom"}),
        msg("texts", 2, b"not json"),
        msg("labels", 3, {"id": "a", "label": 1}),
    ])
    # "b" decoded but could not be scored: a dead letter only, not also "ok".
    assert sample(metrics, "tickcast_events_in_total", topic="texts", outcome="ok") == 1
    assert sample(metrics, "tickcast_events_in_total", topic="texts", outcome="dead_letter") == 2
    assert sample(metrics, "tickcast_events_in_total", topic="labels", outcome="ok") == 1
    assert sample(metrics, "tickcast_batch_size_sum", agent="sentiment") == 4


class BrokenOn:
    """A challenger that cannot score one text (and raises on any batch holding it)."""

    name = "rnn"

    def __init__(self, version: str, table: dict[str, float], bad: str) -> None:
        self.version, self.table, self.bad = version, table, bad

    def score_batch(self, texts: Sequence[str]) -> list[float]:
        if self.bad in texts:
            raise RuntimeError("cannot score")
        return [self.table[t] for t in texts]


def test_a_challenger_in_shadow_leaves_the_champions_outputs_alone(vader: VaderScorer) -> None:
    """Challenger scores ride along; its AUC and its DeLong difference with the champion are
    on the same labelled texts; a text it cannot score is no dead letter."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from tickcast.streams.evaluation import delong

    texts = ["great wonderful", "awful terrible", "fine I guess", "not good", "love it",
             "hate it", "okay", "meh bad", "superb", "dreadful"]
    labels = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    champion = FixedRNN("v1", dict(zip(texts, [0.9, 0.2, 0.6, 0.55, 0.8, 0.3, 0.4, 0.45, 0.7,
                                               0.1], strict=True)))
    rival_scores = [0.8, 0.1, 0.7, 0.3, 0.9, 0.2, 0.6, 0.4, 0.95, 0.05]
    rival = BrokenOn("v2", dict(zip(texts, rival_scores, strict=True)), bad="okay")
    batch = [msg("texts", i, {"id": f"t{i}", "ts": 1, "text": t, "label": y})
             for i, (t, y) in enumerate(zip(texts, labels, strict=True))]

    alone, _ = make(vader, champion)
    without = [json.loads(o.value) for o in alone.process(batch)]
    shadowed, metrics = make(vader, champion)
    shadowed.challenger = lambda: rival  # type: ignore[assignment,return-value]
    outs = shadowed.process(batch)
    assert [o.topic for o in outs] == ["sentiment"] * len(texts)  # no dead letter
    records = [json.loads(o.value) for o in outs]

    strip = ("scored_at", "challenger_version", "challenger_score")
    assert [{k: v for k, v in r.items() if k not in strip} for r in records] == [
        {k: v for k, v in r.items() if k not in strip} for r in without]
    scored = [(r["challenger_score"], y) for r, y in zip(records, labels, strict=True)
              if "challenger_score" in r]
    assert len(scored) == 9  # all but "okay"
    assert all(r["challenger_version"] == "v2" for r in records if "challenger_score" in r)
    assert sample(metrics, "tickcast_challenger_outputs_total", model="rnn",
                  outcome="failed") == 1
    ys = [y for _, y in scored]
    assert sample(metrics, "tickcast_sentiment_auc", model="challenger") == pytest.approx(
        roc_auc_score(ys, [s for s, _ in scored]))
    keep = [i for i, t in enumerate(texts) if t != "okay"]
    expected = delong(np.array(rival_scores)[keep],
                      np.array([champion.table[texts[i]] for i in keep]),
                      np.array(labels)[keep])
    for bound, value in (("estimate", expected.diff), ("low", expected.low),
                         ("high", expected.high)):
        assert sample(metrics, "tickcast_challenger_auc_diff", bound=bound) == pytest.approx(
            value)
    assert sample(metrics, "tickcast_challenger_window_size", model="rnn") == 9

    # Ending the shadow clears the evidence; a new challenger starts from nothing.
    shadowed.challenger = lambda: None  # type: ignore[assignment,return-value]
    shadowed.process([msg("texts", 20, {"id": "x", "ts": 2, "text": "fine", "label": 1})])
    assert math.isnan(sample(metrics, "tickcast_sentiment_auc", model="challenger"))
    assert sample(metrics, "tickcast_challenger_window_size", model="rnn") == 0
    assert not [k for k in shadowed.join.aucs if k.startswith("challenger")]


def test_the_rnn_reads_the_vader_scores_the_worker_computed_once(
        tiny_sentiment: SentimentResult) -> None:
    """A model trained with VADER's scores as side inputs gets them from the worker's VADER
    pass: VADER runs once per text, the RNN's score equals the predictor scoring the text on
    its own and Keras on the inputs training builds, and the live AUC equals sklearn's on the
    same labelled texts. A text VADER fails on is a dead letter; the others are scored."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from tickcast.models.backend import keras
    from tickcast.models.predictors import SentimentRNN, load_predictor
    from tickcast.training.data import sample_texts
    from tickcast.training.sentiment import model_inputs

    rnn = load_predictor(tiny_sentiment.path)
    assert isinstance(rnn, SentimentRNN)
    assert rnn.needs_vader
    scorer = VaderScorer()
    calls: list[str] = []
    polarity = scorer._analyzer.polarity_scores

    def counted(text: str) -> dict[str, float]:
        calls.append(text)
        if text == "VADER fails on this one":
            raise RuntimeError("boom")
        return polarity(text)

    scorer._analyzer.polarity_scores = counted  # type: ignore[method-assign]
    processor, metrics = make(scorer, rnn)
    rows = sample_texts().head(200)
    texts = list(rows["text"])
    batch = [msg("texts", i, {"id": f"t{i}", "ts": i, "text": t, "label": int(y)})
             for i, (t, y) in enumerate(zip(texts, rows["label"], strict=True))]
    out = processor.process(batch)
    assert len(calls) == len(texts)  # once per text, for both models
    records = [json.loads(o.value) for o in out]
    assert all(o.topic == "sentiment" for o in out)
    served = np.array([r["rnn_score"] for r in records])
    assert np.array_equal(served, np.array(rnn.score_batch(texts)))
    inputs, _ = model_inputs(rnn.vocabulary, texts, SentimentIntensityAnalyzer())
    reference = keras().saving.load_model(tiny_sentiment.path / "model.keras").predict(
        inputs, verbose=0).reshape(-1)
    assert np.max(np.abs(served - reference)) <= 1e-5
    window = 50  # make()'s rolling window: the last 50 labelled texts
    assert sample(metrics, "tickcast_sentiment_auc", model="rnn") == pytest.approx(
        roc_auc_score(rows["label"][-window:], served[-window:]), abs=1e-12)

    out = processor.process([msg("texts", 900, {"id": "x", "ts": 1, "text": "lovely"}),
                             msg("texts", 901, {"id": "y", "ts": 2,
                                                "text": "VADER fails on this one"})])
    assert [o.topic for o in out] == ["sentiment", "dead-letters"]
    assert json.loads(out[0].value)["rnn_score"] == pytest.approx(
        rnn.score_batch(["lovely"])[0], abs=1e-12)
    assert json.loads(out[1].value)["reason"] == "scoring_failed"


def test_side_inputs_are_the_same_in_training_and_in_the_worker() -> None:
    """Training builds the side inputs from the library's analyzer or FastVader through
    model_inputs; the worker from VaderScorer.scores_batch: the same numbers, text for text,
    on all 1,200 shipped texts, in the columns the artifact names."""
    import numpy as np

    from tickcast.models.preprocessing import VADER_SIDE_INPUTS, Vocabulary
    from tickcast.training.data import sample_texts
    from tickcast.training.sentiment import model_inputs

    texts = [*list(sample_texts()["text"]), "", "GREAT!!! :)", "not bad but not good 😀"]
    served = VaderScorer().scores_batch(texts)
    vocabulary = Vocabulary(tokens=("great",), max_len=8,
                            side_inputs=("vader_compound", "vader_neg"))
    (ids, side), trained = model_inputs(vocabulary, texts, SentimentIntensityAnalyzer())
    assert np.array_equal(trained, served)
    assert np.array_equal(side, served[:, [VADER_SIDE_INPUTS.index("vader_compound"),
                                           VADER_SIDE_INPUTS.index("vader_neg")]])
    assert np.array_equal(ids, vocabulary.encode_batch(texts))


def test_a_large_auc_window_is_exported_once_due_and_then_exactly(vader: VaderScorer) -> None:
    """A window of EXACT_UP_TO rows or more is computed again once 1/REFRESH_PARTS of it is new
    and a second has passed (its cost per text stays flat); what it exports is then sklearn's
    AUC of the whole window."""
    from sklearn.metrics import roc_auc_score

    from tickcast.streams.evaluation.forecast_error import (
        EXACT_UP_TO,
        REFRESH_EVERY_S,
        REFRESH_PARTS,
    )

    size = EXACT_UP_TO
    metrics = Metrics()
    processor = SentimentProcessor(vader=vader, join=LabelJoin(window_size=size,
                                                               pending_max=2 * size),
                                   metrics=metrics, max_event_bytes=2048)
    texts = ["great wonderful", "awful terrible", "not good", "love it", "okay", "meh bad"]
    rng = random.Random(0)
    sent: list[tuple[str, int]] = []

    def feed(count: int) -> None:
        start = len(sent)
        batch = []
        for i in range(start, start + count):
            text, label = rng.choice(texts), int(rng.random() < 0.5)
            sent.append((text, label))
            batch.append(msg("texts", i, {"id": f"t{i}", "ts": 1, "text": text,
                                          "label": label}))
        processor.process(batch)

    def exact() -> float:
        window = sent[-size:]
        scores = [vader.scores_batch([t])[0][3] for t, _ in window]
        return float(roc_auc_score([y for _, y in window], scores))

    clock = [0.0]
    processor.monotonic = lambda: clock[0]
    feed(size)  # a full window: the first export is computed at once
    first = sample(metrics, "tickcast_sentiment_auc", model="vader")
    assert first == pytest.approx(exact())
    feed(size // 2)  # half the window is new, but no time has passed: not due
    assert sample(metrics, "tickcast_sentiment_auc", model="vader") == first != exact()
    clock[0] += REFRESH_EVERY_S
    feed(size // REFRESH_PARTS)  # due: the window as it is now
    assert sample(metrics, "tickcast_sentiment_auc", model="vader") == pytest.approx(exact())
