"""Everything tickcast does beneath Faust's public API, in one module.

tickcast runs on faust-streaming 0.15 and mode-streaming 0.7. Where their public API does not
reach, this module subclasses, copies or reads their internals; no other module touches a
private Faust or mode name. ``tests/streams/test_faust_internals.py`` fingerprints the source of
every upstream function listed below and checks every private attribute with ``hasattr``, so an
upgrade fails loudly and names what to re-verify.

Upstream code overridden (o) or copied (c) here:

- ``mode.utils.queues.FlowControlEvent.resume`` (o, :class:`KeepFetchedOnResume`): it clears
  every stream queue even when flow was never suspended; at the end of table recovery that
  threw away events fetched after the seek to the committed offsets, and their partition's
  commits stalled (https://github.com/faust-streaming/faust/issues/596).
- ``faust.transport.consumer.Consumer.perform_seek`` (o, :class:`SeekWithFlowStopped`): a
  fetch interleaved with the seek was judged against a stale read offset, dropped as already
  read, and the jump booked as a compacted-topic gap and committed over.
- ``faust.transport.consumer.Consumer._drain_messages`` (c, :class:`DeliverWithoutTasks`):
  the fetch loop, with a delivery's first step run inline instead of under ``wait_first``,
  and its every-``broker_commit_every`` commit started in the background instead of awaited.
- ``faust.transport.consumer.Consumer.getmany`` (c, :class:`DeliverWithoutTasks`): records
  it took from aiokafka and then did not yield (flow stopped while it waited or part-way
  through a batch, a new generation, a partition paused in between) were lost to aiokafka's
  position unless a committed offset brought them back; on a takeover a changelog (no commit)
  then hung table recovery, and a dead worker's uncommitted partitions resumed past their
  backlog. The copy seeks each such partition back to its first record not yielded, unless it
  was sought elsewhere in the meantime. Positions are read from aiokafka's
  ``Assignment.state_value`` (:func:`aiokafka_positions`).
- ``faust.transport.consumer.Consumer.commit`` (o, :class:`DeliverWithoutTasks`): timed, for
  ``tickcast_commit_duration_seconds``.
- ``faust.transport.drivers.aiokafka.Consumer._new_consumer_thread`` and
  ``AIOKafkaConsumerThread._create_worker_consumer`` (o, :class:`ShortFetchWait`): Faust
  hard-codes ``fetch_max_wait_ms=1500``; the worker's consumer gets the app's
  ``fetch_max_wait_ms`` instead, set on aiokafka's ``AIOKafkaConsumer._fetch_max_wait_ms``
  before ``AIOKafkaConsumer.start`` hands it to the fetcher. (Why it matters:
  ``Fetcher._get_actions_per_node`` keeps one fetch in flight per broker.)
- ``faust.App._on_agent_error`` (o, :class:`TickcastApp`): calls ``on_agent_crash`` after
  Faust's own handling, so the worker can exit instead of restarting the agent in place.
- ``faust.App.flow_control`` and ``faust.App._new_transport`` (o, :class:`TickcastApp`):
  install the two classes above; the consumer class is chosen through
  ``Transport.create_consumer``, which builds ``self.Consumer``.
- ``faust.streams.Stream._py_aiter`` (c, :func:`batches`): its per-event steps (skip events of
  an old generation or while flow is suspended, track the rest as unacknowledged), applied to
  events taken straight from the stream's queue.

Private attributes read or written:

- ``Consumer._read_offset``, ``_commit_every``, ``_n_acked``, ``_add_gap``, ``_stopped`` and the
  fetcher's ``_stopped``: by the copied fetch loop, exactly as upstream uses them.
- ``Consumer._committed_offset`` (:func:`committed_offsets`): the offsets Faust committed, for
  the consumer-lag gauge; Faust has no public accessor.
- ``faust.transport.drivers.aiokafka.Producer._ensure_producer`` (:func:`aiokafka_producer`):
  the ``AIOKafkaProducer`` under Faust's producer, to send a batch per partition.
- ``Table.data`` (``faust.tables.base.Collection.data``) and the changelog's record format
  (:class:`ChangelogTable`): per-symbol state
  is set in the store and logged in the same produce call as the batch's outputs, not through
  ``table[key] = value`` (whose partition comes from Faust's "current event").
- ``faust.stores.rocksdb.Store._dbs``, ``Store.offset_key`` and ``rocksdict.WriteBatch``
  (``_dbs`` holds exactly the partitions held: ``rocksdb.Store.revoke_partitions`` pops them;
  ``rocksdb.Store.persisted_offset`` reads the offset back)
  (:class:`ChangelogTable` with ``TICKCAST_STATE_STORE=rocksdb``): the open database of a
  partition, read and written with the changelog's bytes as
  ``rocksdb.Store.apply_changelog_batch`` writes them in recovery, with the offset recovery
  starts from next time written as ``rocksdb.Store.set_persisted_offset`` writes it.
- ``faust.stores.memory.Store._key_partition`` (:class:`ChangelogTable`, memory): the
  partition of each key, by which ``memory.Store.on_recovery_completed`` drops the keys of
  partitions no longer held.
"""

