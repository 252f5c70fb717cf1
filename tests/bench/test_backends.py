"""The backends benchmark's bookkeeping: batches cut as serving cuts them, speed-ups against
tf.function, the Markdown it prints (the measuring itself runs on real models by hand)."""

from __future__ import annotations

import numpy as np
from tickcast_bench.backends import BackendRow, BackendSummary, _cut, _with_speedups, markdown


def test_a_batch_is_cut_to_its_longest_text() -> None:
    ids = np.array([[0, 0, 0, 5, 6], [0, 0, 7, 8, 9], [0, 0, 0, 0, 0]], np.int32)
    assert _cut(ids).tolist() == [[0, 5, 6], [7, 8, 9], [0, 0, 0]]
    assert _cut(np.zeros((2, 4), np.int32)).shape == (2, 1)


def test_speedups_are_against_tf_function_and_printed() -> None:
    summaries = _with_speedups([
        BackendSummary("lstm", "tf_function", ok=True, rows=[
            BackendRow("lstm", "tf_function", 1, 0.0, 200.0, 2.0, 3.0, 100, 500.0)]),
        BackendSummary("lstm", "onnx", ok=True, note="a|b", rows=[
            BackendRow("lstm", "onnx", 1, 1e-8, 0.3, 0.05, 0.2, 100, 20000.0)]),
        BackendSummary("lstm", "litert", ok=False, note="build failed: X")])
    assert summaries[1].rows[0].speedup == 40.0
    table = markdown(summaries)
    assert "| lstm | onnx | 1 | 1.0e-08 | 0.30 | 0.050 | 0.200 | 100 | 20,000 | 40.0x |" in table
    assert "| lstm | litert | no |" in table
    assert "a/b" in table  # a note cannot break the table
