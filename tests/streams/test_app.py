"""The worker's wiring and lifecycle: what build_app registers, how the worker logs."""

from __future__ import annotations

import logging
import threading

from tickcast.streams.app import build_app
from tickcast.streams.settings import Settings
from tickcast.streams.worker import make_worker


def test_build_app_wires_each_agent_to_its_prefixed_topics_without_connecting() -> None:
    service = build_app(Settings.from_env({"TICKCAST_TOPIC_PREFIX": "p-"}))
    app = service.app
    topics = {name: set(agent.channel.topics) for name, agent in app.agents.items()}
    assert topics == {"tickcast.prices": {"p-prices"},
                      "tickcast.sentiment": {"p-texts", "p-labels"}}
    assert list(app.tables) == ["price-state"]
    assert service.models.forecaster() is None  # models load when the worker starts


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


def test_a_batch_of_ticks_does_not_wait_behind_a_batch_of_texts() -> None:
    # Each agent infers on a thread of its own and model loads on a third: a texts batch
    # (mostly VADER's Python) that is still running leaves the prices thread free.
    service = build_app(Settings.from_env({}))
    executors = service.executors
    assert set(executors) == {"prices", "texts", "models"}
    assert len({id(e) for e in executors.values()}) == 3
    busy = threading.Event()
    release = threading.Event()

    def texts_batch() -> None:
        busy.set()
        release.wait(timeout=60)

    try:
        held = executors["texts"].submit(texts_batch)
        assert busy.wait(timeout=10)
        assert executors["prices"].submit(lambda: "forecast").result(timeout=10) == "forecast"
        assert executors["models"].submit(lambda: "loaded").result(timeout=10) == "loaded"
        assert not held.done()
    finally:
        release.set()
        for executor in executors.values():
            executor.shutdown(wait=True)
