"""Hot swap rules: verified, newer versions swap in; anything else leaves the old model."""

from __future__ import annotations

import gc
import json
import shutil
import weakref
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tickcast.models.registry import ModelStore
from tickcast.streams import heap
from tickcast.streams.events import ModelUpdate
from tickcast.streams.metrics import Metrics
from tickcast.streams.serving import ModelManager
from tickcast.training.prices import PriceResult
from tickcast.training.publish import update_event
from tickcast.training.sentiment import SentimentResult


def manager(store: ModelStore, *, max_event_bytes: int = 65_536, freeze_heap: bool = False
            ) -> tuple[ModelManager, Metrics]:
    metrics = Metrics()
    return ModelManager(store=store, metrics=metrics, max_event_bytes=max_event_bytes, names={
        "forecaster": "gold-lstm", "sentiment": "sentiment-rnn"},
        freeze_heap=freeze_heap), metrics


def second_version(store: ModelStore, result: PriceResult, version: str,
                   created_at: int) -> ModelUpdate:
    """A copy of ``result`` under a new version (as training would write it)."""
    target = store.path("gold-lstm", version)
    shutil.copytree(result.path, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.update(version=version, created_at=created_at)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return ModelUpdate(**update_event(store.verify("gold-lstm", version)))


def count(metrics: Metrics, outcome: str) -> float:
    return metrics.registry.get_sample_value(
        "tickcast_model_swaps_total", {"model": "lstm", "outcome": outcome}) or 0.0


def test_latest_versions_serve_at_start(store: ModelStore, tiny_forecaster: PriceResult,
                                        tiny_sentiment: SentimentResult) -> None:
    models, metrics = manager(store)
    models.load_latest()
    assert models.forecaster().version == tiny_forecaster.manifest.version  # type: ignore[union-attr]
    assert models.sentiment().version == tiny_sentiment.manifest.version  # type: ignore[union-attr]
    assert metrics.registry.get_sample_value("tickcast_model_info", {
        "model": "lstm", "version": tiny_forecaster.manifest.version}) == 1.0


def test_newer_version_swaps_and_older_is_ignored_unless_rollback(
        store: ModelStore, tiny_forecaster: PriceResult) -> None:
    models, metrics = manager(store)
    models.load_latest()
    old = tiny_forecaster.manifest
    newer = second_version(store, tiny_forecaster, "v-new", old.created_at + 1000)
    assert models.apply(newer) == "swapped"
    assert models.forecaster().version == "v-new"  # type: ignore[union-attr]
    assert metrics.registry.get_sample_value(
        "tickcast_model_info", {"model": "lstm", "version": old.version}) is None
    assert models.apply(newer) == "current"
    back = ModelUpdate(**update_event(old))
    assert models.apply(back) == "stale"
    assert models.forecaster().version == "v-new"  # type: ignore[union-attr]
    assert models.apply(replace(back, rollback=True)) == "swapped"
    assert models.forecaster().version == old.version  # type: ignore[union-attr]
    assert count(metrics, "swapped") == 2
    assert count(metrics, "stale") == 1


@pytest.mark.parametrize("tamper", ["sha256", "file", "uri", "name"])
def test_refused_updates_keep_the_old_model(store: ModelStore, tiny_forecaster: PriceResult,
                                           tamper: str) -> None:
    models, metrics = manager(store)
    models.load_latest()
    serving = models.forecaster()
    update = second_version(store, tiny_forecaster, "v-bad", tiny_forecaster.manifest.created_at
                            + 1000)
    if tamper == "sha256":
        update = replace(update, sha256="0" * 64)
    elif tamper == "file":
        (store.path("gold-lstm", "v-bad") / "model.keras").write_bytes(b"not a model")
    elif tamper == "uri":
        update = replace(update, uri="../../etc/v-bad")
    else:
        update = replace(update, uri="sentiment-rnn/v-bad")
    assert models.apply(update) == "refused"
    assert models.forecaster() is serving
    assert count(metrics, "refused") == 1


def test_malformed_events_and_unknown_models_are_counted(store: ModelStore) -> None:
    models, metrics = manager(store)
    assert models.apply_raw(b"{not json") == "invalid_event"
    assert metrics.registry.get_sample_value("tickcast_model_update_errors_total",
                                             {"reason": "not_json"}) == 1
    event = {"name": "other-model", "version": "v1", "uri": "other-model/v1",
             "sha256": "a" * 64, "metrics": {}, "created_at": 1}
    assert models.apply_raw(json.dumps(event).encode()) == "unknown_model"
    assert models.apply_raw(json.dumps(event).encode()) == "unknown_model"

    def swaps(outcome: str) -> float | None:
        return metrics.registry.get_sample_value(
            "tickcast_model_swaps_total", {"model": "other", "outcome": outcome})

    assert swaps("invalid_event") == 1
    assert swaps("unknown_model") == 2


def test_model_updates_are_limited_by_the_configured_event_size(store: ModelStore) -> None:
    event = json.dumps({"name": "other-model", "version": "v1", "uri": "other-model/v1",
                        "sha256": "a" * 64, "metrics": {"pad": 0.0}, "created_at": 1,
                        "rollback": False}).encode()
    small, _ = manager(store, max_event_bytes=len(event) - 1)
    assert small.apply_raw(event) == "invalid_event"
    roomy, _ = manager(store, max_event_bytes=len(event))
    assert roomy.apply_raw(event) == "unknown_model"


def test_a_missing_latest_leaves_inference_off(tmp_path: Path) -> None:
    models, _ = manager(ModelStore(tmp_path))
    models.load_latest()
    assert models.forecaster() is None
    assert models.sentiment() is None


def challenger_count(metrics: Metrics, outcome: str, model: str = "lstm") -> float:
    return metrics.registry.get_sample_value(
        "tickcast_model_swaps_total", {"model": model, "outcome": outcome}) or 0.0


def test_a_challenger_loads_beside_the_champion_and_clears(
        store: ModelStore, tiny_forecaster: PriceResult) -> None:
    models, metrics = manager(store)
    models.load_latest()
    champion = models.forecaster()
    update = second_version(store, tiny_forecaster, "v-rival", 5)  # older is fine in shadow
    assert models.apply(replace(update, role="challenger")) == "shadowing"
    assert models.forecaster() is champion
    assert models.forecaster_challenger().version == "v-rival"  # type: ignore[union-attr]
    assert metrics.registry.get_sample_value(
        "tickcast_challenger_info", {"model": "lstm", "version": "v-rival"}) == 1.0
    assert models.apply(replace(update, role="challenger")) == "current"
    assert models.apply(replace(update, role="challenger", clear=True)) == "shadow_cleared"
    assert models.forecaster_challenger() is None
    assert metrics.registry.get_sample_value(
        "tickcast_challenger_info", {"model": "lstm", "version": "v-rival"}) is None
    assert models.forecaster() is champion


@pytest.mark.parametrize("problem", ["sha256", "kind", "champion", "missing"])
def test_a_refused_challenger_never_touches_the_champion(
        store: ModelStore, tiny_forecaster: PriceResult, tiny_sentiment: SentimentResult,
        problem: str) -> None:
    models, metrics = manager(store)
    models.load_latest()
    champion, rnn = models.forecaster(), models.sentiment()
    update = replace(second_version(store, tiny_forecaster, "v-rival", 5), role="challenger")
    if problem == "sha256":
        update = replace(update, sha256="0" * 64)
    elif problem == "kind":  # a sentiment artifact offered as the forecaster's challenger
        version = tiny_sentiment.manifest.version
        shutil.copytree(tiny_sentiment.path, store.path("gold-lstm", version))
        update = replace(update, version=version, uri=f"gold-lstm/{version}",
                         sha256=tiny_sentiment.manifest.sha256)
    elif problem == "champion":
        update = replace(ModelUpdate(**update_event(tiny_forecaster.manifest)),
                         role="challenger")
    else:
        update = replace(update, version="v-none", uri="gold-lstm/v-none")
    assert models.apply(update) == "shadow_refused"
    assert models.forecaster() is champion
    assert models.sentiment() is rnn
    assert models.forecaster_challenger() is None
    assert challenger_count(metrics, "shadow_refused") == 1


def test_promoting_the_challenger_ends_its_shadow_and_workers_start_with_it(
        store: ModelStore, tiny_forecaster: PriceResult) -> None:
    rival = second_version(store, tiny_forecaster, "v-rival",
                           tiny_forecaster.manifest.created_at + 1000)
    store.set_challenger("gold-lstm", "v-rival")
    models, _ = manager(store)
    models.load_latest()  # a worker starting now shadows what the store says
    assert models.forecaster_challenger().version == "v-rival"  # type: ignore[union-attr]
    assert models.apply(rival) == "swapped"  # promoted through the usual path
    assert models.forecaster().version == "v-rival"  # type: ignore[union-attr]
    assert models.forecaster_challenger() is None
    store.promote("gold-lstm", "v-rival")
    assert store.challenger("gold-lstm") is None
    with pytest.raises(Exception, match="LATEST already"):
        store.set_challenger("gold-lstm", "v-rival")


@pytest.fixture
def thawed() -> Iterator[None]:
    """Give the test process its collector back after a test that freezes the heap."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def walked_by_collector(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())  # frozen objects are not listed


def test_frozen_heap_hides_the_models_from_the_collector_and_changes_free_the_old_ones(
        store: ModelStore, tiny_forecaster: PriceResult, thawed: None) -> None:
    models, _ = manager(store, freeze_heap=True)
    models.load_latest()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == heap.THRESHOLDS  # young passes no longer run every batch
    first = models.forecaster()
    assert first is not None
    assert not walked_by_collector(first.model)
    gone = weakref.ref(first.model)  # Keras models hold reference cycles: only gc frees them
    del first
    newer = second_version(store, tiny_forecaster, "v-new",
                           tiny_forecaster.manifest.created_at + 1000)
    assert models.apply(newer) == "swapped"
    assert gone() is None  # collected by the swap's re-freeze, not leaked in the frozen part
    assert not walked_by_collector(models.forecaster().model)  # type: ignore[union-attr]
    # A challenger is frozen when it loads, and freed when its shadow ends.
    rival = replace(second_version(store, tiny_forecaster, "v-rival", 5), role="challenger")
    assert models.apply(rival) == "shadowing"
    shadow = models.forecaster_challenger()
    assert shadow is not None
    assert not walked_by_collector(shadow.model)
    gone = weakref.ref(shadow.model)
    del shadow
    assert models.apply(replace(rival, clear=True)) == "shadow_cleared"
    assert gone() is None


def test_without_freeze_heap_the_collector_is_left_alone(store: ModelStore,
                                                         tiny_forecaster: PriceResult) -> None:
    before, thresholds = gc.get_freeze_count(), gc.get_threshold()
    models, _ = manager(store)
    models.load_latest()
    assert gc.get_freeze_count() == before
    assert gc.get_threshold() == thresholds


def test_inference_threads_reach_onnx_runtime_for_champions_and_challengers(
        store: ModelStore, tiny_forecaster: PriceResult, monkeypatch: pytest.MonkeyPatch) -> None:
    from tickcast.models import predictors

    asked: list[tuple[str, int]] = []
    for name in ("onnx_forecaster", "onnx_sentiment"):
        real = getattr(predictors, name)

        def spy(model: object, *, threads: int = 1, _real: object = real,
                _name: str = name) -> object:
            asked.append((_name, threads))
            return _real(model, threads=threads)  # type: ignore[operator]

        monkeypatch.setattr(predictors, name, spy)
    models = ModelManager(store=store, metrics=Metrics(), max_event_bytes=65_536, threads=2,
                          names={"forecaster": "gold-lstm", "sentiment": "sentiment-rnn"})
    models.load_latest()
    assert sorted(asked) == [("onnx_forecaster", 2), ("onnx_sentiment", 2)]
    update = second_version(store, tiny_forecaster, "v-rival", 5)
    assert models.apply(replace(update, role="challenger")) == "shadowing"
    assert asked[-1] == ("onnx_forecaster", 2)
    assert models.forecaster_challenger().backend == "onnx"  # type: ignore[union-attr]
