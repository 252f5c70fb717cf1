"""The order in which the prices agent plans, infers and finishes batches: two lanes, so the
event loop works on one lane while the inference thread works on the other.

A large batch is split by symbol into two parts (:meth:`~tickcast.streams.prices.processor.
Decoded.lanes`); a symbol is always in the same lane. For batches ``N`` and ``N + 1``, with
lanes ``A`` and ``B``::

    loop:    plan A(N+1) | finish B(N), send | plan B(N+1) | finish A(N+1), send | ...
    thread:  infer B(N) ------------------>   infer A(N+1) ------------------>   infer B(N+1)

Each lane's parts are planned and finished in batch order (``A(N+1)`` is planned after
``A(N)`` finished, ``B(N+1)`` after ``B(N)``), which is all the tick rule needs: a symbol's
state only ever changes in its own lane. Batch ``N`` is handed to ``track`` (acknowledged
once delivered) after both its parts are sent, so batches are still tracked in order. The
second part waits for the next batch only while more events are queued; otherwise it is
finished at once, and a light load sees no delay. A batch of fewer than ``split_min`` ticks
goes whole, after any part still held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from tickcast.models.predictors import Forecaster
from tickcast.streams.delivery import retrieve
from tickcast.streams.messages import InMessage
from tickcast.streams.prices.processor import Plan, PriceProcessor, SymbolState

__all__ = ["SPLIT_MIN", "LanePipeline"]

SPLIT_MIN: Final = 64
"""Ticks from which a batch goes in two lanes (fewer: the extra hand-over to the thread costs
more than the overlap saves, and a small batch means a light load)."""

Deliveries = list[asyncio.Future[Any]]


@dataclass(slots=True)
class _Held:
    """A batch whose first part is sent and whose second part is being inferred."""

    events: Sequence[Any]
    plan: Plan
    values: asyncio.Future[np.ndarray]
    deliveries: Deliveries
    """The first part's deliveries."""


class LanePipeline:
    """Plans, infers and finishes the prices agent's batches in two lanes.

    ``infer`` runs the plan's model calls off the loop (:meth:`PriceProcessor.run`, a
    future); ``send`` completes and finishes a plan and sends its outputs and state writes
    (their delivery futures); ``track`` takes a whole batch's events and deliveries, in batch
    order; ``queued`` says whether more events are waiting."""

    def __init__(self, processor: PriceProcessor, *,
                 load: Callable[[str, int], SymbolState],
                 infer: Callable[[Plan], asyncio.Future[np.ndarray]],
                 send: Callable[[Plan, np.ndarray], Awaitable[Deliveries]],
                 track: Callable[[Sequence[Any], Deliveries], Awaitable[None]],
                 queued: Callable[[], bool], split_min: int = SPLIT_MIN) -> None:
        self.processor = processor
        self.load, self.infer, self.send, self.track = load, infer, send, track
        self.queued = queued
        self.split_min = split_min
        self._held: _Held | None = None

    async def batch(self, events: Sequence[Any], batch: Sequence[InMessage],
                    forecaster: Forecaster | None, challenger: Forecaster | None) -> None:
        """Take one batch (``events``: what ``track`` acknowledges; ``batch``: their
        messages)."""
        processor = self.processor
        decoded = processor.decode(batch)
        if len(decoded.ticks) < self.split_min:
            await self.flush()
            plan = processor.plan(decoded, self.load, forecaster, challenger)
            await self.track(events, await self.send(plan, await self.infer(plan)))
            return
        first_part, second_part = decoded.lanes(2)
        first = processor.plan(first_part, self.load, forecaster, challenger)
        first_values = self.infer(first)
        try:
            await self.flush()  # lane B of the previous batch, before lane B of this one
            second = processor.plan(second_part, self.load, forecaster, challenger)
            second_values = self.infer(second)
        except BaseException:
            first_values.add_done_callback(retrieve)
            raise
        try:
            deliveries = await self.send(first, await first_values)
        except BaseException:
            second_values.add_done_callback(retrieve)
            raise
        self._held = _Held(events, second, second_values, deliveries)
        if not self.queued():  # nothing to overlap it with: no waiting for the next batch
            await self.flush()

    async def flush(self) -> None:
        """Finish, send and track the batch held back, if any."""
        held, self._held = self._held, None
        if held is None:
            return
        values = await held.values  # awaiting it retrieves a failure
        deliveries = held.deliveries + await self.send(held.plan, values)
        await self.track(held.events, deliveries)

    def abandon(self) -> None:
        """Drop the batch held back (the agent stops on an error: it is not acknowledged,
        so it is redelivered)."""
        held, self._held = self._held, None
        if held is not None:
            held.values.add_done_callback(retrieve)

