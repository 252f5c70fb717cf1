"""``tickcast demo``: local broker, worker and replay, with a live summary."""

from __future__ import annotations

import argparse
from typing import Any

from tickcast.cli.common import EPILOG, Context, non_negative_float, positive_float

__all__ = ["register"]


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="local broker + worker + replay, with a live summary",
                          description="Start the local broker (unless TICKCAST_KAFKA_BOOTSTRAP "
                          "points elsewhere), a worker and a replay of labelled texts; print "
                          "where /metrics is and a live summary. Ctrl-C stops all it started.",
                          epilog=EPILOG)
    demo.add_argument("--rate", type=positive_float, default=50.0,
                      help="texts per second [50]")
    demo.add_argument("--duration", type=non_negative_float, default=0.0,
                      help="stop after this many seconds; 0 runs until Ctrl-C [0]")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace, context: Context) -> int:
    from tickcast.demo import run_demo

    return run_demo(context.settings, context.tools, rate=args.rate, duration=args.duration)
