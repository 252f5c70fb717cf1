"""The bench's CPU accounting: what the table's "cores" columns are made of."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickcast.bench import harness


def test_cores_busy_scales_the_busy_share_by_the_core_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness.os, "cpu_count", lambda: 2)
    assert harness._cores_busy((1000, 4000), (1150, 4200)) == pytest.approx(1.5)
    assert harness._cores_busy((1000, 4000), (1000, 4000)) == 0.0  # no time passed


def test_machine_ticks_count_idle_and_iowait_as_not_busy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "stat"
    #          user nice system idle iowait irq softirq steal guest
    stat.write_text("cpu  100 5 20 800 50 3 2 0 0\ncpu0 1 2 3 4 5 6 7 8 9\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(
        stat if path == "/proc/stat" else path, *a, **k))
    assert harness._machine_ticks() == (130, 980)


@pytest.mark.parametrize(("count", "partitions"), [(50, 8), (10, 8), (7, 3), (3, 8)])
def test_bench_symbols_spread_evenly_over_the_partitions(count: int, partitions: int) -> None:
    from kafka.partitioner.default import murmur2

    names = harness.balanced_symbols(count, partitions)
    assert len(set(names)) == count
    per_partition = [0] * partitions
    for name in names:
        per_partition[(murmur2(name.encode()) & 0x7FFFFFFF) % partitions] += 1
    assert max(per_partition) - min(per_partition) <= 1
    assert sum(per_partition) == count
