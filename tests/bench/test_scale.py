"""The scale curves' machinery without a broker: workloads, accounting, report and config."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from tickcast_bench import scale
from tickcast_bench.harness import TS_BASE, balanced_symbols
from tickcast_bench.processes import BenchError, Target


def _ticks(records: Any) -> dict[str, list[dict[str, Any]]]:
    """Tick events by symbol, in the order produced (every record a valid ``prices`` event
    keyed by its symbol)."""
    by_symbol: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for topic, key, value in records:
        assert topic == "prices"
        event = json.loads(value)
        assert set(event) == {"symbol", "ts", "price"}
        assert key == event["symbol"].encode()
        assert event["price"] > 0
        by_symbol[event["symbol"]].append(event)
    return by_symbol


def test_the_symbols_workload_gives_every_symbol_its_ticks_in_event_time_order() -> None:
    workload = scale.SymbolWorkload.build(ticks=1000, count=30, partitions=4, window=12)
    assert workload.symbols == tuple(balanced_symbols(30, 4))
    assert workload.measured_steps == 1000 // 30
    assert workload.steps == 11 + 33  # warm-up, then the measured ticks
    records = list(workload.records())
    by_symbol = _ticks(records)
    assert set(by_symbol) == set(workload.symbols) | set(scale.PROBES)
    assert len(records) == workload.ticks == 30 * 44 + 10 * (12 + 20)
    assert workload.warmup_ticks == 30 * 11 + 10 * 32
    assert workload.measured_ticks == 30 * 33
    for symbol, events in by_symbol.items():
        expected = 12 + 20 if symbol in scale.PROBES else 44
        assert [e["ts"] for e in events] == [TS_BASE + i * 1000 for i in range(expected)]
    # The probes come first; then the symbols step by step, never a step back in time.
    first = [json.loads(v)["symbol"] for _, _, v in records[:10 * 32]]
    assert set(first) == set(scale.PROBES)
    rest = [json.loads(v)["ts"] for _, _, v in records[10 * 32:]]
    assert rest == sorted(rest)
    # Every tick after the warm-up part is one past its symbol's window.
    after = [json.loads(v) for _, _, v in records[workload.warmup_ticks:]]
    assert all(e["ts"] >= TS_BASE + 11 * 1000 for e in after)
    assert len(after) == workload.measured_ticks


def test_the_expected_outcomes_count_each_symbols_warm_up() -> None:
    workload = scale.SymbolWorkload.build(ticks=1000, count=100, partitions=8, window=12)
    # 10 measured ticks per symbol after 11 of warm-up; each probe forecasts its last 21.
    assert workload.expected_outcomes() == {"forecast": 100 * 10 + 10 * 21,
                                            "warming_up": 100 * 11 + 10 * 11}


def test_fifty_thousand_balanced_symbols_are_distinct_and_balanced() -> None:
    from kafka.partitioner.default import murmur2

    names = balanced_symbols(50_000, 8)
    assert len(set(names)) == 50_000
    per_partition = Counter((murmur2(n.encode()) & 0x7FFFFFFF) % 8 for n in names)
    assert set(per_partition.values()) == {6_250}


def test_a_workload_with_fewer_ticks_than_symbols_is_refused() -> None:
    with pytest.raises(BenchError, match="cannot give each of 50 symbols one"):
        scale.SymbolWorkload.build(ticks=49, count=50, partitions=8, window=12)


def test_the_continuation_and_the_latency_schedule_go_on_from_the_backlog() -> None:
    workload = scale.SymbolWorkload.build(ticks=60, count=3, partitions=2, window=5)
    schedule = list(scale.latency_schedule(workload, 45))
    probes = [symbol for symbol, probe in schedule if probe]
    assert probes == ["P0", "P1", "P2", "P3", "P4"]  # ticks 0, 10, 20, 30, 40
    assert [i for i, (_, probe) in enumerate(schedule) if probe] == [0, 10, 20, 30, 40]
    others = [symbol for symbol, probe in schedule if not probe]
    assert others == [workload.symbols[i % 3] for i in range(40)]
    continuation = workload.continuation()
    ts, value = continuation.tick("P0")
    assert ts == TS_BASE + workload.probe_ticks * 1000  # one second after its last backlog tick
    assert json.loads(value)["ts"] == ts
    assert continuation.tick("P0")[0] == ts + 1000
    assert continuation.tick(workload.symbols[0])[0] == TS_BASE + workload.steps * 1000


def test_unlabelled_texts_have_no_label_and_fresh_ids() -> None:
    records = list(scale.unlabelled_texts(2500))
    events = [json.loads(value) for _, _, value in records]
    assert len(events) == 2500
    assert all(set(e) == {"id", "ts", "text"} for e in events)
    assert len({e["id"] for e in events}) == 2500  # the sample (1,200) cycled, ids fresh
    assert all(topic == "texts" and key == e["id"].encode()
               for (topic, key, _), e in zip(records, events, strict=True))
    labelled = [json.loads(v) for _, _, v in scale.labelled_texts(30)]
    assert all(e["label"] in (0, 1) for e in labelled)
    assert not {e["id"] for e in labelled} & {e["id"] for e in events}


def test_the_texts_pass_the_workers_decoder() -> None:
    from tickcast.streams.events import decode_price, decode_text

    for _, _, value in [*scale.unlabelled_texts(3), *scale.labelled_texts(3)]:
        decode_text(value, max_bytes=65_536)
    workload = scale.SymbolWorkload.build(ticks=20, count=2, partitions=2, window=3)
    for _, _, value in workload.records():
        decode_price(value, max_bytes=65_536)


def test_changelog_size_counts_keys_values_and_tombstones() -> None:
    records = [(b'"A"', b'{"seq":1}'), (b'"A#0"', b"[1,2]"), (b'"A"', b'{"seq":22}'),
               (b'"A#0"', None), (b'"B"', b"{}")]
    size = scale.changelog_size(records)
    assert size == {
        "records": 5, "tombstones": 1,
        "bytes": (3 + 9) + (5 + 5) + (3 + 10) + 5 + (3 + 2),
        "keys": 2,  # A#0 was deleted
        "live_bytes": (3 + 10) + (3 + 2),
    }
    assert scale.changelog_size([]) == {"records": 0, "tombstones": 0, "bytes": 0, "keys": 0,
                                        "live_bytes": 0}


def test_topic_rates_take_each_topic_over_its_own_span() -> None:
    series = [(0.0, {"texts": 0, "prices": 0}), (1.0, {"texts": 50, "prices": 0}),
              (2.0, {"texts": 100, "prices": 0}), (3.0, {"texts": 100, "prices": 40}),
              (5.0, {"texts": 100, "prices": 200})]
    rates = scale.topic_rates(series, {"texts": 100, "prices": 200, "labels": 0})
    assert rates["texts"] == {"events": 100, "seconds": 2.0, "events_per_s": 50.0}
    assert rates["prices"]["seconds"] == 3.0  # from the last scrape that saw none
    assert "labels" not in rates
    assert "texts" not in scale.topic_rates(series[:2], {"texts": 100})  # never finished


@pytest.mark.parametrize(("changes", "message"), [
    ({"dimensions": ()}, "expected one or more of"),
    ({"dimensions": ("symbols", "sizes")}, "expected one or more of"),
    ({"dimensions": ("pending", "pending")}, "repeat"),
    ({"stores": ("memory", "redis")}, "state stores"),
    ({"symbol_counts": (500, 50)}, "increasing"),
    ({"windows": (1, 10)}, ">= 2"),
    ({"pending_sizes": ()}, "one or more"),
    ({"ticks": 100, "symbol_counts": (50, 500)}, "ticks >= the largest symbol count"),
    ({"latency_rate": 0.0}, "latency_rate"),
    ({"latency_rate": 2.0, "latency_seconds": 1.0}, "at least 10 ticks"),
    ({"pending_extra": -1}, "pending_extra"),
    ({"window_symbols": 0}, "window_symbols"),
    ({"partitions": 0}, "partitions"),
])
def test_scale_config_refuses_what_it_cannot_measure(changes: dict[str, Any],
                                                     message: str) -> None:
    with pytest.raises(BenchError, match=message):
        scale.ScaleConfig(**changes)


def test_the_quick_config_is_small_and_valid() -> None:
    quick, full = scale.ScaleConfig.quick(), scale.ScaleConfig()
    assert quick.dimensions == full.dimensions == scale.DIMENSIONS
    assert quick.ticks <= 5000
    assert max(quick.symbol_counts) <= quick.ticks
    assert full.symbol_counts == (50, 500, 5_000, 50_000)
    assert full.stores == ("memory", "rocksdb")
    # A store list only matters to the symbols curve.
    assert scale.ScaleConfig(dimensions=("pending",), stores=()).stores == ()


def test_the_cli_offers_the_scale_dimensions_and_stores() -> None:
    from tickcast.cli import bench

    assert bench.SCALE_DIMENSIONS == scale.DIMENSIONS
    assert bench.SCALE_STORES == scale.STORES


def _point(**values: Any) -> dict[str, Any]:
    return {"events": 1000, "seconds": 2.0, "events_per_s": 500.0, "ready_s": 3.0,
            "rss_ready_mib": 400.0, "rss_end_mib": 420.0, "rss_peak_mib": 450.0,
            "cpu_s_per_1k_events": 1.5,
            **values}


def _results() -> dict[str, Any]:
    symbol_points = []
    for n, rate in ((10, 800.0), (200, 600.0), (5000, 300.0)):
        for store in ("memory", "rocksdb"):
            symbol_points.append(_point(
                symbols=n, store=store, events_per_s=rate, events_per_s_over_first=rate / 800,
                outcomes={"forecast": 100, "warming_up": 50, "replayed": 0, "no_model": 0},
                changelog_bytes_per_1k_ticks=52_000.0, changelog_records=1200,
                latency={"p50_ms": 12.0, "p99_ms": 40.0, "max_ms": 55.0},
                recovery={"ready_s": 4.0, "recovery_to_first_forecast_s": 6.5,
                          "resumed_probes": 10, "probes": 10}))
    symbol_points.append({"symbols": 50000, "store": "memory", "error": "did not start"})
    return {
        "symbols": {"points": symbol_points},
        "pending": {
            "default": _point(pending_max=None, texts=1500, texts_per_s=700.0,
                              pending_texts=0.0),
            "points": [_point(pending_max=n, texts=n + 500, texts_per_s=r, pending_texts=n,
                              texts_per_s_over_default=r / 700)
                       for n, r in ((100, 690.0), (1000, 650.0))]},
        "windows": {"points": [
            _point(window=50, texts_per_s=500.0, ticks_per_s=3000.0,
                   texts_per_s_over_first=1.0, ticks_per_s_over_first=1.0),
            _point(window=500, texts_per_s=None, ticks_per_s=2500.0,
                   texts_per_s_over_first=None, ticks_per_s_over_first=2500 / 3000)]},
        "failed": ["symbols 50000 memory: did not start"],
    }


def test_the_table_shows_every_point_and_its_failures() -> None:
    text = scale.scale_table(_results())
    assert "| 5,000 | rocksdb |" in text
    assert "| 50,000 | memory | failed: did not start" in text
    assert "| default | 1,500 | 700 | 1.00 |" in text
    assert "| 1,000 | 1,500 | 650 | 0.93 |" in text
    assert "| 500 | – | – | 2,500 | 0.83 |" in text  # a missing rate is a dash, not an error
    assert "FAILED symbols 50000 memory" in text
    only = scale.scale_table({"windows": _results()["windows"]})
    assert "Symbols" not in only
    assert "Windows" in only


def test_plot_scale_writes_one_png_per_dimension(tmp_path: Path) -> None:
    paths = scale.plot_scale(_results(), tmp_path / "scale-x")
    assert [p.name for p in paths] == ["scale-x-symbols.png", "scale-x-pending.png",
                                       "scale-x-windows.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 10_000
    assert scale.plot_scale({"pending": _results()["pending"]}, tmp_path / "p") == [
        tmp_path / "p-pending.png"]


def test_worker_settings_are_added_and_replace_earlier_ones() -> None:
    target = Target(bootstrap="b:1", model_dir=Path("m"),
                          settings=(("TICKCAST_STATE_STORE", "memory"), ("TICKCAST_X", "1")))
    changed = scale._with(target, state_store="rocksdb", pending_max="100")
    assert dict(changed.settings) == {"TICKCAST_STATE_STORE": "rocksdb", "TICKCAST_X": "1",
                                      "TICKCAST_PENDING_MAX": "100"}
    assert Counter(k for k, _ in changed.settings)["TICKCAST_STATE_STORE"] == 1


def test_the_state_footprint_is_measured_through_the_workers_code() -> None:
    footprint = scale.state_footprint(symbols=50, keep=200)
    assert footprint["history_ticks"] == 200
    # the decoded cache holds machine arrays: 16 bytes a tick and a little overhead
    assert 200 * 16 / 1024 <= footprint["cache_kib"] < 2 * 200 * 16 / 1024
    # the memory store holds the JSON bytes the changelog carries, not Python lists
    assert footprint["changelog_kib"] <= footprint["store_kib"] < 2 * footprint["changelog_kib"]
    assert "in the memory store" in scale.scale_table({"state_footprint": footprint})


def test_the_workers_get_the_runs_inference_threads_unless_an_experiment_sets_them() -> None:
    target = Target(bootstrap="b:1", model_dir=Path("m"), inference_threads=2)
    env = target.worker_environ(prefix="p-", app_id="a", partitions=2, port=1, state=Path("s"))
    assert env["TICKCAST_INFERENCE_THREADS"] == "2"
    chosen = scale._with(target, inference_threads="3")
    assert chosen.worker_environ(prefix="p-", app_id="a", partitions=2, port=1,
                                 state=Path("s"))["TICKCAST_INFERENCE_THREADS"] == "3"
