"""Shared fixtures: the real Kafka broker for the test session, and tiny real models.

If a broker already answers on ``TICKCAST_KAFKA_BOOTSTRAP`` (default ``127.0.0.1:9092``) the
session uses it; otherwise it starts the project's local KRaft broker and stops it at the end.
Tests isolate themselves with a unique topic prefix and consumer group, and delete their topics
afterwards: the session fails if it leaves a topic behind. A test that talks to the broker must
be marked ``integration`` (``make test-unit`` deselects those and needs no broker); collection
fails if one is not.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickcast.training.data import gold_closes, sample_texts
from tickcast.training.prices import DAILY_FROM, PriceConfig, PriceResult, train_prices
from tickcast.training.sentiment import SentimentConfig, SentimentResult, train_sentiment
from tickcast.training.textgen import TextGenConfig, TextGenResult, train_textgen

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items
                if "kafka_bootstrap" in getattr(item, "fixturenames", ())
                and item.get_closest_marker("integration") is None]
    if unmarked:
        raise pytest.UsageError("these tests use the broker but are not marked integration "
                                "(add pytestmark = pytest.mark.integration to their module): "
                                + ", ".join(unmarked))


def _topics(bootstrap: str) -> set[str]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tickcast-tests")
    try:
        return {t for t in admin.list_topics() if not t.startswith("__")}
    finally:
        admin.close()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    from tickcast.localkafka import LocalKafka
    from tickcast.settings import ToolSettings
    from tickcast.streams.settings import Settings

    broker = LocalKafka.from_settings(ToolSettings.from_env(), state_dir=REPO / ".tickcast")
    bootstrap = Settings.from_env().kafka_bootstrap
    started = broker.up_for(bootstrap, wait=120)  # False: someone else runs (and stops) it
    before = _topics(bootstrap)
    try:
        yield bootstrap
        deadline = time.monotonic() + 15  # deletions take a moment to show in metadata
        while (left := _topics(bootstrap) - before) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"tests left {len(left)} topics on the broker: {sorted(left)[:20]}"
    finally:
        if started:
            broker.down()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}-"


# Tiny real models, trained once per session (seconds), saved through the real writer.
@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_forecaster(model_store: Path) -> PriceResult:
    gold = gold_closes()
    gold = gold[gold["date"] >= DAILY_FROM].tail(1200).reset_index(drop=True)
    config = PriceConfig(window=10, units=(8,), epochs=2, patience=1)
    return train_prices(gold, store_dir=model_store, config=config, progress=False)


@pytest.fixture(scope="session")
def tiny_sentiment(model_store: Path) -> SentimentResult:
    config = SentimentConfig(max_tokens=2000, max_len=24, embed_dim=8, units=4, epochs=2,
                             patience=1)
    return train_sentiment(sample_texts(), store_dir=model_store, config=config,
                           progress=False)


@pytest.fixture(scope="session")
def tiny_textgen(model_store: Path) -> TextGenResult:
    config = TextGenConfig(embed_dim=8, units=(16,), seq_len=32, epochs=1, min_char_count=2,
                           speed_length=20, speed_batch=2)
    return train_textgen(list(sample_texts()["text"]), store_dir=model_store, config=config,
                         source="sentiment_sample.csv", progress=False)


@pytest.fixture
def store(tmp_path: Path, tiny_forecaster: PriceResult,
          tiny_sentiment: SentimentResult):
    """A model store of this test's own, with the tiny models copied in and LATEST."""
    import shutil

    from tickcast.models.registry import ModelStore

    store = ModelStore(tmp_path / "models")
    for result in (tiny_forecaster, tiny_sentiment):
        shutil.copytree(result.path, store.path(result.manifest.name, result.manifest.version))
        store.promote(result.manifest.name, result.manifest.version)
    return store
