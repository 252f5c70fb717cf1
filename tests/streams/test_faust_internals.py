"""Everything beneath Faust's public API: the patches' behaviour, and fingerprints of the
upstream code they override or copy, so an upgrade of faust-streaming or mode-streaming fails
here, naming what to re-verify, instead of silently changing how tickcast commits or delivers.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import types
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from tickcast.streams import faust_internals
from tickcast.streams.app import build_app
from tickcast.streams.faust_internals import (
    ChangelogTable,
    DeliverWithoutTasks,
    KeepFetchedOnResume,
    TickcastApp,
)
from tickcast.streams.settings import Settings

# Upstream functions overridden or copied in tickcast.streams.faust_internals, with the first
# 16 hex digits of the sha256 of their source as installed (faust-streaming 0.15.3,
# mode-streaming 0.7.1), and what to re-verify when one changes.
UPSTREAM: dict[str, tuple[str, str]] = {
    "mode.utils.queues.FlowControlEvent.resume": (
        "4dcdc1253fd0dcb4", "KeepFetchedOnResume: does resume() still clear the queues when "
        "flow was never suspended? If not, the subclass may go."),
    "faust.transport.consumer.Consumer.perform_seek": (
        "0e8c130ff4b0afd8", "SeekWithFlowStopped: does the seek still record read offsets on "
        "the loop after seeking on the consumer thread?"),
    "faust.transport.consumer.Consumer._drain_messages": (
        "44a2500309e83c63", "DeliverWithoutTasks._drain_messages is a copy of it: port the "
        "upstream change into the copy, keeping the inline first delivery step."),
    "faust.transport.consumer.Consumer.getmany": (
        "4b168d84882a70d6", "DeliverWithoutTasks.getmany is a copy of it that fetches again "
        "what it takes and does not yield: port the upstream change into the copy."),
    "aiokafka.consumer.subscription_state.Assignment.state_value": (
        "183fea82ef48f3e6", "aiokafka_positions(): still the partition's state, with "
        "position and has_valid_position?"),
    "faust.transport.consumer.Consumer.commit": (
        "a354437baaa08bf8", "DeliverWithoutTasks.commit (timed) and commit_soon (the fetch "
        "loop's commit, in the background): does commit() still serialise concurrent calls "
        "(maybe_wait_for_commit_to_finish) and flush the producer first?"),
    "faust.transport.drivers.aiokafka.Consumer._new_consumer_thread": (
        "0870ec53dea75083", "SeekWithFlowStopped._new_consumer_thread: does Faust still build "
        "its consumer thread here (ShortFetchWait replaces it)?"),
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer": (
        "c2701bfc3e6f6cad", "ShortFetchWait: does Faust still hard-code fetch_max_wait_ms, "
        "and return the AIOKafkaConsumer before it is started?"),
    "aiokafka.consumer.consumer.AIOKafkaConsumer.start": (
        "2f1ba70443327538", "ShortFetchWait sets _fetch_max_wait_ms before start(): does "
        "start() still hand it to the Fetcher?"),
    "aiokafka.consumer.fetcher.Fetcher._get_actions_per_node": (
        "1dab2cf937d165d0", "ShortFetchWait's reason: does the fetcher still keep one request "
        "in flight per node and leave buffered partitions out of it? If not, Faust's 1.5 s "
        "fetch wait may be harmless."),
    "faust.app.base.App._on_agent_error": (
        "bdd12f286de64429", "TickcastApp._on_agent_error: does Faust still commit what was "
        "acknowledged and restart the agent in place?"),
    "faust.app.base.App.flow_control": (
        "f664abbe76e25985", "TickcastApp.flow_control: still a cached FlowControlEvent?"),
    "faust.app.base.App._new_transport": (
        "42db531312dd776f", "TickcastApp._new_transport: still how the transport (and so the "
        "consumer class) is chosen?"),
    "faust.transport.base.Transport.create_consumer": (
        "46cc2bf5ab14acfa", "TickcastTransport sets Consumer: does create_consumer still build "
        "self.Consumer?"),
    "faust.streams.Stream._py_aiter": (
        "3a48ee257a65435b", "batches() repeats its per-event steps (skip old generations and "
        "suspended flow, track the message): compare them with the new iterator."),
    "faust.transport.drivers.aiokafka.Producer._ensure_producer": (
        "5592a4bbdf251325", "aiokafka_producer(): does it still return the AIOKafkaProducer?"),
    "faust.tables.base.Collection.data": (
        "ade4a02ddd5582cb", "ChangelogTable: is Table.data still the store recovery fills?"),
    "faust.stores.rocksdb.Store.revoke_partitions": (
        "3f85447a24fc34ff", "ChangelogTable (rocksdb): does a revoked partition still leave "
        "Store._dbs, so that _dbs holds exactly the partitions held?"),
    "faust.stores.rocksdb.Store.persisted_offset": (
        "6f2e502fb86043a1", "ChangelogTable (rocksdb): is the offset still read from "
        "Store.offset_key as a decimal string?"),
    "faust.stores.memory.Store.on_recovery_completed": (
        "a00bef343e139602", "ChangelogTable (memory): are keys still dropped by the partition "
        "in Store._key_partition?"),
    "faust.stores.rocksdb.Store.apply_changelog_batch": (
        "ea3344d369fc4ab5", "ChangelogTable (rocksdb): does recovery still store the "
        "changelog's raw key and value bytes, so the worker's own writes match them?"),
    "faust.stores.rocksdb.Store.set_persisted_offset": (
        "b4c811926678346e", "ChangelogTable.delivered: is this still where recovery starts?"),
}

# Private attributes the copied fetch loop and the lag gauge read on Faust's consumer.
CONSUMER_PRIVATE = ("_read_offset", "_committed_offset", "_commit_every", "_n_acked",
                    "_add_gap", "_stopped")


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = inspect.getattr_static(obj, attr)
        return obj
    raise ImportError(dotted)


def _fingerprint(obj: Any) -> str:
    obj = getattr(obj, "_cached_property__get", obj)  # mode's cached_property keeps fget so
    if isinstance(obj, property):
        obj = obj.fget
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


@pytest.mark.parametrize("dotted", sorted(UPSTREAM))
def test_upstream_code_tickcast_overrides_or_copies_is_unchanged(dotted: str) -> None:
    expected, reverify = UPSTREAM[dotted]
    try:
        obj = _resolve(dotted)
    except (ImportError, AttributeError):
        pytest.fail(f"{dotted} is gone upstream. Re-verify: {reverify}")
    actual = _fingerprint(obj)
    assert actual == expected, (
        f"{dotted} changed upstream (fingerprint {actual}, pinned {expected}). Re-verify: "
        f"{reverify} Then update UPSTREAM in this file.")


def test_every_pinned_name_is_documented_where_it_is_used() -> None:
    doc = faust_internals.__doc__ or ""
    short = {name: ".".join(name.split(".")[-2:]) for name in UPSTREAM}
    undocumented = [name for name, tail in short.items() if tail not in doc]
    assert not undocumented, f"faust_internals' docstring does not list {undocumented}"


def test_private_store_attributes_tickcast_uses_still_exist(tmp_path: Path) -> None:
    rocks, memory = _state_table(tmp_path, "rocksdb"), _state_table(tmp_path, "memory")
    assert isinstance(rocks._table.data._dbs, dict)
    assert isinstance(rocks._table.data.offset_key, bytes)
    assert isinstance(memory._table.data._key_partition, dict)


def test_private_attributes_tickcast_reads_still_exist() -> None:
    from faust.transport.consumer import Fetcher

    app = build_app(Settings()).app
    consumer = app.consumer
    missing = [name for name in CONSUMER_PRIVATE if not hasattr(consumer, name)]
    if not hasattr(Fetcher(app), "_stopped"):
        missing.append("Fetcher._stopped")
    assert not missing, (f"Faust's consumer no longer has {missing}: re-verify the copied "
                         "fetch loop (DeliverWithoutTasks) and committed_offsets()")
    assert faust_internals.committed_offsets(consumer) == {}


def _state_table(tmp_path: Path, store: str) -> ChangelogTable:
    app = TickcastApp(f"test-changelog-{store}", broker="kafka://127.0.0.1:1", web_enabled=False,
                      autodiscover=False, env={}, store=f"{store}://",
                      datadir=str(tmp_path / store))
    return faust_internals.state_table(app, "state", partitions=4)


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_changelog_records_decode_as_faust_recovery_decodes_them(tmp_path: Path,
                                                                 store: str) -> None:
    from faust.serializers import codecs

    table = _state_table(tmp_path, store)
    assert table.rocksdb is (store == "rocksdb")
    value = {"v": 2, "seq": 3, "pending": None, "ts": [1, 2], "price": [1.5, 2.25]}
    topic, partition, key, raw = table.write("XAU", value, partition=3)
    assert (topic, partition) == (f"test-changelog-{store}-state-changelog", 3)
    assert codecs.loads("json", key) == "XAU"
    assert codecs.loads("json", raw) == value
    assert table.get("XAU", partition=3) == value
    assert table.write("XAU", None, partition=3)[3] is None  # a tombstone deletes it
    assert table.get("XAU", partition=3) is None


def _assign(table: ChangelogTable, *partitions: int) -> None:
    """Open the partitions' databases, as Faust does on assignment."""
    for partition in partitions:
        table._table.data._db_for_partition(partition)


