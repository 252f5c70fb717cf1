"""Models in the stream: load ``LATEST`` at start, hot-swap on ``model-updates``.

A worker serves one forecaster and one sentiment model (plus VADER, which needs none). Agents
read the predictor once per batch, so a swap lands between batches: in-flight batches finish on
the model they started with, and no event is scored twice or skipped. A swap happens only after
the artifact passed every check — URI inside the store, manifest and file checksums, the
published digest, safe Keras loading, a smoke inference — otherwise the old model keeps serving
and ``tickcast_model_swaps_total{outcome="refused"}`` goes up.

``model-updates`` is a broadcast: every worker reads the whole (compacted) topic with its own
group-less consumer (:func:`follow_model_updates`), so each one learns of each version.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Final, Literal, TypeVar

import numpy as np

from tickcast.models.artifacts import ArtifactError, ModelKind
from tickcast.models.predictors import Forecaster, SentimentRNN, load_predictor
from tickcast.models.registry import ModelStore
from tickcast.streams import heap
from tickcast.streams.events import EventError, ModelUpdate, decode_model_update
from tickcast.streams.metrics import Metrics
from tickcast.streams.settings import Settings

if TYPE_CHECKING:
    import faust

__all__ = ["METRIC_MODEL", "OTHER_MODEL", "ModelManager", "SwapOutcome", "follow_model_updates",
           "load_model", "smoke_test"]

log = logging.getLogger(__name__)

SwapOutcome = Literal["swapped", "current", "stale", "refused", "unknown_model", "invalid_event",
                      "shadowing", "shadow_cleared", "shadow_refused", "audit"]
SERVED_OUTCOMES: Final[tuple[SwapOutcome, ...]] = (
    "swapped", "current", "stale", "refused", "shadowing", "shadow_cleared", "shadow_refused",
    "audit")
"""Outcomes of an update naming a model this worker serves."""
OTHER_OUTCOMES: Final[tuple[SwapOutcome, ...]] = ("unknown_model", "invalid_event")
"""Outcomes of an update that names no served model (or cannot be read): ``model="other"``."""
METRIC_MODEL: Final[dict[ModelKind, str]] = {"forecaster": "lstm", "sentiment": "rnn"}
OTHER_MODEL: Final = "other"
Predictor = Forecaster | SentimentRNN
P = TypeVar("P", Forecaster, SentimentRNN)


def smoke_test(predictor: Predictor) -> None:
    """One tiny inference that must give finite, in-range outputs before a model serves."""
    if isinstance(predictor, Forecaster):
        rising = np.linspace(100.0, 101.0, predictor.window)[None, :]
        prediction = predictor.predict(np.vstack([rising, rising[:, ::-1]]))
        out, bounds = prediction.prices, prediction.bounds
        if out.shape != (2,) or not np.all(np.isfinite(out)) or np.any(out <= 0):
            raise ArtifactError(f"smoke inference gave unusable forecasts {out.tolist()}")
        if bounds is not None and (not np.all(np.isfinite(bounds)) or np.any(bounds <= 0)
                                   or np.any(bounds[..., 0] > bounds[..., 1])):
            raise ArtifactError(f"smoke inference gave unusable intervals {bounds.tolist()}")
    else:
        scores = predictor.score_batch(["what a wonderful day", "this is awful"])
        if len(scores) != 2 or not all(math.isfinite(s) and 0 <= s <= 1 for s in scores):
            raise ArtifactError(f"smoke inference gave unusable scores {scores}")


def load_model(store: ModelStore, kind: ModelKind, name: str, version: str, *,
               expected_sha256: str | None = None, backend: str = "auto", threads: int = 1
               ) -> Predictor:
    """Load ``name/version`` from ``store`` with every check a swap makes (checksums, kind and
    name, a smoke inference); :class:`ArtifactError` says why a version cannot serve."""
    predictor = load_predictor(store.path(name, version), expected_sha256=expected_sha256,
                               backend=backend, threads=threads)
    if predictor.manifest.name != name or predictor.kind != kind:
        raise ArtifactError(f"{name}/{version} holds a {predictor.kind} named "
                            f"{predictor.manifest.name!r}, not a {kind} named {name!r}")
    smoke_test(predictor)
    return predictor  # type: ignore[return-value]


class ModelManager:
    """The predictors serving now, by kind; safe to read from any thread.

    With ``freeze_heap`` (the worker's setting) the heap is frozen after :meth:`load_latest`
    and after every change of a champion or a challenger, so the collector's full passes skip
    the models (see :mod:`tickcast.streams.heap`).
    """

    def __init__(self, *, store: ModelStore, metrics: Metrics, names: Mapping[ModelKind, str],
                 max_event_bytes: int, backend: str = "auto", threads: int = 1,
                 freeze_heap: bool = False) -> None:
        self.store = store
        self.threads = threads
        self.freeze_heap = freeze_heap
        self.backend = backend
        self.metrics = metrics
        self.names = dict(names)
        self.max_event_bytes = max_event_bytes
        self._kinds = {name: kind for kind, name in self.names.items()}
        self._serving: dict[ModelKind, Predictor | None] = dict.fromkeys(self.names)
        self._challengers: dict[ModelKind, Predictor | None] = dict.fromkeys(self.names)
        for kind in self.names:
            for outcome in SERVED_OUTCOMES:
                metrics.model_swaps.labels(model=METRIC_MODEL[kind], outcome=outcome)
        for outcome in OTHER_OUTCOMES:
            metrics.model_swaps.labels(model=OTHER_MODEL, outcome=outcome)

    def forecaster(self) -> Forecaster | None:
        return _of_type(self._serving.get("forecaster"), Forecaster)

    def sentiment(self) -> SentimentRNN | None:
        return _of_type(self._serving.get("sentiment"), SentimentRNN)

    def forecaster_challenger(self) -> Forecaster | None:
        """The forecaster in shadow beside the champion, if any."""
        return _of_type(self._challengers.get("forecaster"), Forecaster)

    def sentiment_challenger(self) -> SentimentRNN | None:
        return _of_type(self._challengers.get("sentiment"), SentimentRNN)

    def load_latest(self) -> None:
        """At start: serve each model's ``LATEST`` version, if the store has a valid one."""
        for kind, name in self.names.items():
            version = self.store.latest(name)
            if version is None:
                log.warning("no LATEST %s in %s: %s inference is off until one is published",
                            name, self.store.root, kind)
                continue
            predictor = self._load_or_count(kind, name, version, "refused")
            if predictor is None:
                continue
            self._install(kind, predictor)
            log.info("serving %s/%s (%s)", name, version, getattr(predictor, "backend", ""))
            challenger = self.store.challenger(name)
            shadow = (self._load_or_count(kind, name, challenger, "shadow_refused")
                      if challenger not in (None, version) else None)
            if shadow is not None:
                self._install_challenger(kind, shadow)
                log.info("shadowing %s/%s beside %s", name, challenger, version)
        self._refreeze()

    def _load_or_count(self, kind: ModelKind, name: str, version: str,
                       refused: SwapOutcome) -> Predictor | None:
        """A version from the store at start, or ``None`` (logged and counted as ``refused``)."""
        try:
            return self._load(kind, name, version, expected_sha256=None)
        except ArtifactError as exc:
            log.error("cannot load %s/%s: %s", name, version, exc)
            self._count(kind, refused)
            return None

    def _load_update(self, kind: ModelKind, update: ModelUpdate) -> Predictor:
        """The version ``update`` names, checked against the event (URI inside the store and
        naming that version, the published digest) and then as every load is."""
        path = self.store.resolve(update.uri)
        if path != self.store.path(update.name, update.version):
            raise ArtifactError(f"uri {update.uri!r} does not name {update.name}/"
                                f"{update.version}")
        return self._load(kind, update.name, update.version, expected_sha256=update.sha256)

    def apply_raw(self, raw: bytes | None) -> SwapOutcome:
        try:
            update = decode_model_update(raw, max_bytes=self.max_event_bytes)
        except EventError as exc:
            log.error("ignoring a malformed model-updates event: %s", exc.message)
            self.metrics.model_update_errors.labels(reason=exc.reason).inc()
            return self._count_other("invalid_event")
        return self.apply(update)

    def apply(self, update: ModelUpdate) -> SwapOutcome:
        """Verify, load, smoke-test and swap in ``update`` (blocking: call from a thread)."""
        kind = self._kinds.get(update.name)
        if kind is None:
            log.info("model-updates: %s is not served by this worker", update.name)
            return self._count_other("unknown_model")
        if update.role == "challenger":
            return self._apply_challenger(kind, update)
        if update.role == "decision":  # an audit record: the decision acts by other events
            log.info("gate decision on %s/%s: %s (%s)", update.name, update.version,
                     update.decision, update.rule)
            return self._count(kind, "audit")
        current = self._serving[kind]
        if current is not None and current.version == update.version:
            return self._count(kind, "current")
        if (current is not None and update.created_at <= current.manifest.created_at
                and not update.rollback):
            log.warning("ignoring %s/%s: older than the serving %s (publish it with rollback "
                        "to go back)", update.name, update.version, current.version)
            return self._count(kind, "stale")
        try:
            predictor = self._load_update(kind, update)
        except ArtifactError as exc:
            log.error("refusing %s/%s, still serving %s: %s", update.name, update.version,
                      current.version if current else "nothing", exc)
            return self._count(kind, "refused")
        self._install(kind, predictor)
        log.info("now serving %s/%s (%s; was %s)", update.name, update.version,
                 getattr(predictor, "backend", ""), current.version if current else "nothing")
        shadow = self._challengers[kind]
        if shadow is not None and shadow.version == predictor.version:
            self._install_challenger(kind, None)  # promoted: no longer its own challenger
            log.info("%s/%s is promoted: its shadow ends", update.name, update.version)
        del current, predictor, shadow  # the old model is garbage now: the re-freeze frees it
        self._refreeze()
        return self._count(kind, "swapped")

    def _apply_challenger(self, kind: ModelKind, update: ModelUpdate) -> SwapOutcome:
        """Start (or, with ``clear``, end) the shadow of ``update``'s version. The champion
        is never touched: a refused challenger leaves everything as it was."""
        shadow, champion = self._challengers[kind], self._serving[kind]
        if update.clear:
            if shadow is not None and shadow.version == update.version:
                self._install_challenger(kind, None)
                log.info("%s/%s is no longer in shadow", update.name, update.version)
                del shadow
                self._refreeze()
            return self._count(kind, "shadow_cleared")
        if shadow is not None and shadow.version == update.version:
            return self._count(kind, "current")
        try:
            if champion is not None and champion.version == update.version:
                raise ArtifactError("it is the champion already")
            predictor = self._load_update(kind, update)
        except ArtifactError as exc:
            log.error("refusing %s/%s as a challenger (the champion is unaffected): %s",
                      update.name, update.version, exc)
            return self._count(kind, "shadow_refused")
        self._install_challenger(kind, predictor)
        log.info("shadowing %s/%s beside %s", update.name, update.version,
                 champion.version if champion else "no champion")
        del shadow, champion, predictor
        self._refreeze()
        return self._count(kind, "shadowing")

    def _refreeze(self) -> None:
        if self.freeze_heap:
            heap.freeze()

    def _install_challenger(self, kind: ModelKind, predictor: Predictor | None) -> None:
        old = self._challengers[kind]
        self._challengers[kind] = predictor
        label = METRIC_MODEL[kind]
        if old is not None:
            self.metrics.challenger_info.remove(label, old.version)
        if predictor is not None:
            self.metrics.challenger_info.labels(model=label, version=predictor.version).set(1)

    def _load(self, kind: ModelKind, name: str, version: str, *,
              expected_sha256: str | None) -> Predictor:
        return load_model(self.store, kind, name, version, expected_sha256=expected_sha256,
                          backend=self.backend, threads=self.threads)

    def _install(self, kind: ModelKind, predictor: Predictor) -> None:
        old = self._serving[kind]
        self._serving[kind] = predictor  # one reference swap: atomic for readers
        label = METRIC_MODEL[kind]
        if old is not None:
            self.metrics.model_info.remove(label, old.version)
        self.metrics.model_info.labels(model=label, version=predictor.version).set(1)

    def _count(self, kind: ModelKind, outcome: SwapOutcome) -> SwapOutcome:
        self.metrics.model_swaps.labels(model=METRIC_MODEL[kind], outcome=outcome).inc()
        return outcome

    def _count_other(self, outcome: SwapOutcome) -> SwapOutcome:
        self.metrics.model_swaps.labels(model=OTHER_MODEL, outcome=outcome).inc()
        return outcome


def follow_model_updates(app: faust.App, *, settings: Settings, models: ModelManager,
                         executor: Executor) -> None:
    """Apply every ``model-updates`` event (the whole compacted topic, from the start) with a
    group-less consumer of this worker's own: a broadcast. Loading and checking run on
    ``executor``, off the event loop and off the agents' threads; the swap itself is one
    reference, which each agent reads once per batch, so it lands between two batches."""

    @app.task
    async def follow() -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            settings.topic("model-updates"), bootstrap_servers=settings.bootstrap_servers,
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            client_id=f"{settings.app_id}-model-updates",
            **settings.kafka_security.client_kwargs())
        await consumer.start()
        loop = asyncio.get_running_loop()
        try:
            async for message in consumer:
                await loop.run_in_executor(executor, models.apply_raw, message.value)
        finally:
            await consumer.stop()


def _of_type(predictor: Predictor | None, cls: type[P]) -> P | None:
    return predictor if isinstance(predictor, cls) else None
