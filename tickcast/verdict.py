"""Evidence for the champion/challenger gate, read from workers or from a backtest.

Live evidence is what each worker exports on ``/metrics`` (``tickcast_challenger_*``); a
worker that shadows another version (or none) contributes nothing, and the evidence of the
ones that do is pooled (:func:`tickcast.streams.gate.combine`). A backtest's
``summary.json`` holds the same paired statistics over the whole run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tickcast.errors import UsageError
from tickcast.scrape import Samples, scrape
from tickcast.streams.gate import AUCEvidence, DMEvidence, Evidence

__all__ = ["Source", "backtest_evidence", "live_evidence", "read_worker"]

METRIC_MODEL: Final = {"forecaster": "lstm", "sentiment": "rnn"}


@dataclass(frozen=True, slots=True)
class Source:
    """Where evidence came from, what it holds (``None``: nothing usable) and why."""

    where: str
    evidence: Evidence | None
    note: str


def read_worker(url: str, *, timeout_s: float = 5.0) -> Samples:
    """One scrape of a worker's ``/metrics``; a :class:`UsageError` if it does not answer."""
    try:
        return scrape(url, timeout=timeout_s)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {url}: {getattr(exc, 'reason', exc)}") from None


def _versions(samples: Samples, name: str, model: str) -> list[str]:
    """The ``version`` label of every ``name{model=...}`` sample at 1."""
    return [dict(labels)["version"] for (n, labels), value in samples.items()
            if n == name and dict(labels).get("model") == model and value == 1.0]


def live_evidence(where: str, samples: Samples, *, kind: str, challenger: str) -> Source:
    """One worker's paired evidence for ``challenger`` (a ``forecaster`` or ``sentiment``)."""
    model = METRIC_MODEL[kind]
    shadowing = _versions(samples, "tickcast_challenger_info", model)
    if challenger not in shadowing:
        return Source(where, None, f"shadows {', '.join(shadowing) or 'nothing'}, not "
                      f"{challenger}")
    about = _versions(samples, "tickcast_challenger_evidence_info", model)
    if challenger not in about:
        return Source(where, None, f"no evidence on {challenger} yet (it holds "
                      f"{', '.join(about) or 'none'}; it follows at the next batch)")
    n = int(samples.value("tickcast_challenger_window_size", model=model) or 0)
    if kind == "forecaster":
        stat = samples.value("tickcast_challenger_forecast_dm", model=model, value="stat")
        p = samples.value("tickcast_challenger_forecast_dm", model=model, value="p_value")
        if stat is None or p is None or not (math.isfinite(stat) and math.isfinite(p)):
            return Source(where, None, f"{n} paired forecasts, no test yet")
        return Source(where, DMEvidence(n=n, stat=stat, p=p), "live")
    bounds = [samples.value("tickcast_challenger_auc_diff", bound=b)
              for b in ("estimate", "low", "high")]
    if any(b is None or not math.isfinite(b) for b in bounds):
        return Source(where, None, f"{n} paired labelled texts, no test yet")
    diff, low, high = (float(b) for b in bounds)  # type: ignore[arg-type]
    return Source(where, AUCEvidence(n=n, diff=diff, low=low, high=high), "live")


def backtest_evidence(out_dir: Path, *, kind: str, name: str, challenger: str,
                      champion: str | None) -> Source:
    """The challenger's paired statistics from ``tickcast backtest``'s ``summary.json``."""
    path = out_dir / "summary.json"
    try:
        summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    section = summary.get("forecasts" if kind == "forecaster" else "sentiment")
    where = str(path)
    if not section:
        return Source(where, None, f"the backtest ran no {kind}")
    if champion is not None and section.get("champion") != f"{name}@{champion}":
        return Source(where, None, f"its champion is {section.get('champion')}, not the "
                      f"current {name}@{champion}")
    entry = next((m for m in section["models"] if m["model"] == f"{name}@{challenger}"), None)
    if entry is None:
        return Source(where, None, f"the backtest did not run {name}@{challenger}")
    if kind == "forecaster":
        dm = entry.get("dm_vs_champion")
        if not dm:
            return Source(where, None, "no test (too few forecasts, or identical ones)")
        return Source(where, DMEvidence(n=dm["n"], stat=dm["stat"], p=dm["p_value"]),
                      "backtest")
    c = entry.get("vs_champion")
    if not c:
        return Source(where, None, "no test (fewer than two labelled texts of a class)")
    return Source(where, AUCEvidence(n=c["n"], diff=c["diff"], low=c["low"], high=c["high"]),
                  "backtest")