def _metadata(topic: str, partition: int, offset: int) -> Any:
    return types.SimpleNamespace(topic=topic, partition=partition, offset=offset)


def test_rocksdb_state_is_read_from_the_partition_given_not_the_current_event(
        tmp_path: Path) -> None:
    table = _state_table(tmp_path, "rocksdb")
    _assign(table, 1, 2)
    table.write("XAU", {"seq": 1}, partition=1)
    table.write("XAG", {"seq": 2}, partition=2)
    apply = table.staged()
    assert apply is not None
    apply([_metadata(table.topic, 1, 0), _metadata(table.topic, 2, 0)])
    assert table.get("XAU", partition=1) == {"seq": 1}
    assert table.get("XAU", partition=2) is None  # each partition has its own database
    assert table.get("XAG", partition=2) == {"seq": 2}


def test_rocksdb_holds_only_delivered_writes_with_their_changelog_offset(
        tmp_path: Path) -> None:
    """A batch's writes reach the database once delivered, in one write with the changelog
    offset recovery starts from: a crash before leaves the database behind the changelog,
    never ahead of it."""
    table = _state_table(tmp_path, "rocksdb")
    _assign(table, 1)
    store = table._table.data
    raw_key = b'"XAU"'
    table.write("XAU", {"seq": 1}, partition=1)
    first = table.staged()
    table.write("XAU", {"seq": 2}, partition=1)
    table.write("XAG", {"seq": 9}, partition=3)  # partition 3 is not held
    second = table.staged()
    assert first is not None
    assert second is not None
    assert store._dbs[1].get(raw_key) is None  # not delivered yet
    assert table.get("XAU", partition=1) == {"seq": 2}  # the latest write, undelivered
    first([_metadata(table.topic, 1, 40), _metadata("outputs", 1, 900)])
    assert store._dbs[1].get(raw_key) == b'{"seq":1}'
    assert store.persisted_offset(TP(table.topic, 1)) == 40  # the changelog's, not outputs'
    assert table.get("XAU", partition=1) == {"seq": 2}  # the later write still waits
    second([_metadata(table.topic, 1, 41), _metadata(table.topic, 3, 7)])
    assert store._dbs[1].get(raw_key) == b'{"seq":2}'
    assert store.persisted_offset(TP(table.topic, 1)) == 41
    assert 3 not in store._dbs  # not reopened: its next owner recovers from the changelog
    assert table.get("XAG", partition=3) is None
    assert not table._undelivered


