"""Preprocessing shared, byte for byte, by training and serving.

* Prices: a window of the last ``W`` closes becomes log returns relative to the window's last
  close, divided by a *unit*; the target is the next log return in the same unit. With
  ``normalize="window"`` the unit is each window's own volatility (the standard deviation of
  its ``W - 1`` log returns), so the model sees every instrument at unit volatility and its
  outputs -- the point forecast and the quantiles of the interval head -- scale back with the
  volatility of the instrument it serves: a calmer or wilder symbol than the training one gets
  intervals of its own width. With ``normalize="fixed"`` (artifacts without intervals) the unit
  is ``scale``, the training period's standard deviation of daily log returns. Nothing depends
  on the price level, so a model trained on gold serves any symbol.
* Texts: a deterministic regex tokeniser and a frequency-ranked vocabulary fitted on training
  texts; ids 0 (padding) and 1 (out of vocabulary) are reserved.
* Characters (the text generator): every character seen at least ``min_count`` times in the
  training texts; id 0 marks the boundary between texts (a text starts after one and ends with
  one), id 1 stands for any other character.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import numpy as np

__all__ = [
    "SERVED_LEVELS",
    "VADER_SIDE_INPUTS",
    "CharVocabulary",
    "IntervalSpec",
    "PriceScaler",
    "Vocabulary",
    "make_windows",
    "normalize_text",
    "tokenize",
    "vader_scores",
    "window_features",
]

OOV: Final = 1
_TOKEN_RE: Final = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]|:\)|:\(|:d|<3", re.IGNORECASE)


# -- prices --------------------------------------------------------------------------------------
NORMALIZE: Final = ("fixed", "window")
SERVED_LEVELS: Final = (0.8, 0.95)
"""The central intervals a forecaster with an interval head serves on every forecast."""
MIN_UNIT: Final = 1e-3
"""Floor of a window's volatility, as a share of the training period's ``scale``: a flat
window's inputs are all zero whatever the unit, and its outputs keep a width that online
tracking can still move."""


@dataclass(frozen=True, slots=True)
class IntervalSpec:
    """The interval head: central intervals at ``levels`` (nominal coverage, ascending) from
    the quantiles ``(1 - level) / 2`` and ``(1 + level) / 2`` of the next return, which the
    model outputs after the point forecast, in :attr:`quantiles` order. ``offsets`` widen each
    level's interval on both sides (in the normalized unit): the split-conformal correction
    fitted on the validation period, so that a level covers what it claims there."""

    levels: tuple[float, ...]
    offsets: tuple[float, ...]
    method: str = "quantile-head+conformal"

    def __post_init__(self) -> None:
        if not self.levels or list(self.levels) != sorted(set(self.levels)):
            raise ValueError(f"interval levels must be ascending and distinct: {self.levels}")
        if not all(0 < level < 1 for level in self.levels):
            raise ValueError(f"interval levels must lie in (0, 1): {self.levels}")
        if len(self.offsets) != len(self.levels):
            raise ValueError(f"{len(self.offsets)} offsets for {len(self.levels)} levels")
        if not all(math.isfinite(o) for o in self.offsets):
            raise ValueError(f"interval offsets must be finite: {self.offsets}")

    @property
    def quantiles(self) -> tuple[float, ...]:
        """The quantile levels the model outputs, ascending (lower bounds, then upper)."""
        return tuple(sorted({q for level in self.levels for q in _tails(level)}))

    def columns(self, level: float) -> tuple[int, int]:
        """Indexes of ``level``'s lower and upper quantile among :attr:`quantiles`."""
        lo, hi = _tails(level)
        qs = self.quantiles
        return qs.index(lo), qs.index(hi)

    def to_dict(self) -> dict[str, Any]:
        return {"levels": list(self.levels), "offsets": list(self.offsets),
                "method": self.method}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> IntervalSpec:
        return cls(levels=tuple(float(x) for x in state["levels"]),
                   offsets=tuple(float(x) for x in state["offsets"]),
                   method=str(state.get("method", "quantile-head+conformal")))


def _tails(level: float) -> tuple[float, float]:
    return round((1 - level) / 2, 6), round((1 + level) / 2, 6)


