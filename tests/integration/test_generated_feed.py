"""`tickcast produce texts --generated` against the real broker and a real worker: generated
texts arrive as valid, unlabelled events, are scored, and none is dead-lettered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import consume
from tickcast.cli import main
from tickcast.models.registry import ModelStore
from tickcast.streams.events import decode_text
from tickcast.training.textgen import TextGenResult

pytestmark = pytest.mark.integration


def test_generated_texts_are_scored_unlabelled_and_never_dead_lettered(
        tiny_textgen: TextGenResult, start_worker, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    worker = start_worker()
    store = ModelStore(tmp_path / "textgen-models")
    manifest = tiny_textgen.manifest
    shutil.copytree(tiny_textgen.path, store.path(manifest.name, manifest.version))
    store.promote(manifest.name, manifest.version)
    for var, value in {"TICKCAST_KAFKA_BOOTSTRAP": worker.bootstrap,
                       "TICKCAST_TOPIC_PREFIX": worker.prefix,
                       "TICKCAST_TOPIC_PARTITIONS": "4",
                       "TICKCAST_MODEL_DIR": str(store.root),
                       "TICKCAST_STATE_DIR": str(tmp_path / "state")}.items():
        monkeypatch.setenv(var, value)

    assert main(["produce", "texts", "--generated", "--limit", "30", "--rate", "100",
                 "--prompt", "Gold prices", "--prompt", "Oil", "--seed", "3",
                 "--no-progress"]) == 0
    assert f"sent 30 to {worker.prefix}texts" in capsys.readouterr().out

    texts = consume(worker.bootstrap, f"{worker.prefix}texts", expected=31, timeout=10)
    assert len(texts) == 30
    events = [decode_text(value, max_bytes=65536) for _, value in texts]
    assert all(e.id.startswith("gen-") and e.label is None for e in events)
    assert all(e.text.startswith(("Gold prices", "Oil")) for e in events)
    assert all(key == e.id.encode() for (key, _), e in zip(texts, events, strict=True))

    scored = consume(worker.bootstrap, f"{worker.prefix}sentiment", expected=30)
    by_id = {json.loads(value)["id"]: json.loads(value) for _, value in scored}
    assert set(by_id) == {e.id for e in events}
    assert all("label" not in record for record in by_id.values())
    assert consume(worker.bootstrap, f"{worker.prefix}dead-letters", expected=1,
                   timeout=3) == []
