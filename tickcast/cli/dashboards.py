"""``tickcast dashboards render``: the Grafana dashboards' panels as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tickcast.cli.common import EPILOG, Context, positive_float

__all__ = ["register"]


def register(sub: Any) -> None:
    boards = sub.add_parser("dashboards", help="render the Grafana dashboards' panels to a PNG",
                            description="Query Prometheus for every time-series panel of the "
                            "provisioned dashboards and draw them into one PNG.", epilog=EPILOG)
    boards.add_argument("action", choices=["render"])
    boards.add_argument("--prometheus", default="http://127.0.0.1:9090",
                        help="Prometheus base URL [http://127.0.0.1:9090]")
    boards.add_argument("--minutes", type=positive_float, default=15.0, help="time range [15]")
    boards.add_argument("--out", type=Path, default=Path("dashboards.png"),
                        help="PNG to write [dashboards.png]")
    boards.set_defaults(run=run)


def run(args: argparse.Namespace, context: Context) -> int:
    from tickcast.dashboards import render

    count = render(args.prometheus.rstrip("/"), args.out, minutes=args.minutes)
    print(f"{count} panels from {args.prometheus} written to {args.out}")
    return 0
