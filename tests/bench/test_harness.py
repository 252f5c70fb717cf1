"""The bench's own machinery: CPU accounting, its child processes, its input and outputs."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tickcast_bench import harness, processes


def test_cores_busy_scales_the_busy_share_by_the_core_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes.os, "cpu_count", lambda: 2)
    assert processes.cores_busy((1000, 4000), (1150, 4200)) == pytest.approx(1.5)
    assert processes.cores_busy((1000, 4000), (1000, 4000)) == 0.0  # no time passed


def test_machine_ticks_count_idle_and_iowait_as_not_busy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "stat"
    #          user nice system idle iowait irq softirq steal guest
    stat.write_text("cpu  100 5 20 800 50 3 2 0 0\ncpu0 1 2 3 4 5 6 7 8 9\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(
        stat if path == "/proc/stat" else path, *a, **k))
    assert processes.machine_ticks() == (130, 980)


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


STUBBORN = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('started', flush=True)\n"
            "time.sleep(60)\n")


def test_a_child_that_ignores_sigterm_is_killed_and_its_log_closed(tmp_path: Path) -> None:
    child = processes.Child([sys.executable, "-c", STUBBORN], log=tmp_path / "child.log",
                            env={})
    deadline = time.monotonic() + 10
    while "started" not in (tmp_path / "child.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    status = child.stop(timeout=0.5)
    assert status == -9  # SIGKILL after the SIGTERM was ignored
    assert child.log_closed


def test_a_pipeline_that_never_reports_progress_is_an_error_not_an_index_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def silent(argv: list[str], *, log: Path, env: object) -> processes.Child:
        return processes.Child([sys.executable, "-c", "import time; time.sleep(60)"], log=log,
                               env={})

    monkeypatch.setattr(harness, "Child", silent)
    target = harness.Target(bootstrap="127.0.0.1:1", model_dir=tmp_path)
    with pytest.raises(processes.BenchError, match="processed no event in 1s"):
        harness.run_pipeline("ceiling", target, "p-", state=tmp_path, seconds=None,
                             expected=10, timeout=1.0)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # its scratch is removed


def test_expected_outputs_name_every_forecast_and_text_the_input_asks_for() -> None:
    config = harness.BenchConfig(ticks=1000, symbols=10, texts=30, partitions=4)
    forecasts, texts = harness.expected_outputs(config, window=10)
    symbols = harness.balanced_symbols(10, 4)
    assert len(forecasts) == 10 * (100 - 9)  # each symbol's first 9 ticks warm its window up
    assert {s for s, _ in forecasts} == set(symbols)
    assert min(ts for _, ts in forecasts) == harness.TS_BASE + 9 * 1000
    assert len(texts) == 30
    assert texts == set(harness.text_ids(config))


def test_the_tokens_only_twin_keeps_the_text_encoder_and_drops_the_side_inputs(
        store: Any, tmp_path: Path) -> None:
    """The texts/s the side inputs cost is measured against this twin: the served model's
    encoder weights, no side inputs; it loads and serves through the one loader."""
    from tickcast_bench.harness import tokens_only_store
    from tickcast_bench.processes import Target

    from tickcast.models.predictors import SentimentRNN, load_latest
    from tickcast.models.registry import ModelStore

    target = Target(bootstrap="unused:9092", model_dir=store.root)
    root = tokens_only_store(target, tmp_path)
    served = load_latest(store, "sentiment-rnn", kind="sentiment")
    twin = load_latest(ModelStore(root), "sentiment-rnn", kind="sentiment")
    assert isinstance(served, SentimentRNN)
    assert isinstance(twin, SentimentRNN)
    assert served.needs_vader
    assert not twin.needs_vader
    assert twin.vocabulary.tokens == served.vocabulary.tokens
    for name in ("embedding", "lexicon", "bilstm"):
        for a, b in zip(twin.model.get_layer(name).get_weights(),
                        served.model.get_layer(name).get_weights(), strict=True):
            assert np.array_equal(a, b)
    assert len(twin.score_batch(["a fine day", "awful"])) == 2
    assert ModelStore(root).latest(target.forecaster) == store.latest(target.forecaster)
