"""How much a training job prints while it fits: progress that fits where it runs."""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["keras_verbose"]


def keras_verbose(progress: bool, stream: TextIO | None = None) -> int:
    """Keras ``fit(verbose=...)``: 0 without progress; on a terminal 1 (a live bar per epoch);
    otherwise (CI, a container, a log file) 2, one line per epoch. A bar redraws itself with
    carriage returns, which a log keeps as one line of every step."""
    if not progress:
        return 0
    out = sys.stdout if stream is None else stream
    isatty = getattr(out, "isatty", None)
    return 1 if isatty is not None and isatty() else 2