def test_the_memory_store_drops_the_keys_of_a_partition_taken_away(tmp_path: Path) -> None:
    table = _state_table(tmp_path, "memory")
    table.write("XAU", {"seq": 1}, partition=1)
    table.write("XAG", {"seq": 2}, partition=2)
    assert table.staged() is None  # written at once
    store = table._table.data
    asyncio.run(store.on_recovery_completed({TP(table.topic, 1)}, set()))
    assert table.get("XAU", partition=1) == {"seq": 1}
    assert table.get("XAG", partition=2) is None


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_a_store_holds_what_faust_recovery_writes_from_the_same_records(tmp_path: Path,
                                                                        store: str) -> None:
    """Recovery (``apply_changelog_batch``) fills a store from the changelog's records; the
    worker's own writes must leave the same values, or a restart would read other ones."""
    from faust.serializers import codecs

    ours = _state_table(tmp_path / "a", store)
    if store == "rocksdb":
        _assign(ours, 0, 2)
    records = [ours.write("XAU", {"seq": 3, "ts": [1, 2, 3]}, partition=0),
               ours.write("XAU#0", {"ts": [1], "price": [2.5]}, partition=0),
               ours.write("XAG", {"seq": 1}, partition=2),
               ours.write("XAU#0", None, partition=0)]
    apply = ours.staged()
    if apply is not None:
        apply([_metadata(ours.topic, 0, 3), _metadata(ours.topic, 2, 0)])
    recovered = _state_table(tmp_path / "b", store)
    table = recovered._table
    changelog = table.changelog_topic
    # the changelog topic's events as its schema decodes them: json keys, raw values
    assert changelog.value_serializer == "raw"
    events = [types.SimpleNamespace(
        key=codecs.loads(changelog.key_serializer, key), value=value,
        message=types.SimpleNamespace(tp=TP(topic, partition), offset=offset,
                                      partition=partition, key=key, value=value))
        for offset, (topic, partition, key, value) in enumerate(records)]
    table.data.apply_changelog_batch(events, to_key=table._to_key, to_value=table._to_value)
    if store == "memory":  # the values kept are the changelog's bytes, not decoded lists
        assert all(isinstance(v, bytes) for v in table.data.values())
    for key, partition in (("XAU", 0), ("XAU#0", 0), ("XAG", 2)):
        assert recovered.get(key, partition=partition) == ours.get(key, partition=partition)
    assert recovered.get("XAU#0", partition=0) is None


