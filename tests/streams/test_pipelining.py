"""One batch ahead: the thread processes batch N + 1 while batch N completes; every batch
completes once, in order, with its own result."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tickcast.streams.pipelining import OneAhead


class Recorder:
    def __init__(self, *, fail_at: int | None = None, queued: bool = True) -> None:
        self.log: list[tuple[str, int]] = []
        self.completed: list[tuple[list[int], int]] = []
        self.fail_at = fail_at
        self.queued = queued
        self.threads: set[str] = set()
        self.executor = ThreadPoolExecutor(max_workers=1)

    def work(self, batch: list[int]) -> int:
        self.threads.add(threading.current_thread().name)
        if batch[0] == self.fail_at:
            raise RuntimeError(f"batch {batch[0]} failed")
        return sum(batch)

    def ahead(self) -> OneAhead[int]:
        loop = asyncio.get_running_loop()

        def process(batch: list[int]) -> asyncio.Future[int]:
            self.log.append(("process", batch[0]))
            return loop.run_in_executor(self.executor, self.work, batch)

        async def complete(events: Sequence[Any], result: int) -> None:
            self.log.append(("complete", events[0]))
            await asyncio.sleep(0)
            self.completed.append((list(events), result))

        return OneAhead(process=process, complete=complete, queued=lambda: self.queued)


BATCHES = [[k * 10 + i for i in range(3)] for k in range(6)]


def run(recorder: Recorder, batches: list[list[int]]) -> None:
    async def main() -> None:
        ahead = recorder.ahead()
        try:
            for batch in batches:
                await ahead.batch(batch, batch)
            await ahead.flush()
        finally:
            ahead.abandon()

    asyncio.run(main())


def test_every_batch_completes_once_in_order_with_its_own_result() -> None:
    r = Recorder()
    run(r, BATCHES)
    assert r.completed == [(b, sum(b)) for b in BATCHES]
    assert r.threads == {next(iter(r.threads))}  # one thread, so batches run in order


def test_the_next_batch_is_submitted_before_the_previous_one_completes() -> None:
    r = Recorder()
    run(r, BATCHES)
    for k in range(1, len(BATCHES)):
        assert r.log.index(("process", BATCHES[k][0])) < r.log.index(
            ("complete", BATCHES[k - 1][0]))


def test_without_queued_events_a_batch_completes_before_the_next_arrives() -> None:
    r = Recorder(queued=False)

    async def main() -> None:
        ahead = r.ahead()
        for k, batch in enumerate(BATCHES, start=1):
            await ahead.batch(batch, batch)
            assert len(r.completed) == k

    asyncio.run(main())


def test_a_failed_batch_stops_and_nothing_after_it_completes() -> None:
    r = Recorder(fail_at=BATCHES[3][0])
    with pytest.raises(RuntimeError, match="batch 30 failed"):
        run(r, BATCHES)
    assert [events for events, _ in r.completed] == BATCHES[:3]


def test_a_batch_left_behind_by_a_failure_logs_no_unretrieved_exception() -> None:
    r = Recorder(fail_at=BATCHES[1][0])
    errors: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        ahead = r.ahead()

        async def fail(events: Sequence[Any], result: int) -> None:
            raise OSError("send failed")

        async def feed() -> None:
            for batch in BATCHES:
                await ahead.batch(batch, batch)

        ahead.complete = fail
        # Batch 0 fails to complete while batch 1 is processed, and fails too.
        with pytest.raises(OSError, match="send failed"):
            await feed()
        await asyncio.sleep(0.2)
        gc.collect()
        await asyncio.sleep(0)

    asyncio.run(main())
    assert errors == []
