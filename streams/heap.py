"""Keep the garbage collector's full passes off the hot path.

After TensorFlow, Keras and the models load, a worker holds some 440k objects, and every full
(generation 2) pass of Python's cyclic collector walks all of them: ~200 ms on two cores, with
the event loop and the inference thread stopped the whole time -- one such pause puts hundreds
of forecasts past the latency target. Those objects live as long as the worker, so once the
models are loaded they are collected once and frozen (:func:`gc.freeze`): later passes walk
only what was made since. A model swap turns the old model into garbage inside the frozen part
(Keras models hold reference cycles), so a swap unfreezes, collects and freezes again: one
deliberate pause per swap instead of a leak.

The young generation's threshold is raised at the same time (:data:`THRESHOLDS`). Python
counts tracked objects allocated minus those freed, and at the default of 700 a single batch
in flight (its messages, ticks, jobs and records) crosses it: young passes run several times
a batch and move the batch's live objects to older generations, which in turn trigger full
passes. With many symbols a full pass walks every symbol's state (two arrays and the state
object each: ~150k objects at 50,000 symbols), so the collector's cost and its pauses grew
with the symbols. At 10,000 a pass runs only when tracked objects really accumulate; cyclic
garbage is still collected, a little later.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass
from typing import Final

__all__ = ["THRESHOLDS", "Frozen", "freeze"]

log = logging.getLogger(__name__)

_lock = threading.Lock()

THRESHOLDS: Final = (10_000, 10, 10)
"""The collector's thresholds in a worker (Python's default: 700, 10, 10)."""


@dataclass(frozen=True)
class Frozen:
    objects: int
    """Objects the collector no longer walks."""
    collected: int
    """Unreachable objects freed by the collection before the freeze."""
    seconds: float
    """How long the collect-and-freeze stopped the process."""


def freeze() -> Frozen:
    """Collect everything (frozen objects included), then freeze what survived; the
    collector runs at :data:`THRESHOLDS` from then on."""
    with _lock:
        started = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        gc.set_threshold(*THRESHOLDS)
        done = Frozen(gc.get_freeze_count(), collected, time.perf_counter() - started)
    log.info("heap frozen: %d objects, %d collected, %.0f ms", done.objects, done.collected,
             done.seconds * 1000)
    return done
