"""The dead-letter path: every input event that cannot be processed, with the reason.

A dead letter keeps what is needed to inspect or replay the event: source topic, partition,
offset, the key and the raw value as base64 (any bytes survive JSON), a bounded ``reason`` code
and an ``error`` sentence for humans. The worker counts it and carries on.
"""

from __future__ import annotations

import base64
import time

from tickcast.streams.events import DeadLetter, EventError

__all__ = ["dead_letter"]


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def dead_letter(*, source_topic: str, partition: int, offset: int, key: bytes | None,
                raw: bytes | None, error: EventError) -> bytes:
    """The encoded ``dead-letters`` value for one rejected event."""
    return DeadLetter(
        source_topic=source_topic, partition=partition, offset=offset, reason=error.reason,
        error=error.message, key=_b64(key), raw=_b64(raw),
        dead_lettered_at=int(time.time() * 1000),
    ).to_bytes()
