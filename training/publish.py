"""Publishing: one ``model-updates`` event per artifact, through an idempotent producer.

The event (``name, version, uri, sha256, metrics, created_at``; JSON Schema in
``streams/schemas/model-updates.schema.json``) is keyed by model name on a compacted topic, so
the newest version per model survives and a starting worker can read it. ``sha256`` is the
digest of the artifact's manifest, which itself lists the sha256 of every file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from tickcast.errors import TickcastError
from tickcast.models.artifacts import Manifest
from tickcast.models.registry import ModelStore
from tickcast.streams.security import KafkaSecurity

__all__ = ["PublishError", "publish_update", "update_event", "update_key"]


class PublishError(TickcastError):
    """The broker did not acknowledge the model-update event."""


def update_event(manifest: Manifest, *, rollback: bool = False, role: str = "champion",
                 clear: bool = False, audit: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The ``model-updates`` value for ``manifest``; ``rollback`` lets workers go back to an
    older version (they otherwise ignore versions older than the one serving). ``role``
    ``challenger`` puts it in shadow beside the champion, ``clear`` ends that shadow."""
    event: dict[str, Any] = {
        "name": manifest.name,
        "version": manifest.version,
        "uri": ModelStore.uri(manifest.name, manifest.version),
        "sha256": manifest.sha256,
        "metrics": {k: v for k, v in manifest.metrics.items() if math.isfinite(v)},
        "created_at": manifest.created_at,
        "rollback": rollback,
    }
    if role != "champion":
        event.update(role=role, clear=clear)
    if audit is not None:  # role=decision: decision, rule, evidence, champion, decided_at
        event.update(audit)
    return event


def update_key(name: str, role: str = "champion", version: str = "") -> bytes:
    """The compaction key: one champion and one challenger event survive per model, and one
    gate decision per challenger version."""
    if role == "decision":
        return f"{name}#decision#{version}".encode()
    return (name if role == "champion" else f"{name}#{role}").encode()


def publish_update(manifest: Manifest, *, bootstrap: list[str], topic: str,
                   security: KafkaSecurity | None = None, rollback: bool = False,
                   role: str = "champion", clear: bool = False,
                   audit: Mapping[str, Any] | None = None,
                   timeout_s: float = 30.0) -> tuple[int, int]:
    """Send the event with ``acks=all`` and idempotence; returns ``(partition, offset)``."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    value = json.dumps(update_event(manifest, rollback=rollback, role=role, clear=clear,
                                    audit=audit),
                       separators=(",", ":")).encode("utf-8")
    security = security or KafkaSecurity()
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                 enable_idempotence=True, client_id="tickcast-train",
                                 bootstrap_timeout_ms=int(timeout_s * 1000),
                                 **security.client_kwargs())
    except (KafkaError, OSError) as exc:
        raise PublishError(security.unreachable(bootstrap, exc)) from None
    try:
        key = update_key(manifest.name, role, manifest.version)
        metadata = producer.send(topic, key=key, value=value).get(
            timeout=timeout_s)
        producer.flush()
    except KafkaError as exc:
        raise PublishError(f"publishing {manifest.name}/{manifest.version} to {topic} failed: "
                           f"{exc}") from None
    finally:
        producer.close()
    return metadata.partition, metadata.offset
