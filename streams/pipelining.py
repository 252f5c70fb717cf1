"""A batch handed to the processing thread while the loop sends the one before it.

The sentiment agent's batches are processed whole in one worker thread, in order (its
processor's state lives there). Without overlap the thread idles while the loop sends a
batch's outputs and takes the next batch, and the loop idles while the thread works.
:class:`OneAhead` submits batch ``N + 1`` before it completes batch ``N`` (awaits its
outputs, sends them, tracks the batch), so each side works while the other does. A batch
waits for the next only while more events are queued; otherwise it completes at once, and a
light load sees no delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from tickcast.streams.delivery import retrieve

__all__ = ["OneAhead"]

T = TypeVar("T")


class OneAhead(Generic[T]):
    """``process`` submits a batch to the thread (a future of its result); ``complete`` takes
    a batch's events and result, in batch order; ``queued`` says whether more events wait."""

    def __init__(self, *, process: Callable[[Any], asyncio.Future[T]],
                 complete: Callable[[Sequence[Any], T], Awaitable[None]],
                 queued: Callable[[], bool]) -> None:
        self.process, self.complete, self.queued = process, complete, queued
        self._held: tuple[Sequence[Any], asyncio.Future[T]] | None = None

    async def batch(self, events: Sequence[Any], batch: Any) -> None:
        """Submit ``batch`` (``events``: what ``complete`` gets back), then complete the batch
        before it."""
        result = self.process(batch)
        try:
            await self.flush()
        except BaseException:
            result.add_done_callback(retrieve)
            raise
        self._held = (events, result)
        if not self.queued():
            await self.flush()

    async def flush(self) -> None:
        """Complete the batch held back, if any."""
        held, self._held = self._held, None
        if held is None:
            return
        events, result = held
        await self.complete(events, await result)  # awaiting it retrieves a failure

    def abandon(self) -> None:
        """Drop the batch held back (the agent stops on an error: it is not acknowledged, so
        it is redelivered)."""
        held, self._held = self._held, None
        if held is not None:
            held[1].add_done_callback(retrieve)
