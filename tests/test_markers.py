"""``make test-unit`` (``-m "not integration"``) selects no test that needs a broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_unit_selection_holds_no_broker_test() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not integration",
         "-p", "no:cacheprovider", "tests"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    selected = [line for line in result.stdout.splitlines() if "::" in line]
    assert len(selected) > 100
    assert not [n for n in selected if n.startswith("tests/integration/")]
