"""Per-symbol state across a restart, with each store (``TICKCAST_STATE_STORE``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tickcast_bench.scale import changelog_size, read_topic, wait_committed

from tests.helpers import wait_for
from tests.integration.conftest import consume, produce
from tickcast.models.registry import ModelStore
from tickcast.streams.prices.agents import CHANGELOG_CONFIG

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WINDOW = 10  # the quick forecaster's
SYMBOLS = 2_000
TS0 = 1_700_000_000_000


def _tick(symbol: str, step: int) -> tuple[str, bytes, bytes]:
    return ("prices", symbol.encode(), json.dumps(
        {"symbol": symbol, "ts": TS0 + step * 60_000,
         "price": 100.0 + (step * 7 + len(symbol)) % 13 * 0.1}).encode())


@pytest.mark.parametrize("state_store", ["memory", "rocksdb"])
def test_a_restarted_worker_resumes_every_symbols_window(
        start_worker, store: ModelStore, tmp_path: Path, state_store: str) -> None:
    """2,000 symbols each fill their window; after a restart, one more tick per symbol is
    forecast at once: every symbol's window resumed (none warms up again). The decoded-state
    cache holds 500 symbols, so states are also dropped and read back from the store."""
    env = {"TICKCAST_MODEL_DIR": str(store.root), "TICKCAST_STATE_STORE": state_store,
           "TICKCAST_STATE_CACHE": "500"}
    symbols = [f"R{i:04d}" for i in range(SYMBOLS)]
    first = start_worker(**env)
    topic = f"{first.prefix}prices"
    produce(first.bootstrap, [(topic, key, value) for step in range(WINDOW)
                              for _, key, value in (_tick(s, step) for s in symbols)])
    wait_for(lambda: (first.value("tickcast_ticks_total", outcome="forecast") or 0) >= SYMBOLS,
             timeout=120, what="a forecast per symbol before the restart")
    # A batch's writes are counted before it is produced, so once its input is committed.
    wait_committed(first.bootstrap, f"{first.prefix}app", topic, timeout=120)
    metrics = first.metrics()
    written = (metrics.value("tickcast_state_changelog_records_total"),
               metrics.value("tickcast_state_changelog_bytes_total"))
    first.stop()
    assert first.proc.returncode == 0, first.log()
    # What the worker counts as written is what the changelog holds (a few MiB: its active
    # segments, which compaction does not touch).
    logged = changelog_size(read_topic(first.bootstrap,
                                       f"{first.prefix}app-price-state-changelog"))
    assert written == (logged["records"], logged["bytes"])
    assert logged["keys"] >= SYMBOLS
    config = _changelog_config(first.bootstrap, f"{first.prefix}app-price-state-changelog")
    assert config.items() >= CHANGELOG_CONFIG.items()  # compacted, in segments it can clean
    if state_store == "rocksdb":
        # The state is on disk, with the changelog offset the next start reads from: the
        # restart below recovers from there, not from the changelog's start.
        offsets = _stored_offsets(tmp_path / "state")
        assert offsets, "no RocksDB databases"
        assert sum(offsets.values()) >= SYMBOLS / 2, offsets

    second = start_worker(prefix=first.prefix, **env)
    produce(second.bootstrap, [(topic, key, value)
                               for _, key, value in (_tick(s, WINDOW) for s in symbols)])
    wanted = {(s, TS0 + WINDOW * 60_000) for s in symbols}

    def after_restart(records: list[tuple[bytes | None, bytes]]) -> set[tuple[str, int]]:
        return {(r["symbol"], r["ts"]) for r in (json.loads(v) for _, v in records)} & wanted

    records = consume(second.bootstrap, f"{first.prefix}forecasts", expected=2 * SYMBOLS,
                      timeout=120, until=lambda got: after_restart(got) == wanted)
    missing = wanted - after_restart(records)
    assert not missing, f"{len(missing)} symbols did not resume, e.g. {sorted(missing)[:5]}"
    assert not second.value("tickcast_ticks_total", outcome="warming_up"), second.log()
    assert second.value("tickcast_ticks_total", outcome="forecast") == SYMBOLS
    assert second.value("tickcast_state_loads_total") == SYMBOLS  # one read per symbol
    assert (second.value("tickcast_state_cached_symbols") or 0) <= 500


def _changelog_config(bootstrap: str, topic: str) -> dict[str, str]:
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        response = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        admin.close()
    return {name: entry["value"] for name, entry in response["topic"][topic].items()}


def _stored_offsets(state_dir: Path) -> dict[str, int]:
    """The changelog offset stored in each partition's RocksDB database (as Faust's
    ``Store.persisted_offset`` reads it)."""
    import rocksdict

    offsets = {}
    for path in sorted(state_dir.rglob("*price-state*.db")):
        db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True),
                             access_type=rocksdict.AccessType.read_only())
        try:
            raw = db.get(b"__faust\0offset__")
        finally:
            db.close()
        if raw is not None:
            offsets[path.name] = int(raw)
    return offsets
