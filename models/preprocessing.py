"""Preprocessing shared, byte for byte, by training and serving.

* Prices: a window of the last ``W`` closes becomes log returns relative to the window's last
  close, divided by ``scale`` (the standard deviation of daily log returns on the *training*
  period). The target is the next log return, scaled the same way. Nothing depends on the price
  level, so a model trained on gold serves any symbol; ``scale`` is the only fitted state.
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
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Final

import numpy as np

__all__ = [
    "CharVocabulary",
    "PriceScaler",
    "Vocabulary",
    "make_windows",
    "normalize_text",
    "tokenize",
    "window_features",
]

OOV: Final = 1
_TOKEN_RE: Final = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]|:\)|:\(|:d|<3", re.IGNORECASE)


# -- prices --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PriceScaler:
    """Windows -> model inputs and model outputs -> prices. ``scale`` is fitted on training data."""

    window: int
    scale: float

    @classmethod
    def fit(cls, train_closes: np.ndarray, *, window: int) -> PriceScaler:
        closes = np.asarray(train_closes, dtype=np.float64)
        if closes.ndim != 1 or len(closes) < window + 2:
            raise ValueError(f"need at least {window + 2} training closes, got {closes.shape}")
        if not np.all(np.isfinite(closes)) or np.any(closes <= 0):
            raise ValueError("closes must be finite and positive")
        scale = float(np.std(np.diff(np.log(closes))))
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"training closes have no variation (scale={scale})")
        return cls(window=window, scale=scale)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> PriceScaler:
        return cls(window=int(state["window"]), scale=float(state["scale"]))

    def inputs(self, windows: np.ndarray) -> np.ndarray:
        """``(n, W)`` closes -> ``(n, W, 1)`` float32 features."""
        return window_features(windows, self.scale)

    def targets(self, windows: np.ndarray, next_closes: np.ndarray) -> np.ndarray:
        last = np.asarray(windows, dtype=np.float64)[:, -1]
        return (np.log(np.asarray(next_closes, dtype=np.float64) / last) / self.scale).astype(
            np.float32)

    def prices(self, windows: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """Model outputs (scaled log returns) -> forecast prices."""
        last = np.asarray(windows, dtype=np.float64)[:, -1]
        return last * np.exp(np.asarray(outputs, dtype=np.float64).reshape(-1) * self.scale)


def window_features(windows: np.ndarray, scale: float) -> np.ndarray:
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"windows must be 2-D (n, W), got shape {w.shape}")
    rel = np.log(w / w[:, -1:]) / scale
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


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...]
    """Index ``i + 2`` is ``tokens[i]``; 0 pads, 1 is out of vocabulary."""
    max_len: int

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
        return {"tokens": list(self.tokens), "max_len": self.max_len}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Vocabulary:
        return cls(tokens=tuple(state["tokens"]), max_len=int(state["max_len"]))


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
