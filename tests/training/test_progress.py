"""Training progress fits where it runs: a live bar on a terminal, one line per epoch in a log."""

from __future__ import annotations

import io
import subprocess
import sys

from tickcast.training.progress import keras_verbose


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_verbosity_follows_the_output() -> None:
    assert keras_verbose(True, Terminal()) == 1
    assert keras_verbose(True, io.StringIO()) == 2
    assert keras_verbose(False, Terminal()) == 0


TRAIN = """
import sys, tempfile
from pathlib import Path
from tickcast.training.data import gold_closes
from tickcast.training.prices import PriceConfig, train_prices
frame = gold_closes().tail(400).reset_index(drop=True)
train_prices(frame, store_dir=Path(tempfile.mkdtemp()), progress=True,
             config=PriceConfig(window=5, units=(4,), epochs=3, patience=5))
"""


def test_training_into_a_log_writes_one_short_line_per_epoch() -> None:
    """Output to a pipe, as in CI, a container or ``> train.log``."""
    result = subprocess.run([sys.executable, "-c", TRAIN], capture_output=True, text=True,
                            check=True, timeout=300)
    lines = result.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("Epoch ")]
    assert epochs == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert len(lines) == 6  # an "Epoch i/3" line and a summary line per epoch
    assert max(len(line) for line in lines) < 200, max(lines, key=len)[:300]
