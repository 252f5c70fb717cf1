"""`tickcast train ... --publish` against the real broker: exactly one model-updates event."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.integration.conftest import consume
from tickcast.cli import main
from tickcast.models.artifacts import verify_artifact
from tickcast.models.registry import ModelStore

pytestmark = pytest.mark.integration


def test_train_publish_sends_exactly_one_valid_update(
        kafka_bootstrap: str, owned_prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TICKCAST_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("TICKCAST_TOPIC_PREFIX", owned_prefix)
    monkeypatch.setenv("TICKCAST_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("TICKCAST_STATE_DIR", str(tmp_path / "state"))
    assert main(["train", "prices", "--quick", "--quiet", "--publish"]) == 0
    out = capsys.readouterr().out
    assert "now LATEST" in out
    assert "published gold-lstm/" in out

    records = consume(kafka_bootstrap, f"{owned_prefix}model-updates", expected=2, timeout=8)
    assert len(records) == 1
    key, value = records[0]
    event = json.loads(value)
    assert key == b"gold-lstm"
    schema = json.loads((resources.files("tickcast.streams") / "schemas" /
                         "model-updates.schema.json").read_text())
    Draft202012Validator(schema).validate(event)
    store = ModelStore(tmp_path / "models")
    assert event["version"] == store.latest("gold-lstm")
    manifest = verify_artifact(store.resolve(event["uri"]), expected_sha256=event["sha256"])
    assert event["metrics"]["naive_rmse"] == manifest.metrics["naive_rmse"]
