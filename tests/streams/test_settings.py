"""Settings come from TICKCAST_* once; bad values name the variable, the value, the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickcast.streams.settings import Settings, SettingsError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.auc_window == 500
    assert settings.topic("texts") == "texts"


def test_reads_typed_values_and_ignores_other_variables() -> None:
    settings = Settings.from_env({
        "TICKCAST_KAFKA_BOOTSTRAP": "k1:9092, k2:9093",
        "TICKCAST_AUC_WINDOW": " 42 ",
        "TICKCAST_TOPIC_PREFIX": "dev-",
        "TICKCAST_STATE_DIR": "/var/lib/tickcast",
        "KAFKA_BOOTSTRAP": "ignored:1",
    })
    assert settings.bootstrap_servers == ["k1:9092", "k2:9093"]
    assert settings.auc_window == 42
    assert settings.topic("labels") == "dev-labels"
    assert settings.state_dir == Path("/var/lib/tickcast")


@pytest.mark.parametrize(("var", "value", "words"), [
    ("TICKCAST_AUC_WINDOW", "many", "expected an integer"),
    ("TICKCAST_AUC_WINDOW", "1", ">= 2"),
    ("TICKCAST_METRICS_PORT", "70000", "0..65535"),
    ("TICKCAST_KAFKA_BOOTSTRAP", "localhost", "host:port"),
    ("TICKCAST_KAFKA_BOOTSTRAP", " ", "host:port list"),
    ("TICKCAST_APP_ID", "my app", "letters, digits"),
    ("TICKCAST_LOG_LEVEL", "loud", "debug, info"),
    ("TICKCAST_PRODUCER_LINGER_MS", "-1", "0..1000"),
    ("TICKCAST_STATE_DIR", " ", "directory path"),
    ("TICKCAST_STATE_STORE", "redis", "memory or rocksdb"),
    ("TICKCAST_INFERENCE_THREADS", "0", "1..64"),
])
def test_bad_values_are_explained(var: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({var: value})
    assert var in str(info.value)
    assert words in str(info.value)


def test_every_setting_is_documented() -> None:
    rows = Settings.describe()
    assert all(meaning for _, _, meaning in rows), [r for r in rows if not r[2]]
    assert {var for var, _, _ in rows} >= {"TICKCAST_KAFKA_BOOTSTRAP", "TICKCAST_METRICS_PORT"}
