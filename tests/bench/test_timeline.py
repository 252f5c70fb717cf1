"""The latency timeline: stage deltas between scrapes, per-second rows, the worst second, and
the broker's GC pauses read from its log."""

from __future__ import annotations

from pathlib import Path

import pytest
from tickcast_bench.timeline import broker_pauses, describe_worst, stage_deltas, timeline, worst

from tickcast.scrape import Samples

BOUNDS = (".001", ".0025", ".005", ".01", ".025", ".05", ".1", ".25", ".5", "1.0", "+Inf")


def histogram(name: str, observations: list[float], **labels: str) -> Samples:
    """A scrape holding one histogram series with these observations."""
    pairs = tuple(sorted(labels.items()))
    out = Samples()
    for le in BOUNDS:
        bound = float("inf") if le == "+Inf" else float(le)
        out[(f"{name}_bucket", tuple(sorted({**labels, "le": le}.items())))] = float(
            sum(1 for o in observations if o <= bound))
    out[(f"{name}_count", pairs)] = float(len(observations))
    out[(f"{name}_sum", pairs)] = float(sum(observations))
    return out


def scrape_with(commit: list[float], rebalances: float = 1.0) -> Samples:
    samples = histogram("tickcast_commit_duration_seconds", commit)
    samples[("tickcast_rebalances_total", ())] = rebalances
    return samples


def test_a_stage_delta_counts_what_happened_between_two_scrapes() -> None:
    before = scrape_with([0.004])
    after = scrape_with([0.004, 0.02, 0.2])
    delta = stage_deltas(before, after)["commit"]
    assert delta["n"] == 2
    assert delta["mean_ms"] == pytest.approx(110.0)
    assert delta["max_le_ms"] == pytest.approx(250.0)  # 0.2 s lies in the (0.1, 0.25] bucket
    assert stage_deltas(before, before)["commit"] == {"n": 0, "mean_ms": None,
                                                      "max_le_ms": None}


def test_rows_per_second_and_the_worst_second_with_its_dominant_stage() -> None:
    t0 = 1000.0
    latencies = [(t0 + 0.1, 10.0), (t0 + 0.5, 12.0), (t0 + 1.2, 300.0), (t0 + 1.4, 20.0)]
    samples = [(t0, scrape_with([])), (t0 + 1.0, scrape_with([0.005])),
               (t0 + 2.0, scrape_with([0.005, 0.2], rebalances=2.0))]
    rows = timeline(latencies, samples, t0=t0, seconds=3,
                    acks=[(t0 + 1.2, 150.0), (t0 + 1.4, 3.0)], pauses=[(t0 + 1.1, 120.0)])
    assert [r["forecasts"] for r in rows] == [2, 2, 0]
    assert rows[1]["max_ms"] == 300.0
    assert rows[2]["p50_ms"] is None  # nothing sent in that second
    assert rows[1]["stages"]["commit"]["n"] == 1
    assert rows[1]["stages"]["produce_ack"] == {"n": 2, "mean_ms": 76.5, "max_le_ms": 150.0}
    assert rows[1]["stages"]["broker_gc"]["max_le_ms"] == 120.0
    assert rows[1]["rebalances"] == 1.0
    w = worst(rows)
    assert w is not None
    assert (w["second"], w["dominant_stage"], w["rebalances"]) == (1, "commit", 1.0)
    assert "worst second 1" in describe_worst(w)
    assert "1 rebalance" in describe_worst(w)


def test_no_forecast_means_no_worst_second() -> None:
    assert worst(timeline([], [], t0=0.0, seconds=2)) is None
    assert describe_worst(None) == "no forecast arrived"


def test_broker_pauses_are_read_from_a_jvm_gc_log(tmp_path: Path) -> None:
    log = tmp_path / "gc.log"
    log.write_text(
        "[2026-12-01T22:10:02.549+0000][0.781s] GC(0) Pause Young (Normal) (G1 Evacuation "
        "Pause) 25M->6M(512M) 7.539ms\n"
        "[2026-12-01T22:10:03.082+0000][1.314s] GC(3) Pause Remark 10M->10M(512M) 2.444ms\n"
        "[2026-12-01T22:10:03.100+0000][1.400s] GC(4) Concurrent Mark Cycle 40.1ms\n",
        encoding="utf-8")
    pauses = broker_pauses(log, since=0.0)
    assert [ms for _, ms in pauses] == [7.539, 2.444]
    end = 1796163002.549  # 2026-12-01T22:10:02.549Z
    assert pauses[0][0] == pytest.approx(end - 0.007539)
    assert broker_pauses(log, since=end) == [(pytest.approx(1796163003.082 - 0.002444), 2.444)]
    assert broker_pauses(tmp_path / "missing.log", since=0.0) == []


def test_ticks_sent_after_the_planned_seconds_get_rows_of_their_own() -> None:
    from tickcast_bench.timeline import timeline

    rows = timeline([(100.2, 5.0), (101.5, 6.0), (102.3, 7.0)], [], t0=100.0, seconds=2)
    assert [row["second"] for row in rows] == [0, 1, 2]
    assert [row["forecasts"] for row in rows] == [1, 1, 1]
    assert [row["second"] for row in timeline([(100.2, 5.0)], [], t0=100.0, seconds=2)] == [0, 1]
