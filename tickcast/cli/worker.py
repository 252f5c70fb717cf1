"""``tickcast worker``: one stream worker with ``/metrics``."""

from __future__ import annotations

import argparse
from typing import Any

from tickcast.cli.common import EPILOG, Context

__all__ = ["register"]


def register(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run a stream worker (Faust) with /metrics",
                            description="Declare topics, serve Prometheus /metrics and process "
                            "prices, texts and labels until SIGINT/SIGTERM.", epilog=EPILOG)
    worker.set_defaults(run=run)


def run(args: argparse.Namespace, context: Context) -> int:
    from tickcast.streams.worker import run_worker

    run_worker(context.settings)
    return 0
