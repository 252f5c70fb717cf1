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

__all__ = ["TickcastError", "UsageError"]


class TickcastError(Exception):
    """An error whose message tells a user what was wrong and what to do; not a bug."""


class UsageError(TickcastError):
    """Command-line arguments that cannot be honoured together, or a missing prerequisite."""
