"""Join texts' scores with ground truth that arrives inline or later on ``labels``.

Pure logic, no Kafka: the agent feeds it scored texts and labels in consumption order and it
feeds each model's rolling AUC once per labelled id. Memory is bounded: at most ``pending_max``
scored texts wait for a label (and as many early labels wait for their text), none longer than
``ttl_s``; the oldest are dropped first and counted as ``expired``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tickcast.streams.evaluation import RollingAUC

__all__ = ["JoinOutcome", "LabelJoin"]

JoinOutcome = Literal["matched", "waiting", "duplicate", "unlabelled"]
OnMatch = Callable[[str, Mapping[str, float], int], None]
"""Called with a text's id, its scores and its label when the two meet."""


@dataclass(slots=True)
class LabelJoin:
    window_size: int
    pending_max: int
    ttl_s: float | None = None
    """Texts and labels waiting longer than this for each other expire (None: only the cap)."""
    clock: Callable[[], float] = time.monotonic
    aucs: dict[str, RollingAUC] = field(default_factory=dict)
    # Each maps id -> (time remembered, value), oldest first.
    _scores: OrderedDict[str, tuple[float, dict[str, float]]] = field(
        default_factory=OrderedDict)
    _early_labels: OrderedDict[str, tuple[float, int]] = field(default_factory=OrderedDict)
    _counted: OrderedDict[str, tuple[float, None]] = field(default_factory=OrderedDict)
    expired: int = 0

    def auc(self, model: str) -> RollingAUC:
        if model not in self.aucs:
            self.aucs[model] = RollingAUC(self.window_size)
        return self.aucs[model]

    @property
    def waiting_texts(self) -> int:
        return len(self._scores)

    @property
    def waiting_labels(self) -> int:
        return len(self._early_labels)

    def on_scored(self, text_id: str, scores: Mapping[str, float], label: int | None, *,
                  on_match: OnMatch | None = None) -> JoinOutcome:
        """A text was scored by each model in ``scores``; ``label`` if it came inline."""
        self._expire()
        if label is None:
            early = self._early_labels.pop(text_id, None)
            label = None if early is None else early[1]
        if label is None:
            if text_id not in self._counted:
                self._remember(self._scores, text_id, dict(scores))
            return "unlabelled"
        return self._count(text_id, scores, label, on_match)

    def on_label(self, text_id: str, label: int, *,
                 on_match: OnMatch | None = None) -> JoinOutcome:
        """Ground truth for ``text_id`` arrived on ``labels``."""
        self._expire()
        if text_id in self._counted:
            return "duplicate"
        waiting = self._scores.pop(text_id, None)
        if waiting is None:
            self._remember(self._early_labels, text_id, label)
            return "waiting"
        return self._count(text_id, waiting[1], label, on_match)

    def _count(self, text_id: str, scores: Mapping[str, float], label: int,
               on_match: OnMatch | None) -> JoinOutcome:
        if text_id in self._counted:
            return "duplicate"  # e.g. a text redelivered after a restart
        self._scores.pop(text_id, None)
        for model, score in scores.items():
            self.auc(model).update(score, label)
        if on_match is not None:
            on_match(text_id, scores, label)
        self._remember(self._counted, text_id, None)
        return "matched"

    def _remember(self, store: OrderedDict, key: str, value: object) -> None:
        store[key] = (self.clock(), value)
        store.move_to_end(key)
        while len(store) > self.pending_max:
            store.popitem(last=False)
            if store is not self._counted:
                self.expired += 1

    def _expire(self) -> None:
        """Forget texts and labels that waited longer than ``ttl_s`` for each other."""
        if self.ttl_s is None:
            return
        horizon = self.clock() - self.ttl_s
        for store in (self._scores, self._early_labels):
            while store and next(iter(store.values()))[0] < horizon:
                store.popitem(last=False)
                self.expired += 1
