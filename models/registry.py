"""The model store on disk: versions per model name, a ``LATEST`` pointer, promote, rollback.

```
<root>/<name>/<version>/...   immutable artifacts (see tickcast.models.artifacts)
<root>/<name>/LATEST          the version serving, replaced atomically
<root>/<name>/HISTORY         one line per promotion (JSON), for rollback
```

Artifacts are addressed by URI ``<name>/<version>``, always inside the store: absolute paths and
``..`` are refused, so a model-update event cannot point a worker at someone else's files.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tickcast.models.artifacts import (
    NAME_RE,
    VERSION_RE,
    ArtifactError,
    Manifest,
    verify_artifact,
)

__all__ = ["ModelStore", "StoreError", "VersionInfo"]


class StoreError(ArtifactError):
    """A model, version or URI the store cannot serve."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    name: str
    version: str
    created_at: int
    latest: bool
    metrics: dict[str, float]


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- addressing ---------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        if not NAME_RE.fullmatch(name):
            raise StoreError(f"model name {name!r} must match {NAME_RE.pattern}")
        return self.root / name

    def path(self, name: str, version: str) -> Path:
        if not VERSION_RE.fullmatch(version) or version in (".", ".."):
            raise StoreError(f"version {version!r} must match {VERSION_RE.pattern}")
        return self.model_dir(name) / version

    def resolve(self, uri: str) -> Path:
        """``<name>/<version>`` -> its directory inside the store; anything else is refused."""
        parts = uri.split("/")
        if len(parts) != 2 or uri.startswith("/") or ".." in parts:
            raise StoreError(f"model URI {uri!r} must be '<name>/<version>' inside the store")
        path = self.path(*parts)
        root = self.root.resolve()
        if root not in path.resolve().parents:
            raise StoreError(f"model URI {uri!r} resolves outside the model store")
        return path

    @staticmethod
    def uri(name: str, version: str) -> str:
        return f"{name}/{version}"

    # -- reading ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and NAME_RE.fullmatch(p.name))

    def latest(self, name: str) -> str | None:
        return self._read_pointer(name, "LATEST")

    def challenger(self, name: str) -> str | None:
        """The version in shadow beside ``LATEST`` (``tickcast models shadow``), if any."""
        return self._read_pointer(name, "CHALLENGER")

    def _read_pointer(self, name: str, pointer_name: str) -> str | None:
        pointer = self.model_dir(name) / pointer_name
        try:
            version = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {pointer}: {exc.strerror or exc}") from None
        return version or None

    def manifests(self, name: str) -> list[Manifest]:
        """Every valid version of ``name``, oldest first (invalid ones are skipped)."""
        folder = self.model_dir(name)
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            if child.is_dir() and not child.name.startswith("."):
                try:
                    found.append(verify_artifact(child))
                except ArtifactError:
                    continue
        return sorted(found, key=lambda m: (m.created_at, m.version))

    def versions(self, name: str) -> list[VersionInfo]:
        latest = self.latest(name)
        return [VersionInfo(m.name, m.version, m.created_at, m.version == latest, m.metrics)
                for m in self.manifests(name)]

    def verify(self, name: str, version: str) -> Manifest:
        manifest = verify_artifact(self.path(name, version))
        if manifest.name != name:
            raise StoreError(f"{name}/{version} holds a manifest for {manifest.name!r}")
        return manifest

    # -- changing -----------------------------------------------------------------------------
    def promote(self, name: str, version: str, *, reason: str = "promote") -> Manifest:
        """Verify ``version`` and make it ``LATEST`` (atomically); recorded in ``HISTORY``."""
        manifest = self.verify(name, version)
        folder = self.model_dir(name)
        tmp = folder / f".LATEST.{os.getpid()}"
        try:
            tmp.write_text(version + "\n", encoding="utf-8")
            os.replace(tmp, folder / "LATEST")
            with open(folder / "HISTORY", "a", encoding="utf-8") as history:
                history.write(json.dumps({"version": version, "at": int(time.time() * 1000),
                                          "reason": reason}) + "\n")
        except OSError as exc:
            raise StoreError(f"cannot make {name}/{version} LATEST in {folder}: "
                             f"{exc.strerror or exc}") from None
        if self.challenger(name) == version:  # promoted: it serves now, no longer in shadow
            self.clear_challenger(name)
        return manifest

    def set_challenger(self, name: str, version: str) -> Manifest:
        """Verify ``version`` and make it the challenger of ``name`` (atomically); the
        ``LATEST`` version cannot be its own challenger."""
        manifest = self.verify(name, version)
        if version == self.latest(name):
            raise StoreError(f"{name}/{version} is LATEST already: a challenger must be "
                             "another version")
        self._write_pointer(name, "CHALLENGER", version)
        return manifest

    def clear_challenger(self, name: str) -> str | None:
        """End the shadow of ``name``; returns the version that was the challenger."""
        current = self.challenger(name)
        if current is not None:
            try:
                (self.model_dir(name) / "CHALLENGER").unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreError(f"cannot clear the challenger of {name}: "
                                 f"{exc.strerror or exc}") from None
        return current

    def _write_pointer(self, name: str, pointer: str, version: str) -> None:
        folder = self.model_dir(name)
        tmp = folder / f".{pointer}.{os.getpid()}"
        try:
            tmp.write_text(version + "\n", encoding="utf-8")
            os.replace(tmp, folder / pointer)
        except OSError as exc:
            raise StoreError(f"cannot write {pointer} in {folder}: {exc.strerror or exc}"
                             ) from None

    def history(self, name: str) -> list[dict[str, object]]:
        try:
            lines = (self.model_dir(name) / "HISTORY").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def rollback(self, name: str) -> Manifest:
        """Make the version that was ``LATEST`` before the current one ``LATEST`` again."""
        current = self.latest(name)
        if current is None:
            raise StoreError(f"{name} has no LATEST version to roll back from")
        previous = [str(h["version"]) for h in self.history(name) if h["version"] != current]
        for version in reversed(previous):
            try:
                return self.promote(name, version, reason=f"rollback from {current}")
            except ArtifactError:
                continue
        raise StoreError(f"{name} has no earlier valid version to roll back to")
