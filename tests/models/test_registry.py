"""The model store: LATEST, promote, rollback, and URIs that cannot escape the store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tickcast.models.artifacts import ArtifactError
from tickcast.models.registry import ModelStore, StoreError
from tickcast.training.prices import PriceResult


def store_with_copy(tiny_forecaster: PriceResult, tmp_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "store")
    shutil.copytree(tiny_forecaster.path, store.model_dir("gold-lstm") / tiny_forecaster.path.name)
    return store


def test_promote_and_rollback(tmp_path: Path) -> None:
    from tickcast.training.data import gold_closes
    from tickcast.training.prices import PriceConfig, train_prices

    store = ModelStore(tmp_path / "store")
    versions = []
    for seed in (1, 2):
        gold = gold_closes().tail(400).reset_index(drop=True)
        result = train_prices(gold, store_dir=store.root, progress=False,
                              config=PriceConfig(window=5, units=(4,), epochs=1, seed=seed))
        versions.append(result.manifest.version)
    assert store.latest("gold-lstm") is None
    store.promote("gold-lstm", versions[0])
    store.promote("gold-lstm", versions[1])
    assert store.latest("gold-lstm") == versions[1]
    assert [v.latest for v in store.versions("gold-lstm")] == [False, True]
    assert store.rollback("gold-lstm").version == versions[0]
    assert store.latest("gold-lstm") == versions[0]
    assert store.history("gold-lstm")[-1]["reason"] == f"rollback from {versions[1]}"


def test_promoting_a_tampered_version_is_refused(tiny_forecaster: PriceResult,
                                                 tmp_path: Path) -> None:
    store = store_with_copy(tiny_forecaster, tmp_path)
    version = tiny_forecaster.path.name
    (store.path("gold-lstm", version) / "preprocessing.json").write_text("{}")
    with pytest.raises(ArtifactError, match="altered or truncated"):
        store.promote("gold-lstm", version)
    assert store.latest("gold-lstm") is None


def test_rollback_without_history_is_explained(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no LATEST"):
        ModelStore(tmp_path).rollback("gold-lstm")


@pytest.mark.parametrize("uri", ["../gold-lstm/v1", "/etc/passwd", "gold-lstm/..",
                                 "gold-lstm/v1/extra", "Gold/v1", "gold-lstm/../../x"])
def test_uris_outside_the_store_are_refused(tmp_path: Path, uri: str) -> None:
    with pytest.raises(StoreError):
        ModelStore(tmp_path).resolve(uri)


def test_a_valid_uri_resolves_inside_the_store(tmp_path: Path) -> None:
    assert ModelStore(tmp_path).resolve("gold-lstm/v1") == tmp_path / "gold-lstm" / "v1"
