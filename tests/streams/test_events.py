"""Every kind of bad input gets a bounded reason and a message naming the problem."""

from __future__ import annotations

import json
import math

import pytest

from tickcast.streams.events import (
    REASONS,
    TS_MAX_MS,
    EventError,
    LabelEvent,
    PriceTick,
    TextEvent,
    decode_label,
    decode_model_update,
    decode_price,
    decode_text,
)

MAX = 4096


def _j(obj: object) -> bytes:
    return json.dumps(obj).encode()


GOOD_TEXT = {"id": "t1", "ts": 1_700_000_000_000, "text": "Gold rallies on strong demand"}
GOOD_PRICE = {"symbol": "XAU", "ts": 1_700_000_000_000, "price": 1999.5}


def test_good_events_decode_to_records() -> None:
    assert decode_text(_j(GOOD_TEXT), max_bytes=MAX) == TextEvent(
        id="t1", ts=1_700_000_000_000, text="Gold rallies on strong demand")
    assert decode_text(_j({**GOOD_TEXT, "label": 1, "symbol": "XAU"}), max_bytes=MAX).label == 1
    assert decode_text(_j({**GOOD_TEXT, "label": None}), max_bytes=MAX).label is None
    assert decode_price(_j({**GOOD_PRICE, "id": "p1"}), max_bytes=MAX) == PriceTick(
        symbol="XAU", ts=1_700_000_000_000, price=1999.5, id="p1")
    assert decode_label(_j({"id": "t1", "label": 0}), max_bytes=MAX) == LabelEvent("t1", 0)
    # JSON Schema's integer includes 1.0; the decoder agrees (see test_schemas).
    assert decode_label(_j({"id": "t1", "label": 1.0}), max_bytes=MAX).label == 1


BAD_TEXTS: list[tuple[str, bytes | None, str, str]] = [
    ("null value", None, "empty_value", "no value"),
    ("empty value", b"", "empty_value", "no value"),
    ("oversized", _j({**GOOD_TEXT, "text": "x" * 5000}), "oversized", "limit is 4096"),
    ("invalid UTF-8", b'{"id":"a","ts":1,"text":"caf\xe9"}', "not_utf8", "UTF-8"),
    ("not JSON", b"hello", "not_json", "not JSON"),
    ("truncated JSON", b'{"id":"a","ts":1,', "not_json", "not JSON"),
    ("NaN constant", b'{"id":"a","ts":NaN,"text":"x"}', "not_json", "NaN"),
    ("Infinity", b'{"id":"a","ts":Infinity,"text":"x"}', "not_json", "Infinity"),
    # The standard decoder would take a lone surrogate; no output could carry it.
    ("lone surrogate", b'{"id":"\\ud800","ts":1,"text":"x"}', "not_json", "not JSON"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "oversized", "limit"),
    ("array", b"[1,2]", "not_object", "JSON object, got list"),
    ("string", b'"text"', "not_object", "got str"),
    ("unknown field", _j({**GOOD_TEXT, "txet": "x"}), "unknown_field", "'txet'"),
    ("missing text", _j({"id": "a", "ts": 1}), "missing_field", "missing text"),
    ("missing id and ts", _j({"text": "a"}), "missing_field", "missing id, ts"),
    ("text not a string", _j({**GOOD_TEXT, "text": 42}), "wrong_type", "text must be a string"),
    ("id not a string", _j({**GOOD_TEXT, "id": 7}), "wrong_type", "id must be a string"),
    ("ISO timestamp", _j({**GOOD_TEXT, "ts": "2024-01-01T00:00:00Z"}), "wrong_type", "ISO-8601"),
    ("fractional ts", _j({**GOOD_TEXT, "ts": 1.5}), "wrong_type", "epoch milliseconds"),
    ("boolean ts", _j({**GOOD_TEXT, "ts": True}), "wrong_type", "got bool"),
    ("negative ts", _j({**GOOD_TEXT, "ts": -1}), "invalid_value", "outside 1970..2100"),
    ("far-future ts", _j({**GOOD_TEXT, "ts": TS_MAX_MS}), "invalid_value", "outside"),
    ("empty text", _j({**GOOD_TEXT, "text": ""}), "empty_text", "empty"),
    ("whitespace text", _j({**GOOD_TEXT, "text": " \n\t "}), "empty_text", "whitespace"),
    ("empty id", _j({**GOOD_TEXT, "id": ""}), "invalid_value", "id must not be empty"),
    ("huge id", _j({**GOOD_TEXT, "id": "i" * 129}), "invalid_value", "limit is 128"),
    ("label 2", _j({**GOOD_TEXT, "label": 2}), "invalid_value", "must be 0 or 1"),
    ("label string", _j({**GOOD_TEXT, "label": "1"}), "wrong_type", "label must be"),
    ("label bool", _j({**GOOD_TEXT, "label": True}), "wrong_type", "got bool"),
    ("bad symbol", _j({**GOOD_TEXT, "symbol": "X Y"}), "invalid_value", "symbol"),
]


@pytest.mark.parametrize(("case", "raw", "reason", "words"), BAD_TEXTS,
                         ids=[c[0] for c in BAD_TEXTS])
def test_bad_texts_are_rejected_with_reason(case: str, raw: bytes | None, reason: str,
                                            words: str) -> None:
    with pytest.raises(EventError) as info:
        decode_text(raw, max_bytes=MAX if case != "deep nesting" else 100_000)
    assert info.value.reason == reason
    assert words in info.value.message
    assert info.value.reason in REASONS


