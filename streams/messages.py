"""The Kafka-neutral shape of a consumed message and of an event to produce.

Agents convert Faust events into :class:`InMessage` and send each :class:`OutMessage`; the
processing in between is plain Python, testable without a broker or an event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["InMessage", "OutMessage", "Record", "in_message"]


@dataclass(slots=True)  # one per input event: not frozen (a frozen __init__ costs twice as much)
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


Record = tuple[str, int | None, bytes | None, bytes | None]
"""One record to produce: (topic, partition or ``None`` to partition by key, key, value)."""


def in_message(event: Any, *, prefix_len: int) -> InMessage:
    """The :class:`InMessage` of a Faust event; ``prefix_len`` characters of the topic name are
    the deployment's prefix."""
    m = event.message
    return InMessage(topic=m.topic[prefix_len:], partition=m.partition, offset=m.offset,
                     key=m.key, value=m.value,
                     timestamp_ms=int(m.timestamp * 1000) if m.timestamp else None)
