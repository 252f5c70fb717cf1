"""A latency run, second by second: what the forecasts saw, and where the worker spent time.

:class:`Sampler` scrapes a worker's ``/metrics`` once a second during the run. :func:`timeline`
joins those scrapes with the forecasts' latencies into one row per second of the run:

* ``forecasts``, ``p50_ms``, ``p99_ms``, ``max_ms`` -- forecasts of the ticks *sent* in that
  second, and their tick -> forecast latency;
* one entry per worker stage (:data:`STAGES`), from the histograms' increase over the
  scrape interval that ends in that second: how often the stage ran (``n``), its mean, and
  ``max_le_ms``, the upper bound of the highest bucket that grew (a histogram keeps no
  maximum: the true one lies below this bound and above the bucket under it);
* ``rebalances`` -- partition assignments the worker received in that interval;
* two stages seen from outside the worker: ``produce_ack``, the bench producer's send of a
  tick to the broker's acknowledgement (ticks sent in that second), and ``broker_gc``, the
  local broker's garbage-collection pauses that started in that second (from its GC log, when
  the run's broker is the local one). Their ``max_le_ms`` is the exact maximum.

:func:`worst` names the second with the highest maximum latency and its dominant stage: the
stage whose slowest occurrence was slowest (then the highest mean).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from tickcast.scrape import Samples, scrape

__all__ = ["STAGES", "Sampler", "broker_pauses", "describe_worst", "stage_deltas", "timeline",
           "worst"]

STAGES: Final[Mapping[str, tuple[str, Mapping[str, str]]]] = {
    "queue_wait": ("tickcast_batch_queue_wait_seconds", {"agent": "prices"}),
    "batch": ("tickcast_batch_duration_seconds", {"agent": "prices"}),
    "inference": ("tickcast_inference_duration_seconds", {"model": "lstm"}),
    "delivery": ("tickcast_delivery_duration_seconds", {"agent": "prices"}),
    "commit": ("tickcast_commit_duration_seconds", {}),
    "loop_lag": ("tickcast_event_loop_lag_seconds", {}),
    "gc": ("tickcast_gc_pause_seconds", {}),
}
"""Stage -> (histogram, labels selecting the series; several matching series are summed).

