"""Shared fixtures: the real Kafka broker for the test session.

If a broker already answers on ``TICKCAST_KAFKA_BOOTSTRAP`` (default ``127.0.0.1:9092``) the
session uses it; otherwise it starts the project's local KRaft broker and stops it at the end.
Tests isolate themselves with a unique topic prefix and consumer group, never by deleting.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    from tickcast.localkafka import LocalKafka

    broker = LocalKafka.from_env(os.environ, state_dir=REPO / ".tickcast")
    bootstrap = os.environ.get("TICKCAST_KAFKA_BOOTSTRAP", broker.bootstrap)
    if bootstrap != broker.bootstrap:
        yield bootstrap  # an external cluster the caller manages
        return
    started = broker.up(wait=120)
    try:
        yield broker.bootstrap
    finally:
        if started:
            broker.down()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}-"