@dataclass(frozen=True, slots=True)
class PriceScaler:
    """Windows -> model inputs and model outputs -> prices (see the module docstring)."""

    window: int
    scale: float
    """Standard deviation of the training period's daily log returns."""
    normalize: str = "fixed"
    """The unit of inputs and outputs: ``fixed`` (``scale``) or ``window`` (each window's own
    volatility)."""
    intervals: IntervalSpec | None = None
    """The interval head the model has, if any (its outputs follow the point forecast)."""

    def __post_init__(self) -> None:
        if self.normalize not in NORMALIZE:
            raise ValueError(f"normalize must be one of {NORMALIZE}, got {self.normalize!r}")
        if self.intervals is not None and self.normalize != "window":
            raise ValueError("an interval head needs normalize='window'")

    @classmethod
    def fit(cls, train_closes: np.ndarray, *, window: int, normalize: str = "fixed"
            ) -> PriceScaler:
        closes = np.asarray(train_closes, dtype=np.float64)
        if closes.ndim != 1 or len(closes) < window + 2:
            raise ValueError(f"need at least {window + 2} training closes, got {closes.shape}")
        if not np.all(np.isfinite(closes)) or np.any(closes <= 0):
            raise ValueError("closes must be finite and positive")
        scale = float(np.std(np.diff(np.log(closes))))
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"training closes have no variation (scale={scale})")
        return cls(window=window, scale=scale, normalize=normalize)

    @property
    def outputs(self) -> int:
        """Model output columns: the point forecast, then the interval quantiles."""
        return 1 + (len(self.intervals.quantiles) if self.intervals else 0)

    def to_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"window": self.window, "scale": self.scale}
        if self.normalize != "fixed":
            state["normalize"] = self.normalize
        if self.intervals is not None:
            state["intervals"] = self.intervals.to_dict()
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> PriceScaler:
        raw = state.get("intervals")
        return cls(window=int(state["window"]), scale=float(state["scale"]),
                   normalize=str(state.get("normalize", "fixed")),
                   intervals=IntervalSpec.from_dict(raw) if raw is not None else None)

    def units(self, windows: np.ndarray) -> np.ndarray:
        """``(n,)``: the unit each window's inputs and outputs are in."""
        w = np.asarray(windows, dtype=np.float64)
        if self.normalize == "fixed" or w.shape[1] < 3:
            return np.full(len(w), self.scale)
        return np.maximum(np.std(np.diff(np.log(w), axis=1), axis=1), MIN_UNIT * self.scale)

    def inputs(self, windows: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
        """``(n, W)`` closes -> ``(n, W, 1)`` float32 features (``units``: precomputed)."""
        return window_features(windows, self.units(windows) if units is None else units)

    def targets(self, windows: np.ndarray, next_closes: np.ndarray) -> np.ndarray:
        w = np.asarray(windows, dtype=np.float64)
        return (np.log(np.asarray(next_closes, dtype=np.float64) / w[:, -1])
                / self.units(w)).astype(np.float32)

    def prices(self, windows: np.ndarray, outputs: np.ndarray,
               units: np.ndarray | None = None) -> np.ndarray:
        """Point outputs (``(n,)`` or the model's ``(n, k)``, column 0 taken) -> forecasts."""
        w = np.asarray(windows, dtype=np.float64)
        out = np.asarray(outputs, dtype=np.float64)
        point = out[:, 0] if out.ndim == 2 else out.reshape(-1)
        return w[:, -1] * np.exp(point * (self.units(w) if units is None else units))

    def bounds(self, windows: np.ndarray, outputs: np.ndarray, levels: Sequence[float],
               units: np.ndarray | None = None) -> np.ndarray:
        """The model's ``(n, 1 + Q)`` outputs -> ``(n, len(levels), 2)`` price bounds of the
        central intervals at ``levels`` (ascending, each one of the head's levels),
        conformally widened. Quantiles that cross are sorted first; an interval that a
        negative offset would turn inside out collapses to its midpoint; each level's interval
        contains the one below it."""
        spec = self.intervals
        if spec is None:
            raise ValueError("this forecaster has no interval head")
        w = np.asarray(windows, dtype=np.float64)
        q = np.sort(np.asarray(outputs, dtype=np.float64)[:, 1:], axis=1)
        if q.shape[1] != len(spec.quantiles):
            raise ValueError(f"{q.shape[1]} quantile outputs for {len(spec.quantiles)} levels")
        units, last = self.units(w) if units is None else units, w[:, -1]
        out = np.empty((len(w), len(levels), 2))
        inner = (np.zeros(len(w)), np.zeros(len(w)))
        for j, level in enumerate(levels):
            lo, hi = spec.columns(level)
            off = spec.offsets[spec.levels.index(level)]
            low, high = q[:, lo] - off, q[:, hi] + off
            mid = (low + high) / 2
            low, high = np.minimum(low, mid), np.maximum(high, mid)
            if j:  # nested: never inside the level below
                low = np.minimum(low, inner[0])
                high = np.maximum(high, inner[1])
            inner = (low, high)
            out[:, j, 0] = last * np.exp(low * units)
            out[:, j, 1] = last * np.exp(high * units)
        return out


def window_features(windows: np.ndarray, unit: float | np.ndarray) -> np.ndarray:
    """Log closes relative to the window's last, in ``unit`` (one, or one per window)."""
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"windows must be 2-D (n, W), got shape {w.shape}")
    u = np.asarray(unit, dtype=np.float64)
    rel = np.log(w / w[:, -1:]) / (u[:, np.newaxis] if u.ndim == 1 else u)
    return rel[..., np.newaxis].astype(np.float32)


