"""One batch of ``texts`` and ``labels`` in, ``sentiment`` and ``dead-letters`` out.

Order within the batch is kept (a label after its text in the batch matches it); scoring is
done once per model for all the batch's texts. Nothing in a batch can crash the worker: bad
events and texts a model cannot score become dead letters with the reason.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tickcast.models.preprocessing import VADER_SIDE_INPUTS
from tickcast.streams.deadletters import dead_letter
from tickcast.streams.evaluation import PairedAUC, RollingAgreement
from tickcast.streams.evaluation.forecast_error import Exports
from tickcast.streams.events import (
    EventError,
    LabelEvent,
    SentimentScore,
    TextEvent,
    decode_label,
    decode_text,
)
from tickcast.streams.gate import AUCEvidence, Policy, Verdict, decide
from tickcast.streams.messages import InMessage, OutMessage
from tickcast.streams.metrics import Metrics
from tickcast.streams.sentiment.join import LabelJoin
from tickcast.streams.sentiment.scoring import TextScorer, VaderInformedScorer, VaderScorer

__all__ = ["SentimentProcessor"]

log = logging.getLogger(__name__)

RNN_THRESHOLD = 0.5  # P(positive) >= 0.5 is a positive call
VADER_THRESHOLD = 0.05  # VADER's documented cut-off on the compound score


def _no_rnn() -> TextScorer | None:
    return None


class SentimentProcessor:
    """Scores with VADER and, when one serves, the RNN (read once per batch from ``rnn``)."""

    def __init__(self, *, vader: VaderScorer, join: LabelJoin, metrics: Metrics,
                 max_event_bytes: int, rnn: Callable[[], TextScorer | None] = _no_rnn,
                 window_size: int = 500, clock: Callable[[], float] = time.time,
                 challenger: Callable[[], TextScorer | None] = _no_rnn,
                 gate: Policy | None = None) -> None:
        self.vader = vader
        self.clock = clock
        """Wall time for ``scored_at`` and latency (a backtest passes event time)."""
        self.on_matched: Callable[[str, Mapping[str, float], int], None] | None = None
        """Called with a text's id, scores and label when they meet (a backtest records them)."""
        self.rnn = rnn
        self.scorers: list[TextScorer] = [vader]
        self.join = join
        self.metrics = metrics
        self.max_event_bytes = max_event_bytes
        self.agreement = RollingAgreement(window_size)
        self.paired = PairedAUC(window_size, exact=False)
        self.window_size = window_size
        self.challenger = challenger
        """The RNN in shadow beside the champion (read once per batch), if any."""
        self.gate = gate or Policy()
        self.challenger_version: str | None = None
        self.challenger_paired = PairedAUC(self.gate.max_events)
        """Challenger vs champion RNN on the same labelled texts; restarts with the
        challenger."""
        self._expired_exported = 0
        self.monotonic: Callable[[], float] = time.monotonic
        """Elapsed time, for how often large windows are recomputed (``refresh_due``)."""
        self._exports = Exports()
        """When each model's AUC was last computed."""
        self._outcomes: Counter[str] = Counter()
        """Label outcomes of the batch being processed (exported once per batch)."""
        metrics.register_model("vader", vader.version)
        metrics.register_model("rnn", None)

    # -- batch ------------------------------------------------------------------------------
    def process(self, batch: Sequence[InMessage]) -> list[OutMessage]:
        started = time.perf_counter()
        rnn = self.rnn()
        self.scorers = [self.vader] if rnn is None else [self.vader, rnn]
        rnn_version = None if rnn is None else rnn.version
        rival = self.challenger() if rnn is not None else None
        if (rival.version if rival is not None else None) != self.challenger_version:
            self._restart_challenger(rival.version if rival is not None else None)
        decoded: list[TextEvent | LabelEvent | OutMessage] = [self._decode(m) for m in batch]
        self._outcomes.clear()
        texts = [(i, d) for i, d in enumerate(decoded) if isinstance(d, TextEvent)]
        scores, vader = self._score([t for _, t in texts])
        self._score_challenger(rival, [t for _, t in texts], scores, vader)
        out: list[OutMessage] = []
        for (i, text), text_scores in zip(texts, scores, strict=True):
            if isinstance(text_scores, EventError):
                decoded[i] = self._reject(batch[i], text_scores)
            else:
                decoded[i] = self._sentiment(  # type: ignore[assignment]
                    text, text_scores, rnn_version)
        for item in decoded:
            if isinstance(item, LabelEvent):
                self._on_label(item)
            else:
                out.append(item)  # type: ignore[arg-type]
        self._count_inputs(batch, decoded)
        for outcome, n in self._outcomes.items():
            self.metrics.labels.labels(outcome=outcome).inc(n)
        self.metrics.events_out.labels(topic="sentiment").inc(
            sum(1 for o in out if o.topic == "sentiment"))
        self._export_state()
        now = self.clock()
        self.metrics.latency.labels(topic="sentiment").observe_many([
            max(now - msg.timestamp_ms / 1000, 0.0)
            for msg, item in zip(batch, decoded, strict=True)
            if msg.timestamp_ms and isinstance(item, OutMessage) and item.topic == "sentiment"])
        self.metrics.batch_size.labels(agent="sentiment").observe(len(batch))
        self.metrics.batch_seconds.labels(agent="sentiment").observe(
            time.perf_counter() - started)
        return out

    def _decode(self, msg: InMessage) -> TextEvent | LabelEvent | OutMessage:
        try:
            if msg.topic == "labels":
                event: TextEvent | LabelEvent = decode_label(
                    msg.value, max_bytes=self.max_event_bytes)
            else:
                event = decode_text(msg.value, max_bytes=self.max_event_bytes)
        except EventError as exc:
            return self._reject(msg, exc)
        return event

    def _count_inputs(self, batch: Sequence[InMessage],
                      results: Sequence[TextEvent | LabelEvent | OutMessage]) -> None:
        """One ``events_in`` outcome per input, from what it finally became: a text that
        decoded but could not be scored is a dead letter, not also ``ok``. Counted per batch:
        a ``labels()`` lookup per event adds up."""
        counts = Counter(
            (msg.topic, "dead_letter" if isinstance(result, OutMessage)
             and result.topic == "dead-letters" else "ok")
            for msg, result in zip(batch, results, strict=True))
        for (topic, outcome), n in counts.items():
            self.metrics.events_in.labels(topic=topic, outcome=outcome).inc(n)

    def _reject(self, msg: InMessage, error: EventError) -> OutMessage:
        """The dead letter of ``msg`` (its ``events_in`` outcome is counted per batch)."""
        self.metrics.dead_letters.labels(topic=msg.topic, reason=error.reason).inc()
        self.metrics.events_out.labels(topic="dead-letters").inc()
        value = dead_letter(source_topic=msg.topic, partition=msg.partition, offset=msg.offset,
                            key=msg.key, raw=msg.value, error=error)
        return OutMessage("dead-letters", msg.topic.encode(), value)

    # -- scoring ----------------------------------------------------------------------------
    def _score(self, texts: Sequence[TextEvent]
               ) -> tuple[list[dict[str, float] | EventError], np.ndarray]:
        """Per text, ``{model: probability}`` from every scorer, or why it could not be scored;
        and VADER's ``(n, 4)`` scores of the texts (NaN where VADER failed), computed once and
        handed to the scorers that read them."""
        results: list[dict[str, float] | EventError] = [{} for _ in texts]
        if not texts:
            return results, np.zeros((0, len(VADER_SIDE_INPUTS)))
        bodies = [t.text for t in texts]
        vader, values = self._score_vader(bodies)
        self._merge(results, self.vader.name, values)
        ok = [i for i, v in enumerate(values) if not isinstance(v, EventError)]
        for scorer in self.scorers[1:]:
            if isinstance(scorer, VaderInformedScorer):
                # A text VADER could not score is a dead letter already: skip it here.
                scored = self._score_with(scorer, [bodies[i] for i in ok], vader[ok])
                values = [EventError("scoring_failed", "no VADER scores")] * len(bodies)
                for i, value in zip(ok, scored, strict=True):
                    values[i] = value
            else:
                values = self._score_with(scorer, bodies)
            self._merge(results, scorer.name, values)
        return results, vader

    def _merge(self, results: list[dict[str, float] | EventError], name: str,
               values: Sequence[float | EventError]) -> None:
        for i, value in enumerate(values):
            current = results[i]
            if isinstance(current, dict):
                results[i] = value if isinstance(value, EventError) else {
                    **current, name: value}
        self.metrics.scored.labels(model=name).inc(sum(1 for r in results
                                                       if isinstance(r, dict)))

    def _score_vader(self, bodies: list[str]) -> tuple[np.ndarray, list[float | EventError]]:
        """VADER's scores of each text (a NaN row where it fails) and its probability."""
        vader = np.full((len(bodies), len(VADER_SIDE_INPUTS)), np.nan)

        def call(texts: list[str], rows: slice) -> list[float]:
            scores = self.vader.scores_batch(texts)
            probabilities = _checked(self.vader, texts, VaderScorer.probabilities(scores))
            vader[rows] = scores
            return probabilities

        return vader, self._batch_or_singles(self.vader, bodies, call)

    def _score_challenger(self, rival: TextScorer | None, texts: Sequence[TextEvent],
                          scores: list[dict[str, float] | EventError],
                          vader: np.ndarray) -> None:
        """Add the challenger's score under its own key to each text the champion scored; a
        text the challenger cannot score only lacks that score."""
        if rival is None:
            return
        index = [i for i, s in enumerate(scores) if isinstance(s, dict)]
        if not index:
            return
        values = self._score_with(rival, [texts[i].text for i in index], vader[index])
        key, scored = self._challenger_key(), 0
        for i, value in zip(index, values, strict=True):
            if not isinstance(value, EventError):
                scores[i][key] = value  # type: ignore[index]
                scored += 1
        self.metrics.challenger_outputs.labels(model="rnn", outcome="scored").inc(scored)
        if len(index) - scored:
            self.metrics.challenger_outputs.labels(model="rnn", outcome="failed").inc(
                len(index) - scored)

    def _challenger_key(self) -> str:
        """The challenger's key in a text's scores: per version, so evidence never mixes."""
        return f"challenger:{self.challenger_version}"

    def _restart_challenger(self, version: str | None) -> None:
        log.info("sentiment evidence on the challenger restarts: %s -> %s",
                 self.challenger_version, version)
        old, self.challenger_version = self.challenger_version, version
        self.challenger_paired = PairedAUC(self.gate.max_events)
        # The empty evidence first, then the tag saying whose it is (see the prices side).
        self._export_challenger()
        self.metrics.export_evidence_version("rnn", old, version)

    def _score_with(self, scorer: TextScorer, bodies: list[str],
                    vader: np.ndarray | None = None) -> list[float | EventError]:
        """``scorer``'s probability per text (given ``vader``, the texts' VADER scores, when
        it reads them); on a failed batch, text by text, with the failures as errors."""
        def call(texts: list[str], rows: slice) -> list[float]:
            return _checked(scorer, texts, _call(scorer, texts,
                                                 None if vader is None else vader[rows]))

        return self._batch_or_singles(scorer, bodies, call)

    @staticmethod
    def _batch_or_singles(scorer: TextScorer, bodies: list[str],
                          call: Callable[[list[str], slice], list[float]]
                          ) -> list[float | EventError]:
        """``call(bodies, rows)`` on the whole batch; if it raises, text by text, each failure
        an error naming ``scorer``."""
        try:
            return list(call(bodies, slice(None)))
        except Exception:
            log.exception("%s failed on a batch of %d; retrying one by one", scorer.name,
                          len(bodies))
        singles: list[float | EventError] = []
        for i, body in enumerate(bodies):
            try:
                singles.extend(call([body], slice(i, i + 1)))
            except Exception as exc:  # noqa: BLE001
                singles.append(_scoring_failed(scorer, exc))
        return singles

    # -- outputs and evaluation -------------------------------------------------------------
    def _sentiment(self, text: TextEvent, scores: dict[str, float],
                   rnn_version: str | None) -> OutMessage:
        rival = scores.get(self._challenger_key()) if self.challenger_version else None
        compound = round(scores["vader"] * 2.0 - 1.0, 4)  # VADER rounds to 4 decimals
        agree = None
        if "rnn" in scores:
            rnn_positive = scores["rnn"] >= RNN_THRESHOLD
            vader_positive = compound >= VADER_THRESHOLD
            agree = rnn_positive == vader_positive
            self.agreement.update(rnn_positive, vader_positive)
        record = SentimentScore(
            id=text.id,
            ts=text.ts,
            vader_compound=compound,
            vader_score=scores["vader"],
            vader_version=self.vader.version,
            rnn_score=scores.get("rnn"),
            rnn_version=rnn_version,
            scored_at=int(self.clock() * 1000),
            symbol=text.symbol,
            label=text.label,
            agree=agree,
            challenger_version=self.challenger_version if rival is not None else None,
            challenger_score=rival,
        )
        outcome = self.join.on_scored(text.id, scores, text.label, on_match=self._on_match)
        if outcome in ("matched", "duplicate"):
            self._outcomes[outcome] += 1
        # Finite throughout: every score passed _checked (a probability in [0, 1]).
        return OutMessage("sentiment", text.id.encode(), record.to_bytes(checked=True))

    def _on_label(self, label: LabelEvent) -> None:
        outcome = self.join.on_label(label.id, label.label, on_match=self._on_match)
        self._outcomes[outcome] += 1

    def _on_match(self, text_id: str, scores: Mapping[str, float], label: int) -> None:
        if "rnn" in scores:
            self.paired.update(scores["rnn"], scores["vader"], label)
            rival = scores.get(self._challenger_key()) if self.challenger_version else None
            if rival is not None:
                self.challenger_paired.update(rival, scores["rnn"], label)
        if self.on_matched is not None:
            self.on_matched(text_id, scores, label)

    def evidence(self) -> AUCEvidence | None:
        """The challenger against the champion RNN, for the gate (``None``: no test yet)."""
        c = self.challenger_paired.get() if self.challenger_version else None
        return None if c is None else AUCEvidence(n=c.n, diff=c.diff, low=c.low, high=c.high)

    def verdict(self) -> Verdict:
        return decide(self.evidence(), self.gate)

    def _export_challenger(self) -> None:
        m = self.metrics
        current = self._challenger_key() if self.challenger_version else None
        for model in [k for k in self.join.aucs if k.startswith("challenger:") and k != current]:
            del self.join.aucs[model]  # a challenger no longer in shadow
            self._exports.forget(model)
        rival = self.join.aucs.get(current) if current else None
        if current is None or rival is None:
            m.auc.labels(model="challenger").set(math.nan)
        elif self._exports.due(current, rival, self.monotonic):
            rival_auc = rival.get()
            m.auc.labels(model="challenger").set(math.nan if rival_auc is None else rival_auc)
        comparison = self.challenger_paired.get() if current else None
        for bound, attr in (("estimate", "diff"), ("low", "low"), ("high", "high")):
            m.challenger_auc_diff.labels(bound=bound).set(
                math.nan if comparison is None else getattr(comparison, attr))
        m.challenger_window.labels(model="rnn").set(len(self.challenger_paired) if current
                                                    else 0)
        m.export_verdict("rnn", self.verdict() if current else None)

    def _export_state(self) -> None:
        m = self.metrics
        self._export_challenger()
        for model, auc in self.join.aucs.items():
            if model.startswith("challenger:"):
                continue
            if self._exports.due(model, auc, self.monotonic):
                value = auc.get()
                m.auc.labels(model=model).set(math.nan if value is None else value)
            m.auc_window.labels(model=model, label="1").set(auc.positives)
            m.auc_window.labels(model=model, label="0").set(auc.negatives)
        agreement, kappa = self.agreement.agreement(), self.agreement.kappa()
        m.agreement.set(math.nan if agreement is None else agreement)
        m.kappa.set(math.nan if kappa is None else kappa)
        comparison = self.paired.get()
        for bound, attr in (("estimate", "diff"), ("low", "low"), ("high", "high")):
            value = math.nan if comparison is None else getattr(comparison, attr)
            m.auc_diff.labels(bound=bound).set(value)
        m.pending.labels(kind="texts").set(self.join.waiting_texts)
        m.pending.labels(kind="labels").set(self.join.waiting_labels)
        if self.join.expired > self._expired_exported:
            m.labels.labels(outcome="expired").inc(self.join.expired - self._expired_exported)
            self._expired_exported = self.join.expired


def _call(scorer: TextScorer, bodies: list[str], vader: np.ndarray | None) -> Sequence[float]:
    if vader is not None and isinstance(scorer, VaderInformedScorer):
        return scorer.score_with_vader(bodies, vader)
    return scorer.score_batch(bodies)


def _scoring_failed(scorer: TextScorer, exc: Exception) -> EventError:
    return EventError("scoring_failed", f"{scorer.name} could not score this text: "
                      f"{type(exc).__name__}: {exc}"[:300])


def _checked(scorer: TextScorer, bodies: list[str], scores: Sequence[float]) -> list[float]:
    """Enforce the scorer contract: one finite probability per text."""
    if len(scores) != len(bodies):
        raise ValueError(f"{scorer.name} returned {len(scores)} scores for {len(bodies)} texts")
    values = [float(s) for s in scores]
    bad = [v for v in values if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise ValueError(f"{scorer.name} returned scores outside [0, 1]: {bad[:3]}")
    return values
