"""What every command gets: its settings, read once, and argument types with clear errors."""

from __future__ import annotations

import argparse
import logging
from functools import cached_property
from pathlib import Path
from typing import NoReturn

from tickcast.settings import ToolSettings
from tickcast.streams.settings import Settings

__all__ = ["EPILOG", "Context", "Parser", "configure_logging", "existing_file",
           "non_negative_float", "non_negative_int", "positive_float", "positive_int"]

EPILOG = "Configuration comes from TICKCAST_* environment variables; `tickcast config` lists them."


class Parser(argparse.ArgumentParser):
    """``argparse`` with an argument error on one line, like every other error of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the "
                     "arguments)\n")


class Context:
    """The settings a command runs with: each class read from the environment once, when a
    command first asks for it (the local-broker settings only by the commands that run one)."""

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_env()

    @cached_property
    def tools(self) -> ToolSettings:
        return ToolSettings.from_env()


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kafka-python and aiokafka narrate every connection at INFO.
    for noisy in ("kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def positive_int(raw: str) -> int:
    return _integer(raw, at_least=1)


def non_negative_int(raw: str) -> int:
    return _integer(raw, at_least=0)


def _integer(raw: str, *, at_least: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {raw!r}") from None
    if value < at_least:
        raise argparse.ArgumentTypeError(f"must be >= {at_least}, got {value}")
    return value


def positive_float(raw: str) -> float:
    return _number(raw, above=0.0)


def non_negative_float(raw: str) -> float:
    return _number(raw, at_least=0.0)


def _number(raw: str, *, above: float | None = None, at_least: float | None = None) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {raw!r}") from None
    if above is not None and not value > above:
        raise argparse.ArgumentTypeError(f"must be > {above:g}, got {raw}")
    if at_least is not None and not value >= at_least:
        raise argparse.ArgumentTypeError(f"must be >= {at_least:g}, got {raw}")
    return value


def existing_file(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {raw}")
    return path
