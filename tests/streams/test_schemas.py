"""The JSON Schemas (for other languages) and the decoder (the one validation path) agree.

Hypothesis builds events from values near every boundary, drops fields and adds strangers; for
each one, jsonschema's verdict must equal the decoder's. Output records must validate too.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tickcast.streams.events import (
    REASONS,
    DeadLetter,
    EventError,
    Forecast,
    ModelUpdate,
    SentimentScore,
    decode_label,
    decode_price,
    decode_text,
)
from tickcast.streams.topics import LOGICAL_TOPICS

MAX = 1 << 20


def schema(topic: str) -> Draft202012Validator:
    path = resources.files("tickcast.streams") / "schemas" / f"{topic}.schema.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


def test_every_topic_has_a_valid_schema() -> None:
    for topic in LOGICAL_TOPICS:
        assert schema(topic).schema["title"]


def test_dead_letter_reasons_in_schema_match_the_code() -> None:
    assert tuple(schema("dead-letters").schema["properties"]["reason"]["enum"]) == REASONS


TS = st.sampled_from([0, 1, 1_700_000_000_000, 4_102_444_799_999, 4_102_444_800_000, -1, 1.0,
                      1.5, True, "2024-01-01T00:00:00Z", None, 10**20])
IDS = st.sampled_from(["a", "", "x" * 128, "x" * 129, 7, None, "é-ü", ["a"]])
TEXTS = st.one_of(st.sampled_from(["good", "", "   ", "\n\t", "x" * 10_000, "x" * 10_001, 5,
                                   None, "\x1c", "\u00a0"]), st.text(max_size=30))
LABELS = st.sampled_from([0, 1, 2, -1, 0.0, 1.0, 0.5, True, False, "1", None])
SYMBOLS = st.sampled_from(["XAU", "BTC-USD", "a.b:c/d_e", "", "X Y", "S" * 32, "S" * 33, 3,
                           None, "ü"])
PRICES = st.sampled_from([1, 1999.5, 0, -1, 1e-300, 999_999_999_999.0, 1e12, 10**13, "1",
                          True, None])


def event(fields: dict[str, st.SearchStrategy], base: dict[str, Any]) -> st.SearchStrategy:
    """A valid ``base`` event with one to three mutations: a field set to a boundary value,
    a field removed, or an unknown field added (so every boundary is probed in isolation)."""

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        obj = dict(base)
        for _ in range(draw(st.integers(1, 3))):
            name = draw(st.sampled_from(sorted(fields)))
            action = draw(st.sampled_from(["set", "set", "set", "drop", "stranger"]))
            if action == "set":
                obj[name] = draw(fields[name])
            elif action == "drop":
                obj.pop(name, None)
            else:
                obj["unexpected"] = 1
        return obj

    return build()


def agree(topic: str, decoder: Any, obj: dict[str, Any]) -> None:
    raw = json.dumps(obj).encode()
    schema_ok = schema(topic).is_valid(obj)
    try:
        decoder(raw, max_bytes=MAX)
        decoded_ok = True
    except EventError:
        decoded_ok = False
    verdicts = f"schema says {schema_ok}, decoder {decoded_ok}"
    assert schema_ok == decoded_ok, f"{verdicts}: {str(obj)[:300]}"


@settings(max_examples=600, deadline=None)
@given(event({"id": IDS, "ts": TS, "text": TEXTS, "symbol": SYMBOLS, "label": LABELS},
             {"id": "a", "ts": 1, "text": "good"}))
def test_texts_schema_agrees_with_decoder(obj: dict[str, Any]) -> None:
    agree("texts", decode_text, obj)


@settings(max_examples=400, deadline=None)
@given(event({"symbol": SYMBOLS, "ts": TS, "price": PRICES, "id": IDS},
             {"symbol": "XAU", "ts": 1, "price": 1.0}))
def test_prices_schema_agrees_with_decoder(obj: dict[str, Any]) -> None:
    agree("prices", decode_price, obj)


@settings(max_examples=200, deadline=None)
@given(event({"id": IDS, "label": LABELS}, {"id": "a", "label": 1}))
def test_labels_schema_agrees_with_decoder(obj: dict[str, Any]) -> None:
    agree("labels", decode_label, obj)


@pytest.mark.parametrize(("topic", "record"), [
    ("sentiment", SentimentScore(id="a", ts=1, vader_compound=-0.3, vader_score=0.35,
                                 vader_version="3.3.2", rnn_score=None, rnn_version=None,
                                 scored_at=2)),
    ("sentiment", SentimentScore(id="a", ts=1, vader_compound=0.5, vader_score=0.75,
                                 vader_version="3.3.2", rnn_score=0.9, rnn_version="v1",
                                 scored_at=2, symbol="XAU", label=1)),
    ("forecasts", Forecast(symbol="XAU", ts=1, last_price=10.0, forecast=10.5, horizon=1,
                           model_version="v1")),
    ("forecasts", Forecast(symbol="XAU", ts=1, last_price=10.0, forecast=10.5, horizon=1,
                           model_version="v1", challenger_version="v2",
                           challenger_forecast=10.4)),
    ("forecasts", Forecast(symbol="XAU", ts=1, last_price=10.0, forecast=10.5, horizon=1,
                           model_version="v1", lower_80=9.9, upper_80=10.8, lower_95=9.5,
                           upper_95=11.2)),
    ("sentiment", SentimentScore(id="a", ts=1, vader_compound=0.5, vader_score=0.75,
                                 vader_version="3.3.2", rnn_score=0.9, rnn_version="v1",
                                 scored_at=2, challenger_version="v2", challenger_score=0.7)),
    ("model-updates", ModelUpdate(name="gold-lstm", version="v2", uri="gold-lstm/v2",
                                  sha256="0" * 64, metrics={}, created_at=3,
                                  role="challenger", clear=True)),
    ("model-updates", ModelUpdate(name="gold-lstm", version="v2", uri="gold-lstm/v2",
                                  sha256="0" * 64, metrics={}, created_at=3, role="decision",
                                  decision="reject", rule="worse", champion="v1",
                                  evidence={"kind": "dm", "n": 400, "stat": 3.1},
                                  decided_at=9)),
    ("model-updates", ModelUpdate(name="gold-lstm", version="v1", uri="gold-lstm/v1",
                                  sha256="0" * 64, metrics={"rmse": 1.5}, created_at=3)),
    ("dead-letters", DeadLetter(source_topic="texts", partition=0, offset=5,
                                reason="not_json", error="value is not JSON", key=None,
                                raw="aGk=", dead_lettered_at=4)),
])
def test_output_records_validate_against_their_schema(topic: str, record: Any) -> None:
    errors = [e.message for e in schema(topic).iter_errors(json.loads(record.to_bytes()))]
    assert errors == []


@pytest.mark.parametrize("change", [{"clear": True}, {"decision": "promote"},
                                    {"role": "decision"}])
def test_model_updates_schema_refuses_what_the_decoder_refuses(change: dict) -> None:
    good = {"name": "gold-lstm", "version": "v1", "uri": "gold-lstm/v1", "sha256": "0" * 64,
            "metrics": {}, "created_at": 1}
    assert list(schema("model-updates").iter_errors(good)) == []
    assert list(schema("model-updates").iter_errors({**good, **change})) != []
