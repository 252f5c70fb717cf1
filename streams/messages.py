"""The Kafka-neutral shape of a consumed message and of an event to produce.

Agents convert Faust events into :class:`InMessage` and send each :class:`OutMessage`; the
processing in between is plain Python, testable without a broker or an event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InMessage", "OutMessage"]


@dataclass(frozen=True, slots=True)
class InMessage:
    topic: str
    """Logical topic (``texts``), without the deployment's prefix."""
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None
    """Kafka timestamp (producer create time, or broker append time)."""


@dataclass(frozen=True, slots=True)
class OutMessage:
    topic: str
    """Logical topic to produce to (``sentiment``, ``dead-letters``)."""
    key: bytes | None
    value: bytes
