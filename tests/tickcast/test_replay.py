"""Replay records follow the event contracts and the keying rules."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tickcast.replay import generated_text_events, price_events, read_csv, text_events
from tickcast.streams.events import decode_label, decode_price, decode_text
from tickcast.training.data import DataError, gold_closes, sample_texts


def test_gold_prices_are_valid_events_keyed_by_symbol() -> None:
    frame = gold_closes().head(50)
    records = list(price_events(frame, symbol="XAU"))
    assert len(records) == 50
    for topic, key, value in records:
        assert (topic, key) == ("prices", b"XAU")
        tick = decode_price(value, max_bytes=4096)
        assert tick.symbol == "XAU"
    first = decode_price(records[0][2], max_bytes=4096)
    assert first.ts == 0  # 1970-01-01
    assert first.price == pytest.approx(float(frame["close"].iloc[0]))


@pytest.mark.parametrize(("mode", "topics"), [
    ("inline", ["texts"] * 3),
    ("separate", ["texts", "labels"] * 3),
    ("none", ["texts"] * 3),
])
def test_label_modes(mode: str, topics: list[str]) -> None:
    frame = sample_texts().head(3)
    records = list(text_events(frame, label_mode=mode, clock=iter([1, 2, 3])))  # type: ignore[arg-type]
    assert [t for t, _, _ in records] == topics
    for topic, key, value in records:
        event = (decode_label if topic == "labels" else decode_text)(value, max_bytes=65536)
        assert key == event.id.encode()
        if topic == "texts":
            assert event.label == (int(frame.set_index("id").loc[event.id, "label"])
                                   if mode == "inline" else None)


def test_user_csv_needs_the_right_columns(tmp_path: Path) -> None:
    good = tmp_path / "p.csv"
    pd.DataFrame({"date": ["2024-01-02"], "price": [2050.1]}).to_csv(good, index=False)
    ((_, _, value),) = list(price_events(read_csv(good, "prices"), symbol="XAU"))
    assert json.loads(value)["price"] == 2050.1
    bad = tmp_path / "t.csv"
    pd.DataFrame({"body": ["hi"]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match="lack id, text"):
        read_csv(bad, "texts")


@pytest.mark.parametrize(("kind", "rows", "words"), [
    ("prices", {"date": ["2024-01-02", "2024-01-03"], "close": ["2050.1", "n/a"]},
     "1 rows have an unreadable date or a missing, zero, negative or non-numeric close"),
    ("prices", {"date": ["2024-01-02", "someday"], "price": [1.0, 2.0]}, "1 rows"),
    ("prices", {"date": ["2024-01-02"], "price": [-3.0]}, "1 rows"),
    ("texts", {"id": ["a", "b"], "text": ["x", "y"], "label": ["pos", 1]}, "label must be 0"),
])
def test_bad_rows_are_refused_before_anything_is_sent(
        tmp_path: Path, kind: str, rows: dict, words: str) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(DataError, match=words):
        read_csv(path, kind)  # type: ignore[arg-type]


def test_generated_texts_are_valid_unlabelled_events_with_unique_ids() -> None:
    import itertools

    endless = itertools.cycle(["Gold rallies", "  ", "Stocks slide "])
    events_ = generated_text_events(endless, run_id="r1", clock=itertools.count(1))
    records = list(itertools.islice(events_, 6))
    assert [t for t, _, _ in records] == ["texts"] * 6
    events = [decode_text(value, max_bytes=65536) for _, _, value in records]
    assert [e.id for e in events] == [f"gen-r1-{n}" for n in range(6)]
    assert [key for _, key, _ in records] == [e.id.encode() for e in events]
    assert [e.text for e in events[:2]] == ["Gold rallies", "Stocks slide"]  # blank skipped
    assert all(e.label is None for e in events)
    assert "label" not in json.loads(records[0][2])


def test_generator_stream_feeds_valid_events(tiny_textgen) -> None:
    import itertools

    from tickcast.models.predictors import load_predictor

    generator = load_predictor(tiny_textgen.path)
    texts = generator.stream(prompts=["Gold prices"], temperature=0.8, seed=1,  # type: ignore[union-attr]
                             max_length=40, batch_size=8)
    records = list(itertools.islice(generated_text_events(texts), 20))
    events = [decode_text(value, max_bytes=65536) for _, _, value in records]
    assert len({e.id for e in events}) == 20
    assert all(e.text.startswith("Gold prices") and e.label is None for e in events)
