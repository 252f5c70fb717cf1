"""faust_internals.batches: what a batch holds, when it is cut, and what happens to stale events."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import pytest
from faust.types.tuples import ConsumerMessage

from tickcast.streams.faust_internals import batches, queued

_offsets = itertools.count()


def with_app(test: Callable[[faust.App], Awaitable[None]]) -> Callable[[], None]:
    """Run ``test`` in a fresh event loop with a Faust app that never connects."""

    @functools.wraps(test)
    def run() -> None:
        async def scenario() -> None:
            app = faust.App("test-batching", broker="kafka://127.0.0.1:1",
                            web_enabled=False, autodiscover=False, env={})
            app.flow_control.resume()  # as on partition assignment
            await test(app)

        asyncio.run(scenario())

    del run.__wrapped__  # pytest would otherwise look for an ``app`` fixture
    return run


def _stream(app: faust.App) -> Any:
    topic = app.topic("batching-in", key_serializer="raw", value_serializer="raw")
    app.topics.acking_topics.add("batching-in")
    return app.stream(topic.clone(is_iterator=True))


def _event(app: faust.App, value: bytes, *, generation: int | None = None) -> faust.Event:
    message = ConsumerMessage("batching-in", 0, next(_offsets), 0.0, 0, {}, None, value, None,
                      generation_id=app.consumer_generation_id if generation is None
                      else generation)
    message.incref()  # as the conductor does for the one stream it delivers to
    return faust.Event(app, None, value, {}, message)


async def _put(stream: Any, *events: faust.Event) -> None:
    for event in events:  # as the conductor delivers (not blocked by flow control here)
        stream.channel.queue.put_nowait(event)


async def _next(it: Any, timeout: float = 5.0) -> list[Any]:
    return await asyncio.wait_for(it.__anext__(), timeout)


@with_app
async def test_takes_everything_queued_up_to_size_in_order(app: faust.App) -> None:
    stream = _stream(app)
    events = [_event(app, b"%d" % i) for i in range(7)]
    await _put(stream, *events)
    it = batches(stream, size=5, within=10.0)  # within never applies: events are queued
    assert [e.value for e in await _next(it, 1.0)] == [b"0", b"1", b"2", b"3", b"4"]
    assert [e.value for e in await _next(it, 1.0)] == [b"5", b"6"]
    await it.aclose()


async def _first_batch(app: faust.App, *, within: float) -> list[bytes]:
    """Event "a" arrives at an idle agent, "b" 0.1 s later: what is the first batch?"""
    stream = _stream(app)
    it = batches(stream, size=10, within=within)
    pending = asyncio.ensure_future(_next(it))
    await asyncio.sleep(0.05)
    await _put(stream, _event(app, b"a"))
    await asyncio.sleep(0.1)
    await _put(stream, _event(app, b"b"))
    values = [e.value for e in await pending]
    await it.aclose()
    return values


@with_app
async def test_an_event_finding_the_queue_empty_waits_within_for_company(app: faust.App) -> None:
    assert await _first_batch(app, within=0.5) == [b"a", b"b"]  # b is well inside 0.5 s


@with_app
async def test_within_zero_yields_the_first_event_alone(app: faust.App) -> None:
    assert await _first_batch(app, within=0.0) == [b"a"]


@with_app
async def test_events_are_tracked_but_left_unacknowledged(app: faust.App) -> None:
    stream = _stream(app)
    event = _event(app, b"x")
    await _put(stream, event)
    it = batches(stream, size=10, within=0.0)
    assert await _next(it) == [event]
    assert event.message.tracked
    assert event.message in app.consumer.unacked
    assert not event.message.acked  # the agent acks after delivery
    await it.aclose()


@with_app
async def test_events_from_an_earlier_generation_are_skipped_and_acknowledged(
        app: faust.App) -> None:
    stream = _stream(app)
    stale = _event(app, b"stale", generation=app.consumer_generation_id - 1)
    fresh = _event(app, b"fresh")
    await _put(stream, stale, fresh)
    it = batches(stream, size=10, within=0.0)
    assert await _next(it) == [fresh]
    assert stale.message.refcount == 0  # released, as Faust's own iterator does
    assert stale.message not in app.consumer.unacked
    await it.aclose()


@with_app
async def test_while_flow_control_is_suspended_events_are_skipped(app: faust.App) -> None:
    stream = _stream(app)
    skipped, kept = _event(app, b"during"), _event(app, b"after")
    app.flow_control.suspend()
    await _put(stream, skipped)
    it = batches(stream, size=10, within=0.0)
    pending = asyncio.ensure_future(_next(it))
    await asyncio.sleep(0.05)
    assert not pending.done()  # nothing to yield: the only event was skipped
    app.flow_control.resume()
    await _put(stream, kept)
    assert await pending == [kept]
    assert skipped.message.refcount == 0
    await it.aclose()


@with_app
async def test_a_stopping_stream_ends_the_batches_without_tracking_taken_events(
        app: faust.App) -> None:
    stream = _stream(app)
    event = _event(app, b"late")
    it = batches(stream, size=10, within=0.2)
    pending = asyncio.ensure_future(_next(it))
    await asyncio.sleep(0.05)
    await _put(stream, event)
    await asyncio.sleep(0.05)  # the event waits for company ...
    await stream.channel.throw(StopAsyncIteration())  # ... when Faust stops the stream
    with pytest.raises(StopAsyncIteration):
        await pending
    assert not event.message.tracked  # redelivered after restart; shutdown won't wait for it


@with_app
async def test_size_must_be_positive(app: faust.App) -> None:
    with pytest.raises(ValueError, match="size must be >= 1"):
        await _next(batches(_stream(app), size=0, within=0.0))


@with_app
async def test_queued_says_whether_the_next_batch_is_already_waiting(app: faust.App) -> None:
    """``queued`` reads the same queue ``batches`` takes from (Faust's stream channel)."""
    stream = _stream(app)
    it = batches(stream, size=2, within=0.0).__aiter__()
    assert not queued(stream)
    await _put(stream, *[_event(app, b"x") for _ in range(3)])
    assert queued(stream)
    assert len(await _next(it)) == 2
    assert queued(stream)  # one event left
    assert len(await _next(it)) == 1
    assert not queued(stream)