from __future__ import annotations

import asyncio
import functools
import time
import types
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any

import faust
import orjson
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from tickcast.streams.events import finite
from tickcast.streams.messages import Record

__all__ = ["FETCH_MAX_WAIT_MS", "ChangelogTable", "DeliverWithoutTasks", "KeepFetchedOnResume",
           "SeekWithFlowStopped", "ShortFetchWait", "TickcastApp", "aiokafka_producer",
           "batches", "committed_offsets", "queued", "state_table"]


# -- the app and its consumer -----------------------------------------------------------------
class KeepFetchedOnResume(FlowControlEvent):
    """Flow control that clears the stream queues only when flow really resumes.

    Faust's recovery ends with: resume the stream partitions, seek them to their committed
    offsets, then ``flow_control.resume()``, which clears every stream queue even when flow
    was never suspended. The fetcher keeps running during the seek, so events fetched after
    it (their read offsets already recorded) would be thrown away and never fetched again.
    When flow was suspended, the queues were cleared at the suspend and a clear on resume is
    harmless; when it was not, everything queued was fetched after the seek and is kept.
    """

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()


class SeekWithFlowStopped(faust_aiokafka.Consumer):
    """Faust's consumer, with fetching stopped while it seeks to the committed offsets (and
    its consumer thread a :class:`ShortFetchWait`).

    Faust seeks on the consumer thread and records the new read offsets on the event loop
    afterwards; if flow is active (it is at the end of table recovery), the fetcher runs in
    between. Records fetched from the new position are then judged against a stale read
    offset, dropped as already read, and the jump to the next record is booked as a "gap"
    (meant for compacted topics) and committed over. With flow stopped no fetch interleaves
    with the seek.
    """

    def _new_consumer_thread(self) -> ShortFetchWait:
        return ShortFetchWait(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        flowing = self.flow_active
        if flowing:
            self.stop_flow()
        try:
            await super().perform_seek()
        finally:
            if flowing:
                self.resume_flow()


class ShortFetchWait(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer waits at most the app's
    ``fetch_max_wait_ms`` for a fetch to fill, not Faust's hard-coded 1,500 ms.

    aiokafka keeps one fetch request in flight per broker, and leaves out of it every partition
    whose records are still buffered. A request sent while the busy partitions' records await
    the stream holds only quiet ones (labels, model updates, an idle topic); the broker keeps
    it until ``fetch_max_wait_ms``, and no new record of the busy partitions is fetched until
    it returns: a stall of up to that long, with nothing wrong anywhere.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = int(getattr(self.app, "fetch_max_wait_ms",
                                                  FETCH_MAX_WAIT_MS))
        return consumer


FETCH_MAX_WAIT_MS = 100
"""Default of :attr:`TickcastApp.fetch_max_wait_ms`."""


@types.coroutine
def _resume(coro: Any, blocker: Any) -> Generator[Any, None, Any]:
    """Run the rest of ``coro``, whose first step already yielded ``blocker``, under the
    task awaiting this: every later step, cancellation included, is passed through as
    ``yield from`` would."""
    while True:
        try:
            yield blocker
        except BaseException as exc:  # noqa: BLE001 - thrown in by the task: forward it
            try:
                blocker = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                blocker = coro.send(None)
            except StopIteration as stop:
                return stop.value


async def resume_delivery(coro: Any, blocker: Any) -> Any:
    """The rest of a delivery whose first step blocked on ``blocker``, as a native
    coroutine (what ``wait_first`` accepts)."""
    return await _resume(coro, blocker)


class DeliverWithoutTasks(SeekWithFlowStopped):
    """Faust's consumer, delivering a fetched message inline when nothing blocks it.

    Faust's fetch loop hands every message to the streams with ``wait_first(deliver(msg),
    suspend_flow.wait())``, so a rebalance can abandon a delivery that is blocked (a full
    stream queue, flow control suspended): four tasks (mode adds "stopped" and "crashed")
    and an ``asyncio.wait`` per message. Delivery almost never blocks; here its first step
    runs inline, and only a delivery that does block continues under ``wait_first`` as
    before. The loop also commits every ``broker_commit_every`` acks; upstream awaits that
    commit (a producer flush and a round trip to the group coordinator) before delivering
    anything else, here it runs in the background (:meth:`commit_soon`). ``_drain_messages``
    is Faust 0.15's, with those two changes.
    """

    _background_commit: asyncio.Future[bool] | None = None

    def commit_soon(self) -> None:
        """Start a commit in the background unless one started this way still runs.

        Faust's fetch loop awaits this commit (every ``broker_commit_every`` acks) before it
        delivers the next fetched message: the producer flush and the commit round trip
        then delay every event behind it.
        """
        task = self._background_commit
        if task is None or task.done():
            task = self._background_commit = asyncio.ensure_future(self.commit())
            task.add_done_callback(self._commit_done)

    def _commit_done(self, task: asyncio.Future[bool]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.log.error("background commit failed: %r", task.exception())

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        """Faust's commit, timed: the app's ``on_commit`` hook gets its wall time."""
        started = time.perf_counter()
        try:
            return await super().commit(topics, start_new_transaction=start_new_transaction)
        finally:
            observe = getattr(self.app, "on_commit", None)
            if observe is not None:
                observe(time.perf_counter() - started)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        """Faust's ``Consumer.getmany``, except that records it takes from aiokafka and then
        does not yield are fetched again.

        Upstream yields nothing when flow was stopped while it waited for records (it seeks
        to the committed offsets instead), stops part-way through a batch when flow stops or
        the generation changes, and skips partitions paused in between; aiokafka has already
        moved their positions past those records. The seek brings back a partition with a
        commit, but not one without: a changelog, or a stream partition whose previous owner
        died before its first commit. On a takeover the wait spans the rebalance, and the
        getmany started before it takes the new partitions' records while flow is still
        stopped: table recovery then waited forever for a changelog, or the dead worker's
        partitions resumed past everything it had not processed. Here each such partition
        goes back to its first record not yielded, unless something else moved it in the
        meantime (then that seek wins)."""
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        positions = aiokafka_positions(self, records)
        if not self.flow_active:
            self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
            try:
                await self.perform_seek()
            except Exception as exc:  # noqa: BLE001 - upstream logs and carries on
                self.log.warning(f"exception performing seek when flow not active {exc}")
            # The seek moved stream partitions back to their commits; a partition without a
            # commit (a changelog under recovery) stays past the records taken: fetch them.
            await self._fetch_again({tp: recs[0].offset for tp, recs in records.items() if recs},
                                    positions, records)
            return
        buffered = self._buffered_partitions
        to_message = self._to_message
        undelivered: dict[TP, int] = {}
        for tp, record in self.scheduler.iterate(records):
            if (tp in undelivered or not self.flow_active
                    or self.app.consumer_generation_id != generation_id
                    or not (active_partitions is None or tp in active_partitions
                            or tp in buffered)):
                undelivered.setdefault(tp, record.offset)
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            yield tp, to_message(tp, record)
        if undelivered:
            await self._fetch_again(undelivered, positions, records)

    async def _fetch_again(self, undelivered: dict[TP, int], positions: dict[TP, int | None],
                           records: Any) -> None:
        # A partition no longer assigned has no position: it is left alone.
        now = aiokafka_positions(self, undelivered)
        again = {tp: offset for tp, offset in undelivered.items()
                 if now[tp] is not None and now[tp] == positions[tp]}
        if again:
            self.log.info("fetching again %d record(s) taken from the consumer but not "
                          "delivered (flow stopped, new generation or partition paused), "
                          "from offsets %s",
                          sum(1 for tp, offset in again.items()
                              for r in records[tp] if r.offset >= offset), again)
            for tp, offset in again.items():
                await self.seek(tp, offset)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's loop
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                self.commit_soon()
                            delivery = callback(message)
                            try:
                                blocker = delivery.send(None)
                            except StopIteration:
                                pass  # delivered without blocking: the usual case
                            else:
                                await self.wait_first(resume_delivery(delivery, blocker),
                                                      self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class TickcastTransport(faust_aiokafka.Transport):
    Consumer = DeliverWithoutTasks


class TickcastApp(faust.App):
    """:class:`faust.App` with :class:`KeepFetchedOnResume` as its flow control and
    :class:`DeliverWithoutTasks` (a :class:`SeekWithFlowStopped`) as its consumer.

    ``on_agent_crash``, when set, is called after Faust's own handling of an exception that
    escaped an agent (which commits what was acknowledged). Faust then restarts the agent in
    place, but the batch it was holding is neither acknowledged nor fetched again: its
    offsets hold that partition's commits, and the worker's shutdown waits for them forever.
    The worker sets a handler that exits instead (see :mod:`tickcast.streams.worker`).
    """

    on_agent_crash: Callable[[Any, BaseException], None] | None = None
    on_commit: Callable[[float], None] | None = None
    """Called with the wall time of every offset commit (seconds)."""
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS
    """How long the broker may hold a fetch that has no data yet (see
    :class:`ShortFetchWait`)."""

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        await super()._on_agent_error(agent, exc)
        if self.on_agent_crash is not None:
            self.on_agent_crash(agent, exc)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return KeepFetchedOnResume(loop=self.loop)

    def _new_transport(self) -> TickcastTransport:
        return TickcastTransport(self.conf.broker_consumer, self)


# -- batches ----------------------------------------------------------------------------------
async def batches(stream: faust.StreamT, *, size: int, within: float
                  ) -> AsyncIterator[list[EventT]]:
    """Yield lists of at most ``size`` events, taken from ``stream``'s queue as soon as the
    agent asks for them.

    A batch is everything queued when the agent asks, up to ``size``; only an event that
    finds the queue empty waits ``within`` seconds for others to join it. Under load the agent
    never idles while events wait, and batches grow with the backlog. (Faust's
    ``noack_take`` waits its whole ``within`` after every batch and holds its buffer while a
    batch is processed.)

    Per event it does what Faust's stream iterator does before handing an event over: events
    of an old consumer generation (fetched before a rebalance) or arriving while flow control
    is suspended are skipped and acknowledged, and the others are tracked as unacknowledged,
    so Faust's commit and graceful-shutdown logic see them. Acknowledging is the caller's
    job (``Stream.ack``), as with ``noack_take``.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    app: Any = stream.app
    queue = stream.channel.queue
    consumer = app.consumer
    flow_control = app.flow_control
    acking_topics = app.topics.acking_topics
    track = consumer.track_message
    while not stream.should_stop:
        values: list[Any] = []
        try:
            if queue.empty():
                values.append(await queue.get())
                if within > 0 and size > 1:
                    await asyncio.sleep(within)  # let the next events join this one
            while len(values) < size and not queue.empty():
                values.append(queue.get_nowait())
        except StopAsyncIteration:
            # Faust ends a stream by throwing this into its channel. Events taken but not
            # yielded stay unacknowledged (and untracked, so shutdown does not wait for
            # them): they are redelivered after the restart.
            return
        events: list[EventT] = []
        generation = app.consumer_generation_id
        active = flow_control.is_active()
        for value in values:
            if not isinstance(value, EventT):
                continue  # only events travel on a topic's channel
            message = value.message
            if not active or message.generation_id != generation:
                # Fetched before a rebalance (or while paused for one): Faust's iterator
                # skips these and acknowledges them; their partitions' new owners
                # consume them from the committed offset.
                await stream.ack(value)
                continue
            if not message.tracked and message.topic in acking_topics:
                message.tracked = True
                track(message)
            events.append(value)
        if events:
            yield events


def queued(stream: faust.StreamT) -> bool:
    """Whether events wait in ``stream``'s queue (what :func:`batches` takes next)."""
    return not stream.channel.queue.empty()


# -- private state read by tickcast -------------------------------------------------------------
def aiokafka_positions(consumer: Any, tps: Any) -> dict[TP, int | None]:
    """aiokafka's fetch position of each of ``tps`` (None when it has none), read from its
    subscription state without a round trip to the consumer thread."""
    aio = consumer._thread._consumer
    subscription = aio._subscription.subscription if aio is not None else None
    assignment = subscription.assignment if subscription is not None else None
    positions: dict[TP, int | None] = {}
    for tp in tps:
        state = assignment.state_value(tp) if assignment is not None else None
        positions[tp] = (state.position if state is not None and state.has_valid_position
                         else None)
    return positions


def committed_offsets(consumer: Any) -> dict[TP, int | None]:
    """The offsets Faust last committed, per partition (a copy)."""
    return dict(consumer._committed_offset)


def aiokafka_producer(app: faust.App) -> Any:
    """The started ``AIOKafkaProducer`` under ``app``'s producer service."""
    return app.producer._ensure_producer()  # type: ignore[attr-defined]


class ChangelogTable:
    """A Faust table whose writes the caller produces itself, in a batch of its own.

    :meth:`write` sets the local store and returns the changelog record, with the key and value
    encoded as Faust's ``json`` codec reads them back in recovery. The caller produces it to the
    partition it chooses (the partition of the input the write belongs to, so recovery follows
    the assignment), in the same produce call as the batch's outputs.

    Two stores (``TICKCAST_STATE_STORE``):

    * ``memory``: Faust's dict, filled by recovery from the whole changelog on every start.
      The table's values are ``raw``: the dict holds each value's JSON bytes, as recovery
      reads them, not decoded lists (see :func:`state_table`). A write sets the dict at once,
      and records the key's partition (``Store._key_partition``) so that the keys of a
      partition taken away are dropped with it.
    * ``rocksdb``: Faust's RocksDB store, one database per partition, kept across restarts.
      Reads and writes go to the database of the partition given, not the one of Faust's
      "current event" (``Store._get``/``_set`` would use the last event taken from the
      stream, which a batch does not follow). The database only ever holds what the changelog
      holds: a batch's writes wait in memory (:meth:`get` reads them) until the batch is
      delivered, then go to each partition's database in one atomic write together with the
      changelog offset they were logged at (:meth:`staged`), where the next start's recovery
      begins. A crash in between leaves the database behind the changelog, never ahead.
    """

    def __init__(self, table: faust.Table) -> None:
        self._table = table
        self.topic: str = table.changelog_topic.get_topic_name()
        self.rocksdb: bool = _is_rocksdb(table.data)
        # RocksDB only: writes not yet delivered. raw key -> (raw value, write number), the
        # latest per key; and the writes of the batch being built, in order.
        self._undelivered: dict[bytes, tuple[bytes | None, int]] = {}
        self._batch: list[tuple[int, bytes, bytes | None, int]] = []
        self._writes = 0

    def get(self, key: str, *, partition: int) -> Any:
        """The value stored under ``key`` (``None`` if none); ``partition``: the changelog
        partition the key is logged to."""
        if not self.rocksdb:
            raw = self._table.data.get(key)
        else:
            raw_key = _json(key)
            pending = self._undelivered.get(raw_key)
            if pending is not None:
                raw = pending[0]
            else:
                db = self._table.data._dbs.get(partition)  # None: a partition not held
                raw = None if db is None else db.get(raw_key)
        return None if raw is None else orjson.loads(raw)

    def write(self, key: str, value: Any, *, partition: int, checked: bool = False) -> Record:
        """Store ``value`` under ``key`` (``None`` deletes it: a tombstone on the changelog).
        A value with NaN or an infinity is refused (JSON has neither) unless ``checked``:
        the caller knows it has none."""
        raw_key = _json(key)
        raw_value = None if value is None else _json(value, check=not checked)
        store = self._table.data
        if self.rocksdb:
            self._writes += 1
            self._undelivered[raw_key] = (raw_value, self._writes)
            self._batch.append((partition, raw_key, raw_value, self._writes))
        elif raw_value is None:
            store.pop(key, None)
            store._key_partition.pop(key, None)
        else:
            # A copy: orjson's bytes keep the capacity it grew them to (8 KiB held for a
            # 1.4 KiB chunk), which a dict holding every symbol's state would keep forever.
            store[key] = bytes(memoryview(raw_value))
            store._key_partition[key] = partition
        return (self.topic, partition, raw_key, raw_value)

    def staged(self) -> Callable[[Sequence[Any]], None] | None:
        """The writes since the last call, as a function to call with the batch's delivery
        results (``RecordMetadata``, in any order) once all of them are delivered, batch after
        batch in order; ``None`` when there is nothing to apply later (the memory store).

        It writes each partition's share in one RocksDB write batch with the partition's
        changelog offset (the first offset of the last of its record batches: a start may
        re-read the rest, the same values again). A partition no longer held is skipped: its
        database is closed and its next owner recovers from the changelog."""
        if not self.rocksdb:
            return None
        writes, self._batch = self._batch, []
        return functools.partial(self._apply, writes)

    def _apply(self, writes: list[tuple[int, bytes, bytes | None, int]],
               results: Sequence[Any]) -> None:
        import rocksdict

        offsets: dict[int, int] = {}
        for metadata in results:
            if metadata is not None and metadata.topic == self.topic:
                offsets[metadata.partition] = max(metadata.offset,
                                                  offsets.get(metadata.partition, -1))
        store = self._table.data
        batches: dict[int, Any] = {}
        for partition, raw_key, raw_value, number in writes:
            if self._undelivered.get(raw_key, (None, 0))[1] == number:
                del self._undelivered[raw_key]  # no later write of the key is waiting
            if partition not in store._dbs:
                continue
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = rocksdict.WriteBatch(raw_mode=True)
            if raw_value is None:
                batch.delete(raw_key)
            else:
                batch.put(raw_key, raw_value)
        for partition, batch in batches.items():
            offset = offsets.get(partition)
            if offset is not None:  # as Store.set_persisted_offset writes it
                batch.put(store.offset_key, str(offset).encode())
            store._dbs[partition].write(batch)


def state_table(app: faust.App, name: str, *, partitions: int, **kwargs: Any) -> ChangelogTable:
    """A :class:`ChangelogTable` of ``str`` keys and JSON values, stored as their bytes."""
    return ChangelogTable(app.Table(
        name, partitions=partitions, key_type=str, value_type=bytes,
        schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="json",
                            value_serializer="raw"),
        **kwargs))


def _is_rocksdb(store: Any) -> bool:
    try:
        from faust.stores.rocksdb import Store
    except ImportError:  # pragma: no cover - rocksdict is a dependency
        return False
    return isinstance(store, Store)


def _json(value: Any, *, check: bool = True) -> bytes:
    # Compact, so a key always encodes to the same bytes and compaction keeps one per key
    # (the same bytes json.dumps with these separators writes for a string key). orjson
    # would write NaN as null: refused, as for output records.
    if check and isinstance(value, dict) and not finite(value):
        raise ValueError(f"state with a non-finite number: {value!r:.300}")
    return orjson.dumps(value)
