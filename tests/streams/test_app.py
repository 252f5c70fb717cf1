"""The worker's wiring and lifecycle: what build_app registers, how the worker logs."""

from __future__ import annotations

import logging

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
