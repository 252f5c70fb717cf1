"""``tickcast dashboards render``: draw the Grafana dashboards' panels from Prometheus data.

Grafana is the place to look at them; this renders the same queries to one PNG (for the
docs, reports, or a machine without Grafana), through Prometheus's ``query_range`` API.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tickcast.errors import TickcastError

__all__ = ["render"]

DASHBOARDS = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"


def _query_range(prometheus: str, expr: str, start: float, end: float, step: float
                 ) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    try:
        with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{params}",  # noqa: S310
                                    timeout=30) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # Prometheus explains a refused query in JSON
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            raise TickcastError(f"{prometheus} is not a Prometheus API ({exc})") from None
    except (OSError, ValueError) as exc:
        raise TickcastError(f"cannot query Prometheus at {prometheus}: {exc}") from None
    if body.get("status") != "success":
        raise TickcastError(f"Prometheus refused {expr!r}: {body.get('error')}")
    return body["data"]["result"]


def _legend(template: str, labels: dict[str, str]) -> str:
    out = template
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out


def render(prometheus: str, out: Path, *, minutes: float = 15.0,
           boards: tuple[str, ...] = ("sentiment", "forecaster", "operations")) -> int:
    """Write one PNG with every panel of ``boards``; returns the number of panels drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not DASHBOARDS.is_dir():
        raise TickcastError(f"no dashboards in {DASHBOARDS}: run from a tickcast checkout")
    panels = []
    for board in boards:
        data = json.loads((DASHBOARDS / f"{board}.json").read_text(encoding="utf-8"))
        panels += [(data["title"], p) for p in data["panels"] if p["type"] == "timeseries"]
    end = time.time()
    start = end - minutes * 60
    step = max(1.0, minutes * 60 / 300)
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows), squeeze=False)
    for ax, (board_title, panel) in zip(axes.flat, panels, strict=False):
        for target in panel["targets"]:
            for series in _query_range(prometheus, target["expr"], start, end, step):
                points = [(float(t), float(v)) for t, v in series["values"]]
                xs = [(t - end) / 60 for t, _ in points]
                ax.plot(xs, [v for _, v in points], linewidth=1.2,
                        label=_legend(target.get("legendFormat", ""), series["metric"]))
        ax.set_title(f"{panel['title']}", fontsize=10)
        ax.text(0.0, 1.13, board_title, transform=ax.transAxes, fontsize=7, color="grey")
        ax.set_xlabel("minutes ago", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=80)
    except OSError as exc:
        raise TickcastError(f"cannot write {out}: {exc.strerror or exc}") from None
    return len(panels)
