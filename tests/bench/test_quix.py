"""The Quix Streams peer's own logic, without a broker: the rolling window kept in state, one
inference call per sink batch, records as tickcast writes them, and the progress clock."""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tickcast_bench import quix
from tickcast_bench.pipelines import Progress

from tests.helpers import PointForecaster
from tickcast.streams.events import PriceTick, TextEvent

needs_quix = pytest.mark.skipif(
    importlib.util.find_spec("quixstreams") is None,
    reason="quixstreams is not installed (pip install -e './bench[quix]')")


class DictState:
    """``quixstreams.State`` for one key, with its JSON round trip (values come back copies)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)


class FakeForecaster(PointForecaster):
    """Forecasts the window's mean; records the shape of every call."""

    window, version = 3, "lstm-v1"

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def predict_prices(self, windows: np.ndarray) -> np.ndarray:
        self.calls.append(windows.shape)
        out = windows.mean(axis=1)
        out[windows[:, -1] == 13.0] = math.nan  # a window the model cannot forecast
        return out


class FakeRNN:
    version = "rnn-v1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def score_batch(self, texts: Sequence[str]) -> list[float]:
        self.calls.append(list(texts))
        return [0.9 if "good" in t else 0.2 for t in texts]

    def score_with_vader(self, texts: Sequence[str], vader: np.ndarray) -> list[float]:
        assert vader.shape == (len(texts), 4)
        self.vader = vader
        return self.score_batch(texts)


def tick(ts: int, price: float, symbol: str = "S001") -> PriceTick:
    return PriceTick(symbol=symbol, ts=ts, price=price)


