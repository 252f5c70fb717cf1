"""`tickcast demo` (what `make demo` runs): trains quick models, runs a worker and a replay,
prints where the metrics are and a live summary, and stops what it started."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port
from tickcast.models.registry import ModelStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_end_to_end_and_stops_cleanly(kafka_bootstrap: str, owned_prefix: str,
                                                tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    env.update({"TICKCAST_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "TICKCAST_TOPIC_PREFIX": owned_prefix, "TICKCAST_APP_ID": f"{owned_prefix}demo",
                "TICKCAST_METRICS_PORT": str(free_port()),
                "TICKCAST_PROMETHEUS_PORT": str(free_port()),
                "TICKCAST_STATE_DIR": str(tmp_path / "state"),
                "TICKCAST_MODEL_DIR": str(tmp_path / "models")})
    result = subprocess.run([sys.executable, "-m", "tickcast", "demo", "--duration", "12",
                             "--rate", "100"], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "training a quick one" in out
    assert re.search(r"worker metrics: http://127\.0\.0\.1:\d+/metrics", out)
    scored = [int(n) for n in re.findall(r"texts\s+(\d+)", out)]
    forecasts = [int(n) for n in re.findall(r"forecasts\s+(\d+)", out)]
    assert scored
    assert scored[-1] > 0
    assert forecasts[-1] > 0
    assert out.rstrip().endswith("demo stopped")
    if shutil.which("prometheus"):
        assert re.search(r"prometheus:\s+http://127\.0\.0\.1:\d+", out)
    store = ModelStore(tmp_path / "models")
    assert store.latest("gold-lstm")
    assert store.latest("sentiment-rnn")