# -- KeepFetchedOnResume ---------------------------------------------------------------------
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
    from tickcast.streams.faust_internals import resume_delivery

    async def scenario() -> tuple[str, list[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        queue.put_nowait("old")
        log: list[str] = []
        delivery, blocker = _start_blocked_put(queue, log)
        task = asyncio.ensure_future(resume_delivery(delivery, blocker))
        await asyncio.sleep(0.01)
        assert not task.done()  # still blocked on the full queue
        assert queue.get_nowait() == "old"
        result = await asyncio.wait_for(task, 1.0)
        return result, [*log, queue.get_nowait()]

    assert asyncio.run(scenario()) == ("done", ["delivered", "new"])


def test_suspended_flow_abandons_a_blocked_delivery_as_faust_does() -> None:
    import mode

    from tickcast.streams.faust_internals import resume_delivery

    async def scenario() -> tuple[bool, list[str], int]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        queue.put_nowait("old")
        log: list[str] = []
        suspend_flow = asyncio.Event()
        delivery, blocker = _start_blocked_put(queue, log)
        rest, suspended = resume_delivery(delivery, blocker), suspend_flow.wait()
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


def test_the_worker_app_uses_the_patched_flow_control_and_consumer() -> None:
    service = build_app(Settings.from_env({}))
    assert isinstance(service.app.flow_control, KeepFetchedOnResume)
    assert type(service.app.consumer) is DeliverWithoutTasks


def test_the_fetch_loops_commit_runs_in_the_background_one_at_a_time() -> None:
    """``commit_soon`` (what the copied fetch loop calls every ``broker_commit_every`` acks)
    returns at once; a second call while a commit runs starts nothing, and a failure is
    logged, not raised into the fetch loop."""
    consumer = build_app(Settings.from_env({})).app.consumer
    assert isinstance(consumer, DeliverWithoutTasks)
    calls: list[int] = []

    async def scenario() -> list[int]:
        release = asyncio.Event()

        async def commit(*args: Any, **kwargs: Any) -> bool:
            calls.append(len(calls))
            await release.wait()
            if len(calls) == 2:
                raise RuntimeError("coordinator moved")
            return True

        consumer.commit = commit  # type: ignore[method-assign]
        consumer.commit_soon()
        consumer.commit_soon()  # the first still runs: nothing new
        await asyncio.sleep(0.01)
        seen = [len(calls)]
        release.set()
        await asyncio.sleep(0.01)
        consumer.commit_soon()  # the first ended: a new one starts (and fails)
        await asyncio.sleep(0.01)
        seen.append(len(calls))
        return seen

    assert asyncio.run(scenario()) == [1, 2]


def test_the_workers_consumer_waits_at_most_fetch_max_wait_ms_for_a_fetch() -> None:
    """Faust hard-codes 1,500 ms; with aiokafka's one fetch in flight per broker, a fetch of
    quiet partitions then held every new record of the busy ones back for 1.5 s."""

    async def scenario() -> tuple[str, int]:
        app = build_app(Settings.from_env({"TICKCAST_FETCH_MAX_WAIT_MS": "77"})).app
        thread = app.consumer._thread
        consumer = thread._create_worker_consumer(app.transport)
        try:
            return type(thread).__name__, consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()  # never started: releases its client

    assert asyncio.run(scenario()) == ("ShortFetchWait", 77)


# -- records taken from aiokafka and not yielded are fetched again ---------------------------
class _Record:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class _FakeConsumer:
    """What DeliverWithoutTasks.getmany touches on a consumer, with aiokafka's positions
    at the end of what was just taken (as after aiokafka's getmany)."""

    def __init__(self, records: dict[Any, list[_Record]], *, active: set[Any] | None = None
                 ) -> None:
        from types import SimpleNamespace

        from faust.transport.utils import DefaultSchedulingStrategy

        self.records = records
        self.active = active
        self.flow_active = True
        self.should_stop = False
        self.sought: list[tuple[Any, int]] = []
        self._buffered_partitions: set[Any] = set()
        self.scheduler = DefaultSchedulingStrategy()
        self.app = SimpleNamespace(consumer_generation_id=2,
                                   monitor=SimpleNamespace(track_tp_end_offset=lambda *a: None))
        self.log = SimpleNamespace(info=lambda *a: None, dev=lambda *a: None,
                                   warning=lambda *a: None)
        self.states = {tp: SimpleNamespace(position=recs[-1].offset + 1,
                                           has_valid_position=True)
                       for tp, recs in records.items()}
        assignment = SimpleNamespace(state_value=self.states.get)
        self._thread = SimpleNamespace(_consumer=SimpleNamespace(_subscription=SimpleNamespace(
            subscription=SimpleNamespace(assignment=assignment))))

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        return self.records, self.active

    def highwater(self, tp: Any) -> int:
        return 100

    def _to_message(self, tp: Any, record: _Record) -> tuple[Any, int]:
        return tp, record.offset

    async def seek(self, tp: Any, offset: int) -> None:
        self.sought.append((tp, offset))
        self.states[tp].position = offset

    _fetch_again = DeliverWithoutTasks._fetch_again
    getmany = DeliverWithoutTasks.getmany


def _drain(consumer: _FakeConsumer, on_yield: Any = None) -> list[tuple[Any, int]]:
    async def scenario() -> list[tuple[Any, int]]:
        got = []
        async for _tp, message in consumer.getmany(timeout=1.0):
            got.append(message)
            if on_yield is not None:
                on_yield(consumer, got)
        return got

    return asyncio.run(scenario())


def test_records_taken_when_flow_stops_mid_batch_are_fetched_again() -> None:
    """Upstream drops the rest of the batch when flow stops part-way (a rebalance starts);
    for a changelog partition under recovery they never came back and recovery hung."""
    from faust.types import TP

    a, b = TP("changelog", 0), TP("changelog", 1)
    consumer = _FakeConsumer({a: [_Record(o) for o in range(0, 3)],
                              b: [_Record(o) for o in range(10, 13)]})

    def stop_after_first(c: _FakeConsumer, got: list) -> None:
        if len(got) == 1:
            c.flow_active = False

    got = _drain(consumer, stop_after_first)
    assert len(got) == 1
    first_tp, first_offset = got[0]
    other = b if first_tp == a else a
    start = {a: 0, b: 10}
    assert sorted(consumer.sought) == sorted([(first_tp, first_offset + 1),
                                              (other, start[other])])


def test_records_of_a_new_generation_or_a_paused_partition_are_fetched_again() -> None:
    from faust.types import TP

    a, b = TP("prices", 0), TP("prices", 1)
    consumer = _FakeConsumer({a: [_Record(5), _Record(6)], b: [_Record(7)]}, active={a})
    got = _drain(consumer)
    assert sorted(got) == [(a, 5), (a, 6)]
    assert consumer.sought == [(b, 7)]  # paused in between: back to its first record

    consumer = _FakeConsumer({a: [_Record(5), _Record(6)]})
    def new_generation(c: _FakeConsumer, got: list) -> None:
        c.app.consumer_generation_id = 3
    assert _drain(consumer, new_generation) == [(a, 5)]
    assert consumer.sought == [(a, 6)]


def test_records_taken_while_flow_was_stopped_go_back_unless_a_commit_moved_them() -> None:
    """The takeover race: a getmany started before the rebalance returns the changelog that
    recovery just sought to its start, while flow is still stopped. Upstream seeks to the
    committed offsets and drops the batch; the changelog has no commit, so its records were
    gone and the recovery hung."""
    from faust.types import TP

    changelog, prices = TP("changelog", 2), TP("prices", 2)
    consumer = _FakeConsumer({changelog: [_Record(o) for o in range(0, 20)],
                              prices: [_Record(o) for o in range(300, 310)]})
    consumer.flow_active = False

    async def perform_seek() -> None:  # what seek_to_committed does: committed partitions only
        consumer.states[prices].position = 250
    consumer.perform_seek = perform_seek  # type: ignore[attr-defined]

    assert _drain(consumer) == []
    assert consumer.sought == [(changelog, 0)]
    assert consumer.states[prices].position == 250


def test_a_partition_sought_elsewhere_in_between_is_left_where_it_was_sought() -> None:
    """Recovery (or the seek to committed offsets) moved it while the batch was yielded:
    that seek wins; fetching the old records again would undo it."""
    from faust.types import TP

    a = TP("changelog", 0)
    consumer = _FakeConsumer({a: [_Record(0), _Record(1), _Record(2)]})

    def recovery_seeks(c: _FakeConsumer, got: list) -> None:
        c.states[a].position = 0  # Recovery seeks to the beginning
        c.flow_active = False

    assert _drain(consumer, recovery_seeks) == [(a, 0)]
    assert consumer.sought == []


def test_a_whole_batch_yielded_is_not_fetched_again() -> None:
    from faust.types import TP

    a = TP("prices", 0)
    consumer = _FakeConsumer({a: [_Record(0), _Record(1)]})
    assert _drain(consumer) == [(a, 0), (a, 1)]
    assert consumer.sought == []


def test_the_memory_store_holds_about_its_values_bytes(tmp_path: Path) -> None:
    """Every symbol's state stays in memory: each value must cost about its size, not the
    capacity its encoder allocated (orjson's bytes hold several times their length)."""
    import tracemalloc

    table = _state_table(tmp_path, "memory")
    chunk = {"ts": [1_700_000_000_000 + i for i in range(64)],
             "price": [100.125 + i for i in range(64)]}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        payload = sum(len(table.write(f"S{i}#0", chunk, partition=i % 4)[3] or b"")
                      for i in range(500))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 1.5 * payload, f"{held / 500:.0f} bytes held per {payload / 500:.0f}-byte value"
