"""Chunked per-symbol state: what is loaded equals what was kept, and writes stay small."""

from __future__ import annotations

import json
import random

import pytest

from tickcast.streams.events import PriceTick
from tickcast.streams.prices.processor import SymbolState
from tickcast.streams.prices.state import CHUNK, chunk_key, load_state, state_writes

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
    chunks = [k for k in table.data if "#" in k]
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