def make_windows(closes: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``(W closes, next close)`` pairs of a series, in time order."""
    c = np.asarray(closes, dtype=np.float64)
    if len(c) <= window:
        raise ValueError(f"need more than {window} closes, got {len(c)}")
    idx = np.arange(window)[None, :] + np.arange(len(c) - window)[:, None]
    return c[idx], c[window:]


# -- texts ---------------------------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    """Lowercased words (with contractions), ``!``/``?`` and a few emoticons."""
    return [t.lower() for t in _TOKEN_RE.findall(text)]


VADER_SIDE_INPUTS: Final = ("vader_neg", "vader_neu", "vader_pos", "vader_compound")
"""Sentence-level features a sentiment model may take beside its tokens, in this order: VADER's
``polarity_scores`` of the text (what its rules -- negation, boosters, "but", capitals,
punctuation, emoticons -- make of the word valences). :func:`vader_scores` computes them."""


def vader_scores(texts: Sequence[str], analyzer: Any) -> np.ndarray:
    """``(n, 4)`` float64: each text's VADER ``neg, neu, pos, compound``
    (:data:`VADER_SIDE_INPUTS`), from ``analyzer.polarity_scores`` -- the one function
    training and serving both call."""
    out = np.empty((len(texts), len(VADER_SIDE_INPUTS)), dtype=np.float64)
    polarity = analyzer.polarity_scores
    for row, text in enumerate(texts):
        s = polarity(text)
        out[row] = (s["neg"], s["neu"], s["pos"], s["compound"])
    return out


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]
    """Index ``i + 2`` is ``tokens[i]``; 0 pads, 1 is out of vocabulary."""
    max_len: int
    side_inputs: tuple[str, ...] = ()
    """Names (from :data:`VADER_SIDE_INPUTS`) of the features the model takes beside the
    tokens, in its input's column order; empty for a tokens-only model."""

    def __post_init__(self) -> None:
        unknown = [n for n in self.side_inputs if n not in VADER_SIDE_INPUTS]
        if unknown or len(set(self.side_inputs)) != len(self.side_inputs):
            raise ValueError(f"side inputs must be distinct names from {VADER_SIDE_INPUTS}, "
                             f"got {list(self.side_inputs)}")

    @property
    def side_columns(self) -> np.ndarray:
        """Columns of :func:`vader_scores`' matrix the model takes, in its order."""
        return np.array([VADER_SIDE_INPUTS.index(n) for n in self.side_inputs], dtype=np.intp)

    @classmethod
    def fit(cls, texts: Iterable[str], *, max_tokens: int = 20_000, min_count: int = 2,
            max_len: int = 64) -> Vocabulary:
        counts = Counter(tok for text in texts for tok in tokenize(text))
        ranked = sorted((t for t, n in counts.items() if n >= min_count),
                        key=lambda t: (-counts[t], t))
        return cls(tokens=tuple(ranked[: max_tokens - 2]), max_len=max_len)

    @property
    def size(self) -> int:
        return len(self.tokens) + 2

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, max_len)`` int32 ids, keeping each text's *last* ``max_len`` tokens,
        left-padded with 0 (the end of a text carries its verdict more often than not)."""
        index = self._index
        out = np.zeros((len(texts), self.max_len), dtype=np.int32)
        for row, text in enumerate(texts):
            ids = [index.get(tok, OOV) for tok in tokenize(text)][-self.max_len:]
            if ids:
                out[row, -len(ids):] = ids
        return out

    @cached_property
    def _index(self) -> dict[str, int]:
        return {tok: i + 2 for i, tok in enumerate(self.tokens)}

    def lexicon_features(self) -> np.ndarray:
        """``(size, 2)``: VADER's mean human valence of each token (scaled to -1..1) and
        whether VADER knows it; zeros for padding and out-of-vocabulary."""
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        lexicon = SentimentIntensityAnalyzer().lexicon
        features = np.zeros((self.size, 2), dtype=np.float32)
        for i, token in enumerate(self.tokens, start=2):
            if token in lexicon:
                features[i] = (float(lexicon[token]) / 4.0, 1.0)
        return features

    def to_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"tokens": list(self.tokens), "max_len": self.max_len}
        if self.side_inputs:
            state["side_inputs"] = list(self.side_inputs)
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Vocabulary:
        return cls(tokens=tuple(state["tokens"]), max_len=int(state["max_len"]),
                   side_inputs=tuple(state.get("side_inputs", ())))


# -- characters ----------------------------------------------------------------------------------
BOUNDARY: Final = 0
UNKNOWN_CHAR: Final = 1
_CONTROL_RE: Final = re.compile(r"\s")


def normalize_text(text: str) -> str:
    """Every whitespace character becomes a space (one for one), so ``\\n`` can never appear
    inside a text."""
    return _CONTROL_RE.sub(" ", text)


@dataclass(frozen=True)
class CharVocabulary:
    chars: tuple[str, ...]
    """Index ``i + 2`` is ``chars[i]``; 0 is the boundary between texts, 1 any other character."""

    @classmethod
    def fit(cls, texts: Iterable[str], *, min_count: int = 1) -> CharVocabulary:
        counts = Counter(ch for text in texts for ch in normalize_text(text))
        ranked = sorted((c for c, n in counts.items() if n >= min_count),
                        key=lambda c: (-counts[c], c))
        return cls(chars=tuple(ranked))

    def __post_init__(self) -> None:
        if any(len(c) != 1 for c in self.chars) or len(set(self.chars)) != len(self.chars):
            raise ValueError("chars must be distinct single characters")
        if any(_CONTROL_RE.fullmatch(c) and c != " " for c in self.chars):
            raise ValueError("chars must not hold whitespace other than the space")

    @property
    def size(self) -> int:
        return len(self.chars) + 2

    @cached_property
    def _index(self) -> dict[str, int]:
        return {ch: i + 2 for i, ch in enumerate(self.chars)}

    def encode(self, text: str) -> list[int]:
        """The ids of a text's characters, without boundaries (whitespace normalised)."""
        index = self._index
        return [index.get(ch, UNKNOWN_CHAR) for ch in normalize_text(text)]

    def encode_text(self, text: str) -> list[int]:
        """``[boundary, chars..., boundary]``: the sequence a language model is scored on."""
        return [BOUNDARY, *self.encode(text), BOUNDARY]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to text; the boundary and unknown ids have no character and are dropped."""
        return "".join(self.chars[i - 2] for i in ids if i >= 2)

    def to_dict(self) -> dict[str, Any]:
        return {"chars": list(self.chars), "boundary": BOUNDARY, "unknown": UNKNOWN_CHAR}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CharVocabulary:
        if (state.get("boundary"), state.get("unknown")) != (BOUNDARY, UNKNOWN_CHAR):
            raise ValueError(f"reserved ids {state.get('boundary')}/{state.get('unknown')} are "
                             f"not {BOUNDARY}/{UNKNOWN_CHAR}")
        return cls(chars=tuple(state["chars"]))
