"""A worker's life: declare topics, load models, serve ``/metrics``, run until a signal.

Crash-only: an agent that raises ends the process with :data:`EXIT_AGENT_CRASHED`, and the
restart redelivers the failed batch from the last commit (inputs are acknowledged only after
their outputs and state writes are delivered).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Final

import faust
from prometheus_client import disable_created_metrics

from tickcast.streams.app import Service, build_app
from tickcast.streams.metrics import serve_metrics
from tickcast.streams.monitoring import watch_gc
from tickcast.streams.settings import Settings, writable_dir
from tickcast.streams.topics import ensure_topics, topic_specs

__all__ = ["EXIT_AGENT_CRASHED", "make_worker", "run_worker"]

log = logging.getLogger(__name__)

EXIT_AGENT_CRASHED: Final = 70
"""Exit status of a worker whose agent raised (``EX_SOFTWARE``)."""


def run_worker(settings: Settings) -> None:
    """Declare topics, serve ``/metrics`` and run one worker until SIGINT/SIGTERM."""
    created = ensure_topics(settings.bootstrap_servers, topic_specs(settings),
                            security=settings.kafka_security)
    if created:
        log.info("created topics: %s", ", ".join(created))
    writable_dir(settings.state_dir, "TICKCAST_STATE_DIR")
    disable_created_metrics()  # *_created series double the scrape for no dashboard use
    service = build_app(settings)
    service.app.on_agent_crash = _exit_on_agent_crash
    service.models.load_latest()  # before consuming: the first batch has its models
    watch_gc(service.metrics)
    port = serve_metrics(service.metrics, addr=settings.metrics_addr, port=settings.metrics_port)
    print(f"tickcast worker: metrics on http://{settings.metrics_addr}:{port}/metrics, "
          f"Kafka {settings.kafka_bootstrap} ({settings.kafka_security.describe()})",
          flush=True)
    make_worker(service).execute_from_commandline()


def _exit_on_agent_crash(agent: Any, exc: BaseException) -> None:
    """Exit at once, so a restart redelivers the failed batch from the last commit.

    Nothing delivered is lost: inputs are acknowledged (and committed) only after their
    outputs and state writes are delivered, and Faust has just committed those.
    """
    log.critical("agent %s crashed; exiting with status %d so that a restart redelivers its "
                 "batch from the last commit", getattr(agent, "name", agent), EXIT_AGENT_CRASHED,
                 exc_info=exc)
    logging.shutdown()  # flush the log handlers: os._exit skips interpreter shutdown
    os._exit(EXIT_AGENT_CRASHED)


def make_worker(service: Service) -> faust.Worker:
    """The Faust worker that runs ``service`` (``web_enabled=False`` is honoured by it)."""
    worker = faust.Worker(service.app, loglevel=service.settings.log_level.upper(),
                          quiet=True, redirect_stdouts=False)
    # At WARNING and above Faust's terminal spinner sets the root logger to DEBUG (so it can
    # spin on every record): every debug call on the hot path then builds a LogRecord.
    worker.spinner = None
    return worker