``queue_wait``: a tick's Kafka timestamp to its batch starting (producer, broker, fetch and
the wait in the stream's queue); ``batch``: the batch's compute (decode to records, inference
included); ``inference``: the batched LSTM call; ``delivery``: outputs handed to the producer
to acknowledged; ``commit``: one offset commit; ``loop_lag``: how late a 50 ms timer on the
event loop fired; ``gc``: Python garbage-collection pauses."""


class Sampler:
    """Scrapes ``url`` every ``interval`` seconds on a thread, keeping ``(time.time(),
    samples)``; a scrape that fails is skipped (the next one covers its interval)."""

    def __init__(self, url: str, *, interval: float = 1.0) -> None:
        self.url = url
        self.interval = interval
        self.samples: list[tuple[float, Samples]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tickcast-bench-sampler",
                                        daemon=True)

    def __enter__(self) -> Sampler:
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval
        while not self._stop.wait(max(next_at - time.monotonic(), 0.0)):
            self._take()
            next_at += self.interval

    def _take(self) -> None:
        with contextlib.suppress(OSError):
            self.samples.append((time.time(), scrape(self.url)))


def _histogram(samples: Samples, name: str, labels: Mapping[str, str]
               ) -> tuple[float, float, dict[float, float]]:
    """(count, sum, {le: cumulative count}) of the series of ``name`` matching ``labels``."""
    buckets: dict[float, float] = defaultdict(float)
    for (sample, pairs), value in samples.items():
        if sample != f"{name}_bucket":
            continue
        pair_map = dict(pairs)
        if all(pair_map.get(k) == v for k, v in labels.items()):
            buckets[float(pair_map["le"])] += value
    return (samples.total(f"{name}_count", **labels), samples.total(f"{name}_sum", **labels),
            dict(buckets))


def stage_deltas(before: Samples, after: Samples) -> dict[str, dict[str, float | None]]:
    """Each stage's increase between two scrapes: ``n``, ``mean_ms`` and ``max_le_ms`` (the
    upper bound of the highest bucket that grew; ``inf`` past the last bound)."""
    out: dict[str, dict[str, float | None]] = {}
    for stage, (name, labels) in STAGES.items():
        n0, s0, b0 = _histogram(before, name, labels)
        n1, s1, b1 = _histogram(after, name, labels)
        n = n1 - n0
        if n <= 0:
            out[stage] = {"n": 0, "mean_ms": None, "max_le_ms": None}
            continue
        max_le = math.inf
        for le in sorted(b1):
            if b1[le] - b0.get(le, 0.0) >= n:  # every new observation is <= le
                max_le = le
                break
        out[stage] = {"n": n, "mean_ms": (s1 - s0) / n * 1000, "max_le_ms": max_le * 1000}
    return out


_PAUSE = re.compile(r"^\[(?P<time>[^\]]+)\]\[[^\]]*\] GC\(\d+\) Pause .* (?P<ms>[\d.]+)ms$")


def broker_pauses(path: Path, *, since: float) -> list[tuple[float, float]]:
    """``(start, milliseconds)`` of every pause in a JVM GC log (``-Xlog:gc:...:time``)
    that started after ``since`` (``time.time()`` seconds); empty if there is no log."""
    if not path.is_file():
        return []
    pauses = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _PAUSE.match(line)
        if match is None:
            continue
        ended = datetime.strptime(match["time"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
        ms = float(match["ms"])
        if ended - ms / 1000 >= since:
            pauses.append((ended - ms / 1000, ms))
    return pauses


def _exact(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "mean_ms": None, "max_le_ms": None}
    return {"n": len(values), "mean_ms": sum(values) / len(values), "max_le_ms": max(values)}


def timeline(latencies: Sequence[tuple[float, float]], samples: Sequence[tuple[float, Samples]],
             *, t0: float, seconds: int, acks: Sequence[tuple[float, float]] = (),
             pauses: Sequence[tuple[float, float]] = ()) -> list[dict[str, Any]]:
    """One row per second ``0 .. seconds - 1`` of a run that started at ``t0`` (``time.time()``),
    and more if ticks were sent later than planned (a sender that fell behind): no forecast is
    left out of the rows.

    ``latencies``: ``(sent, latency_ms)`` per forecast, ``sent`` its tick's send time in
    ``time.time()`` seconds. ``samples``: :class:`Sampler` scrapes; the interval between two
    consecutive ones counts in the second its midpoint falls in. ``acks``: ``(sent, ack_ms)``
    per tick; ``pauses``: :func:`broker_pauses`.
    """
    ack_by_second: dict[int, list[float]] = defaultdict(list)
    for sent, ms in acks:
        ack_by_second[int(sent - t0)].append(ms)
    pause_by_second: dict[int, list[float]] = defaultdict(list)
    for started, ms in pauses:
        pause_by_second[int(started - t0)].append(ms)
    by_second: dict[int, list[float]] = defaultdict(list)
    for sent, latency in latencies:
        by_second[int(sent - t0)].append(latency)
    stages: dict[int, dict[str, dict[str, float | None]]] = {}
    rebalances: dict[int, float] = defaultdict(float)
    for (ta, a), (tb, b) in itertools.pairwise(samples):
        second = int((ta + tb) / 2 - t0)
        if 0 <= second < seconds:
            stages[second] = _merge(stages.get(second), stage_deltas(a, b))
            rebalances[second] += (b.total("tickcast_rebalances_total")
                                   - a.total("tickcast_rebalances_total"))
    last_sent = max((*by_second, *ack_by_second), default=-1)
    rows = []
    for second in range(max(seconds, last_sent + 1)):
        values = np.asarray(by_second.get(second, []))
        row: dict[str, Any] = {"second": second, "forecasts": len(values)}
        if len(values):
            row.update(p50_ms=float(np.percentile(values, 50)),
                       p99_ms=float(np.percentile(values, 99)), max_ms=float(values.max()))
        else:
            row.update(p50_ms=None, p99_ms=None, max_ms=None)
        row["stages"] = {**stages.get(second, {}),
                         "produce_ack": _exact(ack_by_second.get(second, [])),
                         "broker_gc": _exact(pause_by_second.get(second, []))}
        row["rebalances"] = rebalances.get(second, 0.0)
        rows.append(row)
    return rows


def _merge(a: dict[str, dict[str, float | None]] | None, b: dict[str, dict[str, float | None]]
           ) -> dict[str, dict[str, float | None]]:
    """Two intervals' deltas falling in the same second, as one."""
    if a is None:
        return b
    out = {}
    for stage in b:
        x, y = a[stage], b[stage]
        n = (x["n"] or 0) + (y["n"] or 0)
        if not n:
            out[stage] = y
            continue
        total = (x["n"] or 0) * (x["mean_ms"] or 0) + (y["n"] or 0) * (y["mean_ms"] or 0)
        maxes = [m for m in (x["max_le_ms"], y["max_le_ms"]) if m is not None]
        out[stage] = {"n": n, "mean_ms": total / n, "max_le_ms": max(maxes)}
    return out


def worst(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The second with the highest maximum latency, with its dominant stage."""
    seen = [r for r in rows if r["max_ms"] is not None]
    if not seen:
        return None
    row = max(seen, key=lambda r: r["max_ms"])
    ran = {s: v for s, v in row["stages"].items() if v["n"]}
    dominant = max(ran, key=lambda s: (ran[s]["max_le_ms"], ran[s]["mean_ms"]), default=None)
    return {"second": row["second"], "p99_ms": row["p99_ms"], "max_ms": row["max_ms"],
            "dominant_stage": dominant,
            "stage": ran.get(dominant) if dominant is not None else None,
            "rebalances": row["rebalances"]}


def describe_worst(w: Mapping[str, Any] | None) -> str:
    """One line for a printout."""
    if w is None:
        return "no forecast arrived"
    line = f"worst second {w['second']}: p99 {w['p99_ms']:.0f} ms, max {w['max_ms']:.0f} ms"
    if w["dominant_stage"] is not None:
        s = w["stage"]
        line += (f"; dominant stage {w['dominant_stage']} (slowest ≤ {s['max_le_ms']:.0f} ms, "
                 f"mean {s['mean_ms']:.1f} ms over {s['n']:.0f})")
    if w["rebalances"]:
        line += f"; {w['rebalances']:.0f} rebalance(s)"
    return line
