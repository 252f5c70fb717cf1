"""Chunked per-symbol state: what is loaded equals what was kept, and writes stay small."""

from __future__ import annotations

import json
import random

import pytest

from tickcast.streams.events import PriceTick
from tickcast.streams.prices.processor import SymbolState
from tickcast.streams.prices.state import (
    CHUNK,
    LAYOUTS,
    VERSION,
    StateFormatError,
    chunk_key,
    load_state,
    state_writes,
)

KEEP = 200


def _tick(i: int) -> PriceTick:
    return PriceTick(symbol="XAU", ts=1_700_000_000_000 + i, price=100.0 + i / 7)


class Table:
    """A dict standing in for the Faust table: values pass through JSON, None deletes."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}
        self.bytes_written: list[int] = []

    def write(self, state: SymbolState, keep: int = KEEP) -> None:
        size = 0
        for key, value in state_writes("XAU", state, keep=keep):
            if value is None:
                self.data.pop(key, None)
            else:
                raw = json.dumps(value)
                size += len(raw)
                self.data[key] = json.loads(raw)
        self.bytes_written.append(size)

    def load(self, keep: int = KEEP) -> SymbolState:
        return load_state("XAU", self.data.get, keep=keep)


@pytest.mark.parametrize("total", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, KEEP, KEEP + 1, 3_001])
def test_what_is_loaded_is_what_was_kept(total: int) -> None:
    rng = random.Random(total)
    table, state, i = Table(), SymbolState(), 0
    while i < total:  # batches of random size; reload from the table now and then
        for _ in range(min(rng.randint(1, 90), total - i)):
            state.append(_tick(i), keep=KEEP)
            i += 1
        state.pending = {"ts": i}
        table.write(state)
        if rng.random() < 0.3:
            state = table.load()
    loaded = table.load()
    expected = [_tick(j) for j in range(max(0, total - KEEP), total)]
    assert loaded.ts.tolist() == [t.ts for t in expected]
    assert loaded.price.tolist() == [t.price for t in expected]
    assert loaded.seq == total
    assert loaded.pending == ({"ts": total} if total else None)


def test_writes_and_storage_stay_small_however_long_the_feed() -> None:
    table, state = Table(), SymbolState()
    for i in range(10_000):
        state.append(_tick(i), keep=KEEP)
        if i % 10 == 9:
            table.write(state)
    chunks = [k for k in table.data if k != "XAU"]
    assert len(chunks) <= KEEP // CHUNK + 2  # old chunks were deleted
    whole = len(json.dumps({"ts": state.ts.tolist(), "price": state.price.tolist()}))
    # a batch rewrites the head (< CHUNK ticks) and at most the chunk that filled
    assert max(table.bytes_written[50:]) < whole / 2
    # on average about CHUNK/2 ticks of head plus a chunk every CHUNK/10 batches, vs KEEP
    assert sum(table.bytes_written[50:]) / len(table.bytes_written[50:]) < whole / 4


def test_a_missing_chunk_keeps_only_the_history_after_it() -> None:
    table, state = Table(), SymbolState()
    for i in range(CHUNK * 3 + 5):
        state.append(_tick(i), keep=KEEP)
    table.write(state)
    del table.data[chunk_key("XAU", 1)]
    loaded = table.load()
    assert loaded.ts.tolist() == [_tick(i).ts for i in range(CHUNK * 2, CHUNK * 3 + 5)]


def test_a_non_finite_pending_forecast_is_refused_not_logged_as_null() -> None:
    state = SymbolState()
    state.append(_tick(0), keep=KEEP)
    state.pending = {"ts": 1, "forecast": float("nan")}
    with pytest.raises(ValueError, match="non-finite"):
        list(state_writes("XAU", state, keep=KEEP))


def _v2_writes(symbol: str, ticks: list[PriceTick], *, keep: int, pending: object) -> dict:
    """What the format-2 writer (64-tick chunks under ``<symbol>#<k>``) left in a table."""
    size = LAYOUTS[2][0]
    ticks = ticks[-keep:]
    seq = len(ticks)  # enough for this test: the history is the whole feed
    full = seq // size
    data: dict[str, object] = {}
    for k in range(max(0, (seq - keep) // size), full):
        part = ticks[k * size:(k + 1) * size]
        data[f"{symbol}#{k}"] = {"ts": [t.ts for t in part], "price": [t.price for t in part]}
    tail = ticks[full * size:]
    data[symbol] = {"v": 2, "seq": seq, "pending": pending, "ts": [t.ts for t in tail],
                    "price": [t.price for t in tail]}
    return data


@pytest.mark.parametrize("total", [1, 63, 64, 150, KEEP])
def test_a_format_2_state_is_read_then_rewritten_and_its_chunks_deleted(total: int) -> None:
    ticks = [_tick(i) for i in range(total)]
    table = Table()
    table.data = json.loads(json.dumps(_v2_writes("XAU", ticks, keep=KEEP, pending={"ts": 7})))
    old_chunks = {k for k in table.data if "#" in k}
    state = table.load()
    assert state.ts.tolist() == [t.ts for t in ticks]
    assert state.seq == total
    assert state.pending == {"ts": 7}
    for i in range(total, total + 5):  # the next batch
        state.append(_tick(i), keep=KEEP)
    table.write(state)
    assert table.data["XAU"]["v"] == VERSION
    assert not old_chunks & set(table.data)  # every format-2 chunk deleted
    assert all("|" in k for k in table.data if k != "XAU")
    reloaded = table.load()
    held = range(max(0, total + 5 - KEEP), total + 5)
    assert reloaded.ts.tolist() == [_tick(i).ts for i in held]
    assert reloaded.price.tolist() == [_tick(i).price for i in held]
    assert reloaded.stale == ()
    assert reloaded.written == reloaded.seq


def test_a_crash_between_the_new_chunks_and_the_new_head_keeps_the_old_state_whole() -> None:
    ticks = [_tick(i) for i in range(150)]
    table = Table()
    table.data = json.loads(json.dumps(_v2_writes("XAU", ticks, keep=KEEP, pending=None)))
    state = table.load()
    state.append(_tick(150), keep=KEEP)
    for key, value in state_writes("XAU", state, keep=KEEP):
        if key == "XAU":
            break  # the crash: the new chunks were logged, the head was not
        table.data[key] = json.loads(json.dumps(value))
    assert table.load().ts.tolist() == [t.ts for t in ticks]


def test_a_state_of_an_unknown_format_is_a_clear_error() -> None:
    table = Table()
    table.data = {"XAU": {"v": 99, "seq": 1, "pending": None, "ts": [1], "price": [1.0]}}
    with pytest.raises(StateFormatError, match="format 99"):
        table.load()


def test_chunk_keys_of_the_two_formats_differ() -> None:
    assert chunk_key("XAU", 3) == "XAU|3"
    assert chunk_key("XAU", 3, version=2) == "XAU#3"
