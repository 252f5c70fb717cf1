"""Topic names, partition counts and configs; declared by tickcast, never auto-created.

``texts`` and ``labels`` are keyed by text id and always have the same partition count, so a
label lands on the worker that scored its text (Faust assigns co-partitioned topics together).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from tickcast.errors import TickcastError
from tickcast.streams.security import KafkaSecurity
from tickcast.streams.settings import Settings

__all__ = ["LOGICAL_TOPICS", "TopicError", "TopicSpec", "ensure_topics", "topic_specs"]

log = logging.getLogger(__name__)

LOGICAL_TOPICS: Final = (
    "prices", "texts", "labels", "forecasts", "sentiment", "model-updates", "dead-letters",
)
_DAY_MS: Final = 86_400_000


class TopicError(TickcastError):
    """Topics could not be created, or exist with an incompatible layout."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the pipeline uses, with its layout."""
    p, rf = settings.topic_partitions, settings.topic_replication
    specs = {
        "prices": TopicSpec(settings.topic("prices"), p, rf),
        "texts": TopicSpec(settings.topic("texts"), p, rf),
        "labels": TopicSpec(settings.topic("labels"), p, rf),
        "forecasts": TopicSpec(settings.topic("forecasts"), p, rf),
        "sentiment": TopicSpec(settings.topic("sentiment"), p, rf),
        # Latest version per model name survives compaction: a new worker reads it on start.
        "model-updates": TopicSpec(settings.topic("model-updates"), 1, rf,
                                   {"cleanup.policy": "compact"}),
        "dead-letters": TopicSpec(settings.topic("dead-letters"), 1, rf,
                                  {"retention.ms": str(30 * _DAY_MS)}),
    }
    return [specs[name] for name in LOGICAL_TOPICS]


def ensure_topics(bootstrap: Iterable[str], specs: Iterable[TopicSpec], *,
                  security: KafkaSecurity | None = None, timeout_s: float = 30.0) -> list[str]:
    """Create the missing topics; returns the names created.

    Raises :class:`TopicError` when the broker is unreachable or an existing topic has a
    different partition count than asked for (co-partitioning of texts and labels relies on it).
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    specs = list(specs)
    servers = list(bootstrap)
    security = security or KafkaSecurity()
    try:
        admin = KafkaAdminClient(bootstrap_servers=servers, client_id="tickcast-topics",
                                 request_timeout_ms=int(timeout_s * 1000),
                                 bootstrap_timeout_ms=int(timeout_s * 1000),
                                 **security.client_kwargs())
    except (KafkaError, OSError) as exc:
        raise TopicError(security.unreachable(servers, exc)) from None
    try:
        existing = set(admin.list_topics())
        missing = {s.name: {"num_partitions": s.partitions, "replication_factor": s.replication,
                            "configs": s.config} for s in specs if s.name not in existing}
        if missing:
            # Another worker may create them at the same moment: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing, timeout_ms=int(timeout_s * 1000),
                                    wait_for_metadata=True)
            log.info("created topics %s", ", ".join(sorted(missing)))
        _check_partitions(admin, [s for s in specs if s.name in existing])
        return sorted(missing)
    except KafkaError as exc:
        raise TopicError(f"declaring topics failed: {exc}") from None
    finally:
        admin.close()


def _check_partitions(admin: object, specs: list[TopicSpec]) -> None:
    if not specs:
        return
    described = {t["name"]: len(t["partitions"])
                 for t in admin.describe_topics([s.name for s in specs])}  # type: ignore[attr-defined]
    wrong = [f"{s.name} has {described.get(s.name)} partitions, expected {s.partitions}"
             for s in specs if described.get(s.name) != s.partitions]
    if wrong:
        raise TopicError("existing topics disagree with TICKCAST_TOPIC_PARTITIONS: "
                         + "; ".join(wrong) + ". Recreate them or set the variable to match.")
