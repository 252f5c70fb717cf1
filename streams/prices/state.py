"""Per-symbol price state on a compacted changelog, written incrementally.

A symbol's history (its last ``W + REPLAY_ROOM`` ticks) is not rewritten whole on every batch;
it is cut into fixed chunks of :data:`CHUNK` ticks by their sequence number (ticks ever
appended to the symbol), so a batch writes only what changed:

* key ``"<symbol>"`` -- the *head*: the format version ``v``, ``seq``, the pending forecast,
  the intervals' tracking offsets, and the ticks after the last full chunk (fewer than
  ``CHUNK``); rewritten every batch;
* key ``"<symbol>|<k>"`` -- chunk ``k``: ticks ``k*CHUNK .. (k+1)*CHUNK - 1``; written once,
  when it fills, and deleted (a tombstone) once it is older than the history kept.

With many symbols a batch holds about one tick per symbol, so each tick rewrites its
symbol's head: short chunks keep that write small (a fraction of what 64-tick chunks
wrote; measured by ``tickcast bench --scale symbols``), at the cost of more keys per symbol
(``keep / CHUNK``).

Format 2 (chunks of 64 ticks under ``"<symbol>#<k>"``) is still read. The first write after
such a state is loaded rewrites the history held as format-3 chunks, then the head, then
deletes the format-2 chunks: a crash in between leaves either the old head with its chunks
intact or the new head with its own (format-2 leftovers are unreachable, never misread:
the separators differ).

``#`` and ``|`` cannot occur in a symbol (see ``SYMBOL_RE``), so heads and chunks never
collide.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from typing import Any, Final

from tickcast.streams.events import finite
from tickcast.streams.prices.processor import SymbolState

__all__ = ["CHUNK", "LAYOUTS", "VERSION", "StateFormatError", "Write", "chunk_key",
           "load_state", "state_writes"]

CHUNK: Final = 16
VERSION: Final = 3
LAYOUTS: Final[dict[int, tuple[int, str]]] = {2: (64, "#"), 3: (CHUNK, "|")}
"""Format version -> (ticks per chunk, separator of the chunk keys)."""

Write = tuple[str, Any]
"""A changelog write: (key, value); a value of ``None`` deletes the key."""


class StateFormatError(ValueError):
    """A stored state in a format this version cannot read (written by a newer one)."""


def chunk_key(symbol: str, k: int, *, version: int = VERSION) -> str:
    return f"{symbol}{LAYOUTS[version][1]}{k}"


def load_state(symbol: str, get: Callable[[str], Any], *, keep: int) -> SymbolState:
    """Assemble ``symbol``'s state from its head and the chunks covering its last ``keep``
    ticks; a missing chunk (never written, or lost) shortens the history to what follows it.
    A state of an older format is marked to be rewritten in the current one at its next
    write (:func:`state_writes`)."""
    head = get(symbol)
    if not head:
        return SymbolState()
    version = head.get("v", 2)
    if version not in LAYOUTS:
        raise StateFormatError(
            f"the stored state of {symbol} has format {version!r}; this version of tickcast "
            f"reads formats {', '.join(map(str, LAYOUTS))}: run a newer tickcast on this "
            "state, or start from an empty state (a new app id)")
    size = LAYOUTS[version][0]
    seq = int(head["seq"])
    full = seq // size
    ts: list[int] = []
    price: list[float] = []
    found: list[str] = []
    for k in range(_first_needed(seq, keep, size), full):
        key = chunk_key(symbol, k, version=version)
        chunk = get(key)
        if not chunk:  # keep only what is contiguous with the head
            ts.clear(), price.clear()
            continue
        found.append(key)
        ts.extend(chunk["ts"])
        price.extend(chunk["price"])
    ts.extend(head["ts"])
    price.extend(head["price"])
    state = SymbolState(ts=array("q", ts[-keep:]), price=array("d", price[-keep:]),
                        pending=head.get("pending"), seq=seq, written=seq,
                        track=head.get("track"))
    if version != VERSION:  # rewritten whole at the next write, then the old chunks go
        state.written = 0
        state.stale = tuple(found)
    return state


def state_writes(symbol: str, state: SymbolState, *, keep: int) -> Iterator[Write]:
    """The changelog writes that bring the stored state up to ``state``: chunks that filled
    since the last write, the head, and tombstones for chunks that fell out of the history
    (and for an older format's chunks, :attr:`SymbolState.stale`). Marks ``state`` as
    written.

    Every number written is finite: the ticks' prices were checked when decoded
    (:func:`~tickcast.streams.events.decode_price`) and the rest is checked here (a
    ``ValueError``), so the writes need no second walk through the history."""
    for part in (state.pending, state.track):
        if part is not None and not finite(part):
            raise ValueError(f"{symbol} state with a non-finite number: {part!r:.300}")
    seq, written = state.seq, state.written
    first_held = seq - len(state.ts)  # sequence number of state.ts[0]
    for k in range(max(written // CHUNK, first_held // CHUNK), seq // CHUNK):
        # A chunk whose start fell out of the history held is written with the rest.
        start, end = max(0, k * CHUNK - first_held), (k + 1) * CHUNK - first_held
        yield chunk_key(symbol, k), {"ts": state.ts[start:end].tolist(),
                                     "price": state.price[start:end].tolist()}
    tail = seq - (seq // CHUNK) * CHUNK
    head: dict[str, Any] = {"v": VERSION, "seq": seq, "pending": state.pending,
                            "ts": state.ts[len(state.ts) - tail:].tolist() if tail else [],
                            "price": state.price[len(state.price) - tail:].tolist() if tail
                            else []}
    if state.track is not None:
        head["track"] = state.track
    yield symbol, head
    if written:  # chunks no load needs any more (a state never written has none stored)
        for k in range(_first_needed(written, keep), _first_needed(seq, keep)):
            yield chunk_key(symbol, k), None
    for key in state.stale:  # after the head that no longer refers to them
        yield key, None
    state.stale = ()
    state.written = seq


def _first_needed(seq: int, keep: int, size: int = CHUNK) -> int:
    return max(0, (seq - keep) // size)

