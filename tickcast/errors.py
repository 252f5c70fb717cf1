"""The root of every error tickcast raises for a user to act on.

The command line prints a :class:`TickcastError` as one line, ``tickcast <command>: error:
<message>``, and exits with status 2; any other exception is a bug and keeps its traceback.
Each part of tickcast subclasses it where the error arises: ``SettingsError`` (a
``TICKCAST_*`` variable), ``SecurityError`` (TLS files), ``TopicError`` (topics),
``BrokerError`` (the local broker), ``ArtifactError`` and ``StoreError`` (model artifacts),
``DataError`` (datasets and CSV input), ``PublishError`` (model-updates), ``BenchError`` (the
benchmarks), ``EventError`` (an input event, which becomes a dead letter rather than reaching
the command line).
"""

from __future__ import annotations

__all__ = ["TickcastError", "UsageError", "gist"]


class TickcastError(Exception):
    """An error whose message tells a user what was wrong and what to do; not a bug."""


class UsageError(TickcastError):
    """Command-line arguments that cannot be honoured together, or a missing prerequisite."""


def gist(output: str) -> str:
    """The line of a tool's output most likely to say what went wrong: the last one naming an
    error or exception, else the last one (shortened to fit an error message)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "Exception" in line
              or "error:" in line]
    line = (errors or lines or ["(no output)"])[-1]
    return line if len(line) <= 300 else line[:297] + "..."
