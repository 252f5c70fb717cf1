"""Artifacts: atomic writes; every kind of tampering is refused with a clear reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tickcast.models.artifacts import ArtifactError, verify_artifact, write_artifact
from tickcast.models.predictors import load_predictor
from tickcast.training.prices import PriceResult


def copy_of(result: PriceResult, tmp_path: Path) -> Path:
    target = tmp_path / result.path.name
    shutil.copytree(result.path, target)
    return target


def test_manifest_lists_every_file_with_its_checksum(tiny_forecaster: PriceResult) -> None:
    manifest = verify_artifact(tiny_forecaster.path)
    files = {p.name for p in tiny_forecaster.path.iterdir()} - {"manifest.json"}
    assert set(manifest.files) == files
    assert {"model.keras", "preprocessing.json", "report.json", "report.md",
            "forecast_vs_actual.png"} <= files
    assert manifest.framework["keras"]
    assert manifest.input["shape"] == [None, 10, 1]
    assert manifest.data["fingerprint"]


def test_a_changed_byte_is_refused(tiny_forecaster: PriceResult, tmp_path: Path) -> None:
    path = copy_of(tiny_forecaster, tmp_path)
    data = bytearray((path / "model.keras").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "model.keras").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model.keras does not match its manifest sha256"):
        load_predictor(path)


def test_a_truncated_file_is_refused(tiny_forecaster: PriceResult, tmp_path: Path) -> None:
    path = copy_of(tiny_forecaster, tmp_path)
    (path / "preprocessing.json").write_bytes((path / "preprocessing.json").read_bytes()[:5])
    with pytest.raises(ArtifactError, match="altered or truncated"):
        verify_artifact(path)


@pytest.mark.parametrize(("change", "words"), [
    (lambda m: m["files"].pop("model.keras"), "does not list model.keras"),
    (lambda m: m["files"].update({"../escape": "0" * 64}), "unsafe file name"),
    (lambda m: m["files"].update({"extra.bin": "0" * 64}), "extra.bin listed in the manifest "
                                                          "is missing"),
    (lambda m: m.update({"format": "other/9"}), "format"),
    (lambda m: m.update({"version": "v2"}), "does not match manifest version"),
    (lambda m: m.pop("metrics"), "manifest is malformed"),
])
def test_manifest_mismatches_are_refused(tiny_forecaster: PriceResult, tmp_path: Path,
                                         change: object, words: str) -> None:
    path = copy_of(tiny_forecaster, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)  # type: ignore[operator]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=words):
        verify_artifact(path)


def test_published_digest_must_match(tiny_forecaster: PriceResult) -> None:
    assert verify_artifact(tiny_forecaster.path,
                           expected_sha256=tiny_forecaster.manifest.sha256)
    with pytest.raises(ArtifactError, match="is not the published"):
        verify_artifact(tiny_forecaster.path, expected_sha256="f" * 64)


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    def explode(folder: Path) -> None:
        (folder / "model.keras").write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_artifact(tmp_path / "m", name="m", kind="forecaster", version="v1",
                       write_files=explode, metrics={}, input_spec={}, data={})
    assert list((tmp_path / "m").iterdir()) == []


def test_versions_are_immutable(tiny_forecaster: PriceResult) -> None:
    with pytest.raises(ArtifactError, match="immutable"):
        write_artifact(tiny_forecaster.path.parent, name="gold-lstm", kind="forecaster",
                       version=tiny_forecaster.manifest.version, write_files=lambda f: None,
                       metrics={}, input_spec={}, data={})
