"""Replay producer: datasets or CSV files into ``prices``/``texts``/``labels`` at a set rate.

Uses ``kafka-python`` (any Kafka client works; the event formats are JSON, see
``streams/schemas``). Keys follow the contract: ``prices`` by symbol, ``texts`` and ``labels``
by id. Every send is acknowledged by the broker (``acks=all``) before the command reports
success; a failed send is counted and makes the exit status non-zero.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from tickcast.errors import TickcastError
from tickcast.streams.events import TEXT_MAX_CHARS, encode
from tickcast.streams.security import KafkaSecurity
from tickcast.training.data import DataError

__all__ = [
    "LabelMode",
    "Replay",
    "ReplayStats",
    "generated_text_events",
    "price_events",
    "text_events",
]

LabelMode = Literal["inline", "separate", "none"]
Record = tuple[str, bytes, bytes]  # (logical topic, key, value)


@dataclass(slots=True)
class ReplayStats:
    sent: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def price_events(frame: pd.DataFrame, *, symbol: str = "XAU") -> Iterator[Record]:
    """``prices`` records from a frame with ``date`` and ``close`` (or ``price``) columns."""
    value_col = "close" if "close" in frame.columns else "price"
    for date, price in zip(frame["date"], frame[value_col], strict=True):
        ts = int(pd.Timestamp(date).timestamp() * 1000)
        event_id = f"{symbol}-{ts}"
        yield "prices", symbol.encode(), encode(
            {"symbol": symbol, "ts": ts, "price": float(price), "id": event_id})


def text_events(frame: pd.DataFrame, *, label_mode: LabelMode = "inline",
                clock: Iterable[int] | None = None) -> Iterator[Record]:
    """``texts`` (and, with ``label_mode='separate'``, ``labels``) records from a frame with
    ``id``, ``text`` and optional ``label`` columns; ``ts`` is the replay time."""
    has_label = "label" in frame.columns and label_mode != "none"
    ticks = iter(clock) if clock is not None else None
    for row in frame.itertuples(index=False):
        ts = next(ticks) if ticks is not None else int(time.time() * 1000)
        event = {"id": str(row.id), "ts": ts, "text": str(row.text)}
        label = int(row.label) if has_label and pd.notna(row.label) else None
        if label is not None and label_mode == "inline":
            event["label"] = label
        yield "texts", str(row.id).encode(), encode(event)
        if label is not None and label_mode == "separate":
            yield "labels", str(row.id).encode(), encode({"id": str(row.id), "label": label})


def generated_text_events(texts: Iterable[str], *, run_id: str | None = None,
                          clock: Iterable[int] | None = None) -> Iterator[Record]:
    """``texts`` records for generated texts: ids ``gen-<run>-<n>`` mark them as synthetic,
    ``ts`` is the replay time, and there is never a label (our own classifier's verdict as
    ground truth would make the AUC circular). Lazy: ``texts`` may be endless."""
    run = run_id or uuid.uuid4().hex[:8]
    ticks = iter(clock) if clock is not None else None
    n = 0
    for text in texts:
        text = text.strip()[:TEXT_MAX_CHARS]
        if not text:
            continue  # the texts contract refuses empty texts
        ts = next(ticks) if ticks is not None else int(time.time() * 1000)
        event_id = f"gen-{run}-{n}"
        n += 1
        yield "texts", event_id.encode(), encode({"id": event_id, "ts": ts, "text": text})


def read_csv(path: Path, kind: Literal["prices", "texts"]) -> pd.DataFrame:
    """A user's CSV: prices need ``date`` and a positive ``close``/``price``; texts ``id``
    and ``text``, and a ``label`` of 0 or 1 where there is one. Anything else is a
    :class:`DataError` before a record is sent."""
    from tickcast.training.jobs import checked_closes
    from tickcast.training.jobs import read_csv as read_frame

    frame = read_frame(path)
    need = ({"date"}, {"close", "price"}) if kind == "prices" else ({"id", "text"}, set())
    required, one_of = need
    missing = sorted(required - set(frame.columns))
    if missing or (one_of and not one_of & set(frame.columns)):
        wanted = sorted(required) + ([" or ".join(sorted(one_of))] if one_of else [])
        raise DataError(f"{path}: columns {list(frame.columns)} lack {', '.join(wanted)}")
    if kind == "prices":
        value = "close" if "close" in frame.columns else "price"
        return checked_closes(frame, path, date_column="date", close_column=value)
    if "label" in frame.columns:
        labels = frame["label"].dropna()
        if not labels.isin([0, 1]).all():
            raise DataError(f"{path}: label must be 0 or 1 (or empty) on every row")
    return frame


class Replay:
    """Send records to Kafka at ``rate`` records/s (0 = as fast as the broker takes them)."""

    def __init__(self, *, bootstrap: list[str], topic_prefix: str = "",
                 security: KafkaSecurity | None = None,
                 client_id: str = "tickcast-replay") -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        security = security or KafkaSecurity()
        self.topic_prefix = topic_prefix
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap, client_id=client_id, acks="all", linger_ms=5,
                enable_idempotence=True,  # retries never duplicate or reorder
                **security.client_kwargs(),
            )
        except KafkaError as exc:
            raise TickcastError(security.unreachable(bootstrap, exc)) from None

    def run(self, records: Iterable[Record], *, rate: float = 0.0, limit: int | None = None,
            total: int | None = None, progress: bool = True) -> ReplayStats:
        from tqdm import tqdm

        stats = ReplayStats()
        started = time.monotonic()
        count = min(total, limit) if total is not None and limit is not None else total or limit
        bar = tqdm(total=count, unit="ev", disable=not progress, desc="replay")

        def failed(exc: BaseException) -> None:
            stats.failed += 1
            if len(stats.errors) < 5:
                stats.errors.append(f"{type(exc).__name__}: {exc}")

        try:
            for n, (topic, key, value) in enumerate(records):
                if limit is not None and n >= limit:
                    break
                if rate > 0:
                    delay = started + n / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                future = self._producer.send(self.topic_prefix + topic, key=key, value=value)
                future.add_errback(failed)
                stats.sent[topic] = stats.sent.get(topic, 0) + 1
                bar.update()
        finally:
            self._producer.flush()
            bar.close()
            stats.seconds = time.monotonic() - started
        return stats

    def close(self) -> None:
        self._producer.close()
