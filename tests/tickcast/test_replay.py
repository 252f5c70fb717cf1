"""Replay records follow the event contracts and the keying rules."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tickcast.replay import price_events, read_csv, text_events
from tickcast.streams.events import decode_label, decode_price, decode_text
from tickcast.training.data import gold_closes, sample_texts


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
    with pytest.raises(ValueError, match="lack id, text"):
        read_csv(bad, "texts")
