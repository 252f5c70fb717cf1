"""10,000 generated hostile and good events on all input topics, interleaved: the worker
survives, every bad one is dead-lettered with a reason, every good one is processed, and
metric label cardinality stays bounded."""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import pytest

from tests.integration.conftest import consume, produce
from tickcast.models.registry import ModelStore
from tickcast.streams.events import EventError, decode_label, decode_price, decode_text

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MAX_BYTES = 65_536
DECODERS = {"texts": decode_text, "labels": decode_label, "prices": decode_price}


def hostile_events(rng: random.Random, n: int) -> list[tuple[str, bytes, bytes]]:
    """Good events and every kind of bad one, in random order; good ticks keep per-symbol
    time order (2,000 symbols, to flood label cardinality)."""
    next_ts: Counter[str] = Counter()
    events = []
    for i in range(n):
        topic = rng.choice(["texts", "texts", "labels", "prices", "prices"])
        kind = rng.random()
        symbol = f"F{rng.randrange(2000)}"
        if topic == "prices":
            next_ts[symbol] += 1
            obj: object = {"symbol": symbol, "ts": 1_600_000_000_000 + next_ts[symbol],
                           "price": rng.uniform(1, 1000)}
        elif topic == "texts":
            obj = {"id": f"h{i}", "ts": 1_600_000_000_000,
                   "text": rng.choice(["good news\x00\x1b", "bad day", "émoji 👍", "x"])}
            if rng.random() < 0.3:
                obj["label"] = rng.randint(0, 1)  # type: ignore[index]
        else:
            obj = {"id": f"h{rng.randrange(n)}", "label": rng.randint(0, 1)}
        raw = json.dumps(obj).encode()
        if kind < 0.08:
            raw = b'{"id": "a", "ts": NaN, "price": Infinity}'
        elif kind < 0.16:
            raw = raw[: rng.randrange(1, len(raw))]  # truncated
        elif kind < 0.22:
            raw = b"\xff\xfe" + raw
        elif kind < 0.27:
            raw = b"[" * 5000 + b"]" * 5000
        elif kind < 0.31:
            raw = json.dumps({**obj, "text": "z" * 70_000}).encode()  # type: ignore[dict-item]
        elif kind < 0.37:
            raw = json.dumps({k: [v] for k, v in obj.items()}).encode()  # type: ignore[union-attr]
        elif kind < 0.42:
            raw = json.dumps({**obj, "ts": rng.choice([-5, 10**17, "2020-01-01"])}).encode()  # type: ignore[dict-item]
        elif kind < 0.46 and topic == "prices":
            raw = json.dumps({**obj, "price": rng.choice([-1, 0, 1e15])}).encode()  # type: ignore[dict-item]
        elif kind < 0.50:
            raw = json.dumps({k: v for k, v in list(obj.items())[1:]}).encode()  # type: ignore[union-attr]
        elif kind < 0.52:
            raw = b""
        # Keys follow the contract (prices by symbol, so a symbol's ticks stay in order);
        # texts and labels get arbitrary keys, bytes that are not UTF-8 included.
        key = symbol.encode() if topic == "prices" else rng.choice([b"k", b"\x00\xff", b""])
        events.append((topic, key, raw))
    return events


def verdict(topic: str, raw: bytes) -> bool:
    try:
        DECODERS[topic](raw, max_bytes=MAX_BYTES)
        return True
    except EventError:
        return False


def test_ten_thousand_hostile_events(start_worker, store: ModelStore) -> None:
    worker = start_worker(TICKCAST_MODEL_DIR=str(store.root))
    events = hostile_events(random.Random(42), 10_000)
    good = Counter(topic for topic, _, raw in events if verdict(topic, raw))
    bad = Counter(topic for topic, _, raw in events if not verdict(topic, raw))
    assert sum(bad.values()) > 3000
    produce(worker.bootstrap, [(f"{worker.prefix}{t}", k, v) for t, k, v in events])

    def processed() -> float:
        return sum(worker.value("tickcast_events_in_total", topic=t, outcome=o) or 0
                   for t in DECODERS for o in ("ok", "dead_letter"))

    deadline = time.monotonic() + 120
    while processed() < len(events):
        assert worker.proc.poll() is None, worker.log()
        assert time.monotonic() < deadline, f"{processed()} of {len(events)} processed"
        time.sleep(0.5)
    assert worker.proc.poll() is None  # no crash
    for topic in DECODERS:
        assert worker.value("tickcast_events_in_total", topic=topic, outcome="ok") == good[topic]
        assert worker.value("tickcast_events_in_total", topic=topic,
                            outcome="dead_letter") == bad[topic]
    letters = [json.loads(v) for _, v in consume(
        worker.bootstrap, f"{worker.prefix}dead-letters", expected=sum(bad.values()))]
    assert Counter(d["source_topic"] for d in letters) == bad
    assert all(d["reason"] and d["error"] for d in letters)
    sentiment = consume(worker.bootstrap, f"{worker.prefix}sentiment", expected=good["texts"])
    assert len(sentiment) == good["texts"]
    body = worker.metrics()
    symbols = {dict(labels).get("symbol") for (name, labels) in body
               if name == "tickcast_last_price"}
    assert len(symbols) <= 51  # TICKCAST_SYMBOL_CAP (50) + "other"
    print(f"\nhostile input: {len(events)} events, {sum(bad.values())} bad "
          f"({dict(bad)}), all dead-lettered; {sum(good.values())} good, all processed")