def test_deep_nesting_under_the_size_limit_is_not_json() -> None:
    raw = b'{"id":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    with pytest.raises(EventError) as info:
        decode_text(raw, max_bytes=1_000_000)
    assert info.value.reason == "not_json"
    assert "nested too deeply" in info.value.message


BAD_PRICES = [
    ("NaN price", b'{"symbol":"XAU","ts":1,"price":NaN}', "not_json"),
    ("inf price", b'{"symbol":"XAU","ts":1,"price":1e999}', "invalid_value"),
    ("negative price", _j({**GOOD_PRICE, "price": -3.0}), "invalid_value"),
    ("zero price", _j({**GOOD_PRICE, "price": 0}), "invalid_value"),
    ("absurd price", _j({**GOOD_PRICE, "price": 1e13}), "invalid_value"),
    ("string price", _j({**GOOD_PRICE, "price": "1999.5"}), "wrong_type"),
    ("bool price", _j({**GOOD_PRICE, "price": True}), "wrong_type"),
    ("missing symbol", _j({"ts": 1, "price": 1.0}), "missing_field"),
    ("long symbol", _j({**GOOD_PRICE, "symbol": "S" * 33}), "invalid_value"),
    ("null id", _j({**GOOD_PRICE, "id": None}), "wrong_type"),
]


@pytest.mark.parametrize(("case", "raw", "reason"), BAD_PRICES, ids=[c[0] for c in BAD_PRICES])
def test_bad_prices_are_rejected_with_reason(case: str, raw: bytes, reason: str) -> None:
    with pytest.raises(EventError) as info:
        decode_price(raw, max_bytes=MAX)
    assert info.value.reason == reason, info.value.message


@pytest.mark.parametrize(("raw", "reason"), [
    (_j({"id": "a"}), "missing_field"),
    (_j({"id": "a", "label": -1}), "invalid_value"),
    (_j({"id": "a", "label": 1, "score": 0.3}), "unknown_field"),
])
def test_bad_labels_are_rejected_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(EventError) as info:
        decode_label(raw, max_bytes=MAX)
    assert info.value.reason == reason


def test_model_update_round_trip_and_rejections() -> None:
    good = {"name": "sentiment-rnn", "version": "20240101T000000Z", "uri": "models/x",
            "sha256": "a" * 64, "metrics": {"auc": 0.9}, "created_at": 1}
    update = decode_model_update(_j(good), max_bytes=MAX)
    assert json.loads(update.to_bytes()) == {**good, "rollback": False, "role": "champion",
                                             "clear": False}
    shadow = decode_model_update(_j({**good, "role": "challenger", "clear": True}),
                                 max_bytes=MAX)
    assert (shadow.role, shadow.clear) == ("challenger", True)
    audit = {**good, "role": "decision", "decision": "promote", "rule": "better",
             "evidence": {"n": 400, "p_value": 0.01}, "champion": "v0", "decided_at": 5}
    decided = decode_model_update(_j(audit), max_bytes=MAX)
    assert json.loads(decided.to_bytes()) == {**audit, "rollback": False, "clear": False}
    for change, reason in [({"sha256": "A" * 64}, "invalid_value"),
                           ({"name": "../etc"}, "invalid_value"),
                           ({"metrics": {"auc": "high"}}, "wrong_type"),
                           ({"role": "referee"}, "invalid_value"),
                           ({"clear": True}, "invalid_value"),  # only a challenger is cleared
                           ({"role": "challenger", "clear": "yes"}, "wrong_type"),
                           ({"role": "decision"}, "invalid_value"),  # no decision
                           ({"role": "decision", "decision": "maybe"}, "invalid_value"),
                           ({"decision": "promote"}, "invalid_value"),  # on a champion event
                           ({"role": "decision", "decision": "reject", "evidence": [1]},
                            "wrong_type")]:
        with pytest.raises(EventError) as info:
            decode_model_update(_j({**good, **change}), max_bytes=MAX)
        assert info.value.reason == reason


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_output_records_refuse_non_finite_numbers_anywhere(value: float) -> None:
    """orjson would write NaN as null: the encoder refuses it at any depth instead."""
    from tickcast.streams.events import Forecast, encode

    with pytest.raises(ValueError, match="not JSON compliant"):
        Forecast(symbol="XAU", ts=1, last_price=10.0, forecast=value, horizon=1,
                 model_version="v1").to_bytes()
    for nested in ({"a": {"b": value}}, {"a": [1.0, value]}, {"a": ({"b": value},)}):
        with pytest.raises(ValueError, match="not JSON compliant"):
            encode(nested)
    assert encode({"a": 1.5, "b": [1, 2.0], "c": {"d": None}, "e": "ü"}) == (
        '{"a":1.5,"b":[1,2.0],"c":{"d":null},"e":"ü"}'.encode())


def test_a_record_checked_by_its_caller_encodes_the_same_without_the_walk() -> None:
    from tickcast.streams.events import Forecast, SentimentScore

    forecast = Forecast(symbol="XAU", ts=1, last_price=10.0, forecast=10.5, horizon=1,
                        model_version="v1", lower_80=9.0, upper_80=11.0)
    score = SentimentScore(id="t1", ts=1, vader_compound=0.5, vader_score=0.75,
                           vader_version="3.3.2", rnn_score=0.9, rnn_version="v1", scored_at=2)
    for record in (forecast, score):
        assert record.to_bytes(checked=True) == record.to_bytes()
