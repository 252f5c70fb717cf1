"""The artifact format: one directory per model version, described by ``manifest.json``.

```
<store>/<name>/<version>/
    manifest.json        name, kind, version, created_at, framework versions, input spec,
                         metrics, data fingerprint, and the sha256 of every other file
    model.keras          Keras v3 format; loads with safe_mode=True (no Lambda, no pickle)
    preprocessing.json   PriceScaler, Vocabulary or CharVocabulary state
    report.*             evaluation reports (JSON, Markdown, PNG), checksummed like the rest
```

:func:`write_artifact` writes into a temporary sibling directory and renames it into place, so
a reader never sees half an artifact. :func:`verify_artifact` is the one gate every loader goes
through: it refuses a missing, extra-listed, truncated or altered file with a clear reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

from tickcast.errors import TickcastError

__all__ = [
    "NAME_RE",
    "VERSION_RE",
    "ArtifactError",
    "Manifest",
    "ModelKind",
    "new_version",
    "sha256_file",
    "verify_artifact",
    "write_artifact",
]

FORMAT: Final = "tickcast-model/1"
MANIFEST: Final = "manifest.json"
MODEL_FILE: Final = "model.keras"
PREPROCESSING_FILE: Final = "preprocessing.json"
NAME_RE: Final = re.compile(r"[a-z][a-z0-9_-]{0,63}")
VERSION_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
FILE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ModelKind = Literal["forecaster", "sentiment", "textgen"]


class ArtifactError(TickcastError):
    """An artifact is missing, malformed, or does not match its manifest."""


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    kind: ModelKind
    version: str
    created_at: int
    files: dict[str, str]
    metrics: dict[str, float]
    input: dict[str, Any]
    data: dict[str, Any]
    framework: dict[str, str]
    format: str = FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "name": self.name, "kind": self.kind,
            "version": self.version, "created_at": self.created_at, "input": self.input,
            "metrics": self.metrics, "data": self.data, "framework": self.framework,
            "files": self.files,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Manifest:
        try:
            manifest = cls(
                name=str(raw["name"]), kind=raw["kind"], version=str(raw["version"]),
                created_at=int(raw["created_at"]), files=dict(raw["files"]),
                metrics={str(k): float(v) for k, v in dict(raw["metrics"]).items()},
                input=dict(raw["input"]), data=dict(raw["data"]),
                framework=dict(raw["framework"]), format=str(raw["format"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"manifest is malformed: {type(exc).__name__}: {exc}") from None
        manifest._check()
        return manifest

    def _check(self) -> None:
        if self.format != FORMAT:
            raise ArtifactError(f"manifest format {self.format!r} is not {FORMAT!r}")
        if not NAME_RE.fullmatch(self.name):
            raise ArtifactError(f"model name {self.name!r} must match {NAME_RE.pattern}")
        if not VERSION_RE.fullmatch(self.version):
            raise ArtifactError(f"version {self.version!r} must match {VERSION_RE.pattern}")
        if self.kind not in get_args(ModelKind):
            raise ArtifactError(f"unknown model kind {self.kind!r}")
        for required in (MODEL_FILE, PREPROCESSING_FILE):
            if required not in self.files:
                raise ArtifactError(f"manifest does not list {required}")
        for file, digest in self.files.items():
            if not FILE_RE.fullmatch(file) or file == MANIFEST:
                raise ArtifactError(f"manifest lists an unsafe file name {file!r}")
            if not re.fullmatch(r"[0-9a-f]{64}", str(digest)):
                raise ArtifactError(f"manifest sha256 of {file} is not 64 hex characters")

    @property
    def sha256(self) -> str:
        """Digest of the manifest's canonical JSON: identifies the whole artifact."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def new_version(now: float | None = None) -> str:
    """Sortable and unique: ``20261125T175512Z-3f9a1c``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def framework_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("keras", "tensorflow", "tensorflow-cpu", "numpy", "tickcast"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_artifact(
    parent: Path, *, name: str, kind: ModelKind, version: str,
    write_files: Callable[[Path], None], metrics: Mapping[str, float],
    input_spec: Mapping[str, Any], data: Mapping[str, Any], created_at: int | None = None,
) -> tuple[Path, Manifest]:
    """Create ``parent/<version>`` atomically: ``write_files(tmp)`` fills a temporary directory,
    the manifest is computed over what it wrote, and the directory is renamed into place."""
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / version
    if final.exists():
        raise ArtifactError(f"{final} already exists; versions are immutable")
    tmp = parent / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write_files(tmp)
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = Manifest(
            name=name, kind=kind, version=version,
            created_at=created_at if created_at is not None else int(time.time() * 1000),
            files=files, metrics={k: float(v) for k, v in metrics.items()},
            input=dict(input_spec), data=dict(data), framework=framework_versions())
        manifest._check()
        (tmp / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n",
                                    encoding="utf-8")
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, manifest


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify_artifact(path: Path, *, expected_sha256: str | None = None) -> Manifest:
    """Check ``path`` against its manifest (and the manifest against ``expected_sha256``)."""
    if not path.is_dir():
        raise ArtifactError(f"{path} is not an artifact directory")
    try:
        raw = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path} has no {MANIFEST}") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path / MANIFEST} is not readable JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ArtifactError(f"{path / MANIFEST} must hold a JSON object")
    manifest = Manifest.from_dict(raw)
    if path.name != manifest.version:
        raise ArtifactError(f"directory {path.name!r} does not match manifest version "
                            f"{manifest.version!r}")
    for file, digest in manifest.files.items():
        target = path / file
        if target.is_symlink() or not target.is_file():
            raise ArtifactError(f"{file} listed in the manifest is missing from {path}")
        actual = sha256_file(target)
        if actual != digest:
            raise ArtifactError(f"{file} does not match its manifest sha256 (file {actual[:12]}…,"
                                f" manifest {digest[:12]}…): altered or truncated")
    if expected_sha256 is not None and manifest.sha256 != expected_sha256:
        raise ArtifactError(f"manifest sha256 {manifest.sha256[:12]}… is not the published "
                            f"{expected_sha256[:12]}…")
    return manifest
