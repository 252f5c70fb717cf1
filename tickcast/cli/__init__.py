"""The ``tickcast`` command line: one console script, one module per command group.

Each module registers its subcommands with a ``register(subparsers)`` function and runs them as
``run(args, context)``. :func:`main` reads the settings once, configures logging from them, and
turns a :class:`~tickcast.errors.TickcastError` into one line on stderr and exit status 2;
any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tickcast.cli import (
    backtest,
    bench,
    config,
    dashboards,
    demo,
    generate,
    kafka,
    models,
    produce,
    train,
    worker,
)
from tickcast.cli.common import EPILOG, Context, Parser, configure_logging
from tickcast.errors import TickcastError

__all__ = ["build_parser", "main"]

GROUPS = (kafka, worker, produce, demo, train, models, backtest, generate, bench, dashboards,
          config)
"""Command modules, in the order ``tickcast --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tickcast", epilog=EPILOG,
        description="Streaming forecasts and sentiment on Kafka: workers, local broker, replay.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    context = Context()
    try:
        if getattr(args, "needs_settings", True):
            configure_logging(context.settings.log_level)  # reads and checks every setting
        return int(args.run(args, context) or 0)
    except TickcastError as exc:
        print(f"tickcast {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _version() -> str:
    from tickcast import __version__

    return f"tickcast {__version__}"
