"""Keep the garbage collector's full passes off the hot path.

After TensorFlow, Keras and the models load, a worker holds some 440k objects, and every full
(generation 2) pass of Python's cyclic collector walks all of them: ~200 ms on two cores, with
the event loop and the inference thread stopped the whole time -- one such pause puts hundreds
of forecasts past the latency target. Those objects live as long as the worker, so once the
models are loaded they are collected once and frozen (:func:`gc.freeze`): later passes walk
only what was made since. A model swap turns the old model into garbage inside the frozen part
(Keras models hold reference cycles), so a swap unfreezes, collects and freezes again: one
deliberate pause per swap instead of a leak.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass

__all__ = ["Frozen", "freeze"]

log = logging.getLogger(__name__)

_lock = threading.Lock()


@dataclass(frozen=True)
class Frozen:
    objects: int
    """Objects the collector no longer walks."""
    collected: int
    """Unreachable objects freed by the collection before the freeze."""
    seconds: float
    """How long the collect-and-freeze stopped the process."""


def freeze() -> Frozen:
    """Collect everything (frozen objects included), then freeze what survived."""
    with _lock:
        started = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        done = Frozen(gc.get_freeze_count(), collected, time.perf_counter() - started)
    log.info("heap frozen: %d objects, %d collected, %.0f ms", done.objects, done.collected,
             done.seconds * 1000)
    return done
