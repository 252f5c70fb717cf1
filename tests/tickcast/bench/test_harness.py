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