# -- the window --------------------------------------------------------------------------------
def test_the_window_is_emitted_once_full_and_then_rolls() -> None:
    state = DictState()
    emitted = [quix.roll_window(state, tick(ts, float(ts)), 3) for ts in range(1, 6)]
    assert emitted == [None, None, [1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [3.0, 4.0, 5.0]]
    assert len(state.get(quix.WINDOW_STATE_KEY)["closes"]) == 3  # state stays W closes


def test_a_tick_not_newer_than_the_newest_is_ignored() -> None:
    state = DictState()
    for ts in (10, 20, 30):
        quix.roll_window(state, tick(ts, float(ts)), 3)
    assert quix.roll_window(state, tick(30, 99.0), 3) is None  # same ts
    assert quix.roll_window(state, tick(25, 99.0), 3) is None  # older
    assert quix.roll_window(state, tick(40, 40.0), 3) == [20.0, 30.0, 40.0]


def test_the_price_step_decodes_like_tickcast_and_drops_bad_events() -> None:
    step = quix.price_step(window=2, max_bytes=65_536)
    state = DictState()
    value = b'{"symbol": "S001", "ts": 1700000000000, "price": 10.5}'
    assert step(value, state) is None
    window = step(b'{"symbol": "S001", "ts": 1700000001000, "price": 11}', state)
    assert window == quix.PriceWindow(tick(1_700_000_001_000, 11.0), [10.5, 11.0])
    assert step(b'{"symbol": "S001", "ts": "yesterday", "price": 1}', state) is None
    assert step(b"not json", state) is None


# -- one inference call per batch --------------------------------------------------------------
def test_a_batch_of_windows_is_one_forecaster_call_and_one_record_each() -> None:
    forecaster, sent = FakeForecaster(), []
    write = quix.ForecastWriter(forecaster, lambda k, v: sent.append((k, v)))  # type: ignore[arg-type]
    items = [(quix.PriceWindow(tick(1000 * i, 3.0 + i, f"S{i}"), [1.0, 2.0, 3.0 + i]), 5)
             for i in range(4)]
    items.append((quix.PriceWindow(tick(9000, 13.0, "S9"), [1.0, 1.0, 13.0]), None))
    assert write(items) == 4  # the NaN forecast is not written
    assert forecaster.calls == [(5, 3)]
    records = [json.loads(v) for _, v in sent]
    assert [k for k, _ in sent] == [b"S0", b"S1", b"S2", b"S3"]
    assert records[1]["symbol"] == "S1"
    assert records[1]["ts"] == 1000
    assert records[1]["last_price"] == 4.0
    assert records[1]["forecast"] == pytest.approx((1.0 + 2.0 + 4.0) / 3)
    assert records[1]["horizon"] == 1
    assert records[1]["model_version"] == "lstm-v1"
    assert records[1]["latency_ms"] == records[1]["processed_at"] - 5
    assert write([]) == 0
    assert forecaster.calls == [(5, 3)]  # no call for an empty batch


def test_a_batch_of_texts_is_one_rnn_call_and_a_sentiment_record_each() -> None:
    rnn, sent = FakeRNN(), []
    write = quix.SentimentWriter(rnn, "3.3.2", lambda k, v: sent.append((k, v)))  # type: ignore[arg-type]
    texts = [(TextEvent(id="a", ts=1, text="good stuff", label=1), np.array([0, 0.4, 0.6, 0.6])),
             (TextEvent(id="b", ts=2, text="meh", symbol="S1"), np.array([0, 1.0, 0, 0.0]))]
    assert write([(t, 7) for t in texts]) == 2
    assert rnn.calls == [["good stuff", "meh"]]
    assert rnn.vader[:, 3].tolist() == [0.6, 0.0]  # VADER's scores handed over, not rerun
    first, second = (json.loads(v) for _, v in sent)
    assert [k for k, _ in sent] == [b"a", b"b"]
    assert first == {"id": "a", "ts": 1, "vader_compound": 0.6, "vader_score": 0.8,
                     "vader_version": "3.3.2", "rnn_score": 0.9, "rnn_version": "rnn-v1",
                     "scored_at": first["scored_at"], "label": 1, "agree": True}
    assert second["vader_compound"] == 0.0
    assert second["symbol"] == "S1"
    assert "label" not in second
    assert second["agree"] is True  # both call it negative


# -- the sinks ---------------------------------------------------------------------------------
class FakeOut:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def connect(self) -> None:
        self.log.append("connect")

    def flush(self) -> None:
        self.log.append("flush")


def progress_points(path: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@needs_quix
def test_the_batch_sink_writes_each_partition_batch_then_delivers_then_counts(
        tmp_path: Path) -> None:
    batch_sink, _ = quix._sink_classes()
    log: list[str] = []

    def writer(items: list[tuple[Any, int | None]]) -> int:
        log.append(f"write {[value for value, _ in items]}")
        return len(items)

    progress = quix.ThreadSafeProgress(Progress(tmp_path / "p.jsonl"))
    sink = batch_sink(writer, FakeOut(log), progress)
    sink.setup()
    for offset, (partition, value) in enumerate([(0, "a"), (1, "b"), (0, "c")]):
        sink.add(value=value, key=b"k", timestamp=1, headers=[], topic="prices",
                 partition=partition, offset=offset)
    sink.flush()
    assert log == ["connect", "write ['a', 'c']", "write ['b']", "flush"]
    assert progress_points(tmp_path / "p.jsonl")[0]["count"] == 0
    assert progress.count == 3
    sink.flush()  # an empty checkpoint writes nothing and counts nothing
    assert log[-1] == "flush"
    assert progress.count == 3


def test_the_clock_starts_at_the_first_event_not_at_the_first_delivery(tmp_path: Path) -> None:
    progress = quix.ThreadSafeProgress(Progress(tmp_path / "p.jsonl"), every=0.01)
    progress.first_event("prices", 0, 0)
    progress.first_event("prices", 0, 1)  # once only
    progress.tick(5)
    progress.stop()
    points = progress_points(tmp_path / "p.jsonl")
    assert points[0]["count"] == 0
    assert points[0]["t"] <= points[1]["t"]
    assert [p["count"] for p in points].count(0) == 2  # its own, then Progress's


# -- command line ------------------------------------------------------------------------------
def test_the_command_line_and_the_internal_topic_names() -> None:
    args = quix.parse_args(["pipeline", "--bootstrap", "b:9092", "--prefix", "p-",
                            "--group", "p-quix", "--progress", "f", "--state-dir", "s"])
    assert (args.commit_interval, args.commit_every, args.partitions) == (0.2, 0, 8)
    with pytest.raises(SystemExit, match="pipeline needs --model-dir"):
        quix.main(["pipeline", "--bootstrap", "b:9092", "--prefix", "p-", "--group", "g",
                   "--progress", "f", "--state-dir", "s"])
    assert quix.internal_topic_prefixes("p-quix") == ("changelog__p-quix--",
                                                      "repartition__p-quix--")
