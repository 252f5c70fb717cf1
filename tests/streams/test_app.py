"""The worker app's flow control keeps events fetched after Faust's post-recovery seek."""

from __future__ import annotations

import asyncio
import logging

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from tickcast.streams.app import KeepFetchedOnResume, build_app, make_worker
from tickcast.streams.settings import Settings


def _queued_after_second_resume(flow_class: type[FlowControlEvent]) -> list[str]:
    """Faust's recovery order: flow resumed for changelog reading, events fetched after the
    stream seek, then ``flow_control.resume()`` once more. What is left in the queue?"""

    async def scenario() -> list[str]:
        flow = flow_class()
        queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        flow.resume()
        await queue.put("fetched after the seek")
        flow.resume()
        return [queue.get_nowait() for _ in range(queue.qsize())]

    return asyncio.run(scenario())


def test_resume_while_flowing_keeps_what_was_fetched() -> None:
    assert _queued_after_second_resume(KeepFetchedOnResume) == ["fetched after the seek"]


def test_upstream_flow_control_still_drops_it() -> None:
    # The faust-streaming #596 behaviour the subclass exists for. If this starts failing,
    # mode/faust changed ``resume()`` and the subclass may be unnecessary.
    assert _queued_after_second_resume(FlowControlEvent) == []


def test_resume_after_suspend_still_clears() -> None:
    async def scenario() -> int:
        flow = KeepFetchedOnResume()
        queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        flow.resume()
        await queue.put("fetched before a rebalance")
        flow.suspend()
        assert not flow.is_active()
        flow.resume()
        assert flow.is_active()
        return queue.qsize()

    assert asyncio.run(scenario()) == 0


def test_worker_app_uses_it() -> None:
    service = build_app(Settings.from_env({}))
    assert isinstance(service.app.flow_control, KeepFetchedOnResume)


def test_a_quiet_worker_keeps_the_root_logger_quiet() -> None:
    # Faust's spinner would set the root logger to DEBUG at WARNING: every debug call on the
    # hot path (one per output sent) would then build a LogRecord.
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        worker = make_worker(build_app(Settings.from_env({"TICKCAST_LOG_LEVEL": "warning"})))
        worker._setup_logging()
        assert root.level == logging.WARNING
        assert not logging.getLogger("faust.topics").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


# -- DeliverWithoutTasks: a blocked delivery continues under wait_first, as in Faust -----------
def _start_blocked_put(queue: asyncio.Queue[str], log: list[str]) -> tuple[object, object]:
    """A delivery (``queue.put``) into a full queue, stepped once by hand as the fetch loop
    does: it yields what it blocks on."""

    async def deliver() -> str:
        try:
            await queue.put("new")
        except asyncio.CancelledError:
            log.append("cancelled")
            raise
        log.append("delivered")
        return "done"

    delivery = deliver()
    return delivery, delivery.send(None)


def test_a_blocked_delivery_finishes_once_the_queue_has_room() -> None:
    from tickcast.streams.app import _rest

    async def scenario() -> tuple[str, list[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        queue.put_nowait("old")
        log: list[str] = []
        delivery, blocker = _start_blocked_put(queue, log)
        task = asyncio.ensure_future(_rest(delivery, blocker))
        await asyncio.sleep(0.01)
        assert not task.done()  # still blocked on the full queue
        assert queue.get_nowait() == "old"
        result = await asyncio.wait_for(task, 1.0)
        return result, [*log, queue.get_nowait()]

    assert asyncio.run(scenario()) == ("done", ["delivered", "new"])


def test_suspended_flow_abandons_a_blocked_delivery_as_faust_does() -> None:
    import mode

    from tickcast.streams.app import _rest

    async def scenario() -> tuple[bool, list[str], int]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        queue.put_nowait("old")
        log: list[str] = []
        suspend_flow = asyncio.Event()
        delivery, blocker = _start_blocked_put(queue, log)
        rest, suspended = _rest(delivery, blocker), suspend_flow.wait()
        waiting = asyncio.ensure_future(mode.Service().wait_first(rest, suspended))
        await asyncio.sleep(0.01)
        suspend_flow.set()  # a rebalance starts
        results = await asyncio.wait_for(waiting, 1.0)
        await asyncio.sleep(0)  # let the cancelled delivery run its handler
        return results.done == [suspended], log, queue.qsize()

    suspend_won, log, queued = asyncio.run(scenario())
    assert suspend_won
    assert log == ["cancelled"]  # the delivery saw the cancellation, as under a Task
    assert queued == 1  # only the old item: the blocked one was never put


def test_the_worker_transport_uses_the_consumer_with_inline_delivery() -> None:
    from tickcast.streams.app import DeliverWithoutTasks

    service = build_app(Settings.from_env({}))
    assert service.app.transport.Consumer is DeliverWithoutTasks
