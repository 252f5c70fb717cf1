"""Ready-to-call predictors: the one loader from artifact directory to batch inference.

:func:`load_predictor` verifies the artifact (manifest, every checksum), loads the Keras file
with ``safe_mode=True`` and no custom objects, and builds the call that serves it, by
``backend``:

* ``auto`` (the default): the first of ONNX Runtime, then NumPy, that supports the model
  (:mod:`tickcast.models.fastpath` builds both from the Keras weights at load time, the same
  outputs within 1e-5), else the ``tf.function`` below. At the batch sizes a stream calls with
  (a few to a few hundred rows) a ``tf.function`` call costs far more than these small models'
  arithmetic (``python -m tickcast_bench.backends`` measures every backend);
* ``tf-function``: the model in a ``tf.function`` with a fixed input signature, traced once,
  then called per batch without ``model.predict``'s per-call overhead.

Keras stays the training and artifact format. Both batch predictors are batch-first and
thread-safe for concurrent calls; the text generator (``tickcast.models.textgen``) steps one
character at a time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from tickcast.models.artifacts import (
    MODEL_FILE,
    PREPROCESSING_FILE,
    ArtifactError,
    Manifest,
    ModelKind,
    verify_artifact,
)
from tickcast.models.backend import keras, tensorflow
from tickcast.models.fastpath import (
    UnsupportedModelError,
    numpy_forecaster,
    numpy_head,
    numpy_sentiment,
    onnx_forecaster,
    onnx_sentiment,
)
from tickcast.models.preprocessing import (
    SERVED_LEVELS,
    VADER_SIDE_INPUTS,
    CharVocabulary,
    PriceScaler,
    Vocabulary,
    vader_scores,
)
from tickcast.models.registry import ModelStore, StoreError
from tickcast.models.textgen import TextGenerator

__all__ = ["BACKENDS", "Forecaster", "Prediction", "Predictor", "Prepared", "SentimentRNN",
           "load_keras_model", "load_latest", "load_predictor", "text_encoder"]

BACKENDS: Final = ("auto", "tf-function")
"""How a predictor runs its model (see the module docstring)."""


def load_keras_model(path: Path) -> Any:
    """Keras v3 file -> model, refusing Lambda layers, custom objects and pickles."""
    try:
        return keras().saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types; all mean "refused"
        raise ArtifactError(f"{path.name} could not be loaded safely: {type(exc).__name__}: "
                            f"{str(exc)[:300]}") from None


def _compiled(model: Any, shape: list[int | None], dtype: str) -> Any:
    tf = tensorflow()
    spec = tf.TensorSpec(shape=shape, dtype=getattr(tf, dtype))

    @tf.function(input_signature=[spec], autograph=False)
    def call(x: Any) -> Any:
        return model(x, training=False)

    return call


def _compiled_pair(model: Any, shapes: tuple[list[int | None], list[int | None]],
                   dtypes: tuple[str, str]) -> Any:
    """A two-input model (token ids, side inputs) in a ``tf.function``."""
    tf = tensorflow()
    specs = [tf.TensorSpec(shape=s, dtype=getattr(tf, d))
             for s, d in zip(shapes, dtypes, strict=True)]

    @tf.function(input_signature=specs, autograph=False)
    def call(x: Any, side: Any) -> Any:
        return model([x, side], training=False)

    return call


def _serving_call(model: Any, fast: tuple[tuple[str, Any], ...], shape: list[int | None],
                  dtype: str, backend: str) -> tuple[Any, str]:
    """(the call, its backend's name): with ``auto`` the first fast path that supports the
    model, else the ``tf.function``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        for name, build in fast:
            try:
                return build(model), name
            except UnsupportedModelError:
                continue
    return _compiled(model, shape, dtype), "tf-function"


@dataclass(frozen=True, slots=True)
class Prediction:
    """A batch of forecasts: the next close of each window and, from a forecaster with an
    interval head, the central intervals at :data:`SERVED_LEVELS`."""

    prices: np.ndarray
    """``(n,)`` point forecasts."""
    bounds: np.ndarray | None = None
    """``(n, len(SERVED_LEVELS), 2)``: lower and upper bound per level, or ``None``."""
    units: np.ndarray | None = None
    """``(n,)``: each window's volatility unit, with ``bounds`` (online tracking moves the
    bounds in it: :func:`tickcast.streams.evaluation.intervals.widen`)."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """Windows of closes made ready for the model call (:meth:`Forecaster.prepare`)."""

    windows: np.ndarray
    """``(n, W)`` closes, float64."""
    units: np.ndarray
    """``(n,)``: each window's volatility unit."""
    features: np.ndarray
    """``(n, W, 1)`` float32: the model's inputs."""


class Forecaster:
    """Windows of closes -> next-close forecasts (and intervals, if the model has a head)."""

    kind = "forecaster"

    def __init__(self, model: Any, scaler: PriceScaler, manifest: Manifest, *,
                 backend: str = "auto", threads: int = 1) -> None:
        self.model = model
        self.scaler = scaler
        self.manifest = manifest
        self.name = manifest.name
        self.version = manifest.version
        self.window = scaler.window
        spec = scaler.intervals
        if spec is not None and not set(SERVED_LEVELS) <= set(spec.levels):
            raise ValueError(f"the interval head has levels {spec.levels}; serving needs "
                             f"{SERVED_LEVELS}")
        self.intervals = spec is not None
        self._call, self.backend = _serving_call(
            model, (("onnx", functools.partial(onnx_forecaster, threads=threads)),
                    ("numpy", numpy_forecaster)),
            [None, scaler.window, 1], "float32", backend)

    def predict_outputs(self, features: np.ndarray) -> np.ndarray:
        """Model inputs -> its ``(n, 1 + Q)`` outputs (``(n, 1)`` without a head). On the ONNX
        path this is one call that releases the GIL for all of its work."""
        return np.asarray(self._call(features)).reshape(len(features), self.scaler.outputs)

    def prepare(self, windows: np.ndarray) -> Prepared:
        """``(n, W)`` closes -> what the model call takes and :meth:`complete` needs.

        :meth:`predict` is ``complete(prepared, predict_outputs(prepared.features))``. A
        caller that runs the model call on a thread of its own runs these two steps (small
        numpy calls, each needing the GIL) on its own thread: the model thread then takes the
        GIL only to start and to return, instead of waiting for it between every step while
        the other thread is busy."""
        windows = np.asarray(windows, dtype=np.float64)
        if windows.ndim != 2 or windows.shape[1] != self.window:
            raise ValueError(f"windows must have shape (n, {self.window}), got {windows.shape}")
        if len(windows) == 0:
            return Prepared(windows, np.zeros(0), np.zeros((0, self.window, 1), np.float32))
        units = self.scaler.units(windows)
        return Prepared(windows, units, self.scaler.inputs(windows, units))

    def complete(self, prepared: Prepared, outputs: np.ndarray) -> Prediction:
        """The model's outputs for ``prepared.features`` -> forecasts of the next close, with
        intervals if the model has them."""
        windows, units = prepared.windows, prepared.units
        if len(windows) == 0:
            return Prediction(np.zeros(0), np.zeros((0, len(SERVED_LEVELS), 2))
                              if self.intervals else None, np.zeros(0))
        prices = self.scaler.prices(windows, outputs, units)
        if not self.intervals:
            return Prediction(prices)
        return Prediction(prices, self.scaler.bounds(windows, outputs, SERVED_LEVELS, units),
                          units)

    def predict(self, windows: np.ndarray) -> Prediction:
        """``(n, W)`` closes -> forecasts of the next close, with intervals if the model has
        them: one model call for both."""
        prepared = self.prepare(windows)
        if len(prepared.windows) == 0:
            return self.complete(prepared, np.zeros((0, self.scaler.outputs)))
        return self.complete(prepared, self.predict_outputs(prepared.features))

    def predict_prices(self, windows: np.ndarray) -> np.ndarray:
        """``(n, W)`` closes -> ``(n,)`` forecasts of the next close."""
        return self.predict(windows).prices


class SentimentRNN:
    """Texts -> P(positive); implements the stream's ``TextScorer`` contract as ``rnn``.

    A model trained with side inputs (``vocabulary.side_inputs``: VADER's scores of the text)
    takes them beside the tokens: :meth:`score_with_vader` is given the scores the worker
    already computed for its VADER column, :meth:`score_batch` computes them itself.
    """

    kind = "sentiment"
    name = "rnn"

    def __init__(self, model: Any, vocabulary: Vocabulary, manifest: Manifest, *,
                 backend: str = "auto", threads: int = 1) -> None:
        self.model = model
        self.vocabulary = vocabulary
        self.manifest = manifest
        self.version = manifest.version
        self.side_inputs = vocabulary.side_inputs
        self._side_columns = vocabulary.side_columns
        self._vader: Any = None
        self.buckets = _length_buckets(vocabulary.max_len)
        if not self.side_inputs:
            # Any sequence length: a batch is cut to the tokens its texts have (score_ids).
            call, self.backend = _serving_call(model, _sentiment_paths(threads), [None, None],
                                               "int32", backend)
            self._call = lambda ids, side: call(ids)
            return
        self._call, self.backend = _side_input_call(model, backend, threads)

    @property
    def needs_vader(self) -> bool:
        """Whether the model takes VADER's scores beside the tokens."""
        return bool(self.side_inputs)

    def score_ids(self, ids: np.ndarray, vader: np.ndarray | None = None) -> np.ndarray:
        """``(n, max_len)`` left-padded ids (and, for a model with side inputs, the texts'
        ``(n, 4)`` :func:`~tickcast.models.preprocessing.vader_scores`) -> ``(n,)``
        P(positive).

        The embedding masks padding (``mask_zero``), so the LSTM skips padded steps and a text
        scores the same under any amount of left padding. So a batch is cut to the longest
        text it holds, and split by length (up to 16, 32, ... ``max_len`` tokens) where a
        separate call saves more steps than it costs: the LSTM's cost grows with the steps
        it runs, and most texts are far shorter than ``max_len``. Equal to scoring the full
        width: ``tests/models/test_predictors.py``.
        """
        ids = np.asarray(ids, dtype=np.int32)
        out = np.empty(len(ids), dtype=np.float64)
        if len(ids) == 0:
            return out
        side = self._side(len(ids), vader)
        lengths = np.count_nonzero(ids, axis=1)
        groups: list[np.ndarray] = []
        low = -1
        for high in self.buckets:
            rows = np.flatnonzero((lengths > low) & (lengths <= high))
            low = high
            if len(rows):
                groups.append(rows)
        carried = np.zeros(0, dtype=np.intp)
        for i, rows in enumerate(groups):
            rows = np.concatenate([carried, rows]) if len(carried) else rows
            width = max(int(lengths[rows].max()), 1)
            if i + 1 < len(groups):
                wider = int(lengths[groups[i + 1]].max())
                if len(rows) * (wider - width) < CALL_ROW_STEPS:  # not worth its own call
                    carried = rows
                    continue
            carried = np.zeros(0, dtype=np.intp)
            cut = np.ascontiguousarray(ids[rows, ids.shape[1] - width:])
            out[rows] = np.asarray(self._call(
                cut, None if side is None else side[rows])).reshape(-1)
        return out

    def _side(self, n: int, vader: np.ndarray | None) -> np.ndarray | None:
        if not self.side_inputs:
            return None
        if vader is None:
            raise ValueError(f"this model takes VADER's scores beside the tokens "
                             f"({', '.join(self.side_inputs)}); pass vader=")
        vader = np.asarray(vader, dtype=np.float32)
        if vader.shape != (n, len(VADER_SIDE_INPUTS)):
            raise ValueError(f"vader scores must have shape ({n}, {len(VADER_SIDE_INPUTS)}), "
                             f"got {vader.shape}")
        if not np.isfinite(vader).all():
            raise ValueError("vader scores must be finite")
        return np.ascontiguousarray(vader[:, self._side_columns])

    def score_with_vader(self, texts: Sequence[str], vader: np.ndarray) -> list[float]:
        """:meth:`score_batch` given the texts' VADER scores (``(n, 4)``, from
        :func:`~tickcast.models.preprocessing.vader_scores`), so VADER runs once per text."""
        if len(texts) == 0:
            return []
        return self.score_ids(self.vocabulary.encode_batch(texts),
                              vader if self.side_inputs else None).tolist()

    def score_batch(self, texts: Sequence[str]) -> list[float]:
        if len(texts) == 0:
            return []
        vader = None
        if self.side_inputs:
            if self._vader is None:  # the library's; the worker hands over its own scores
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                self._vader = SentimentIntensityAnalyzer()
            vader = vader_scores(texts, self._vader)
        return self.score_ids(self.vocabulary.encode_batch(texts), vader).tolist()


def text_encoder(model: Any) -> Any:
    """The recurrent part of a sentiment model: token ids -> its ``text_features`` (for a
    model with side inputs, what runs before they join; else the model itself)."""
    if len(model.inputs) == 1:
        return model
    return keras().Model(model.inputs[0], model.get_layer("text_features").output,
                         name="text_encoder")


def _sentiment_paths(threads: int) -> tuple[tuple[str, Any], ...]:
    """The fast paths a sentiment model's text part may run on, in order of preference."""
    return (("onnx", functools.partial(onnx_sentiment, threads=threads)),
            ("numpy", numpy_sentiment))


def _side_input_call(model: Any, backend: str, threads: int = 1) -> tuple[Any, str]:
    """``(call(ids, side) -> P(positive), backend)`` for a model with side inputs: with
    ``auto``, its text part (``token_ids`` -> ``text_features``) on the first fast path that
    supports it and the head after it in NumPy; else the whole model in a ``tf.function``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    side_input = model.inputs[1]
    if backend == "auto":
        try:
            encoder = text_encoder(model)
            head = numpy_head(model, [encoder.outputs[0], side_input])
            call, name = _serving_call(encoder, _sentiment_paths(threads), [None, None],
                                       "int32", "auto")
            if name != "tf-function":
                return (lambda ids, side: head(call(ids), side)), name
        except UnsupportedModelError:
            pass
    full = _compiled_pair(model, ([None, None], [None, int(side_input.shape[-1])]),
                          ("int32", "float32"))
    return full, "tf-function"


CALL_ROW_STEPS: Final = 1600
"""LSTM steps (rows x time steps) worth one more call: a call has a fixed cost beyond its steps,
so a length group whose padding to the next group's width costs fewer row-steps than this
rides along in that wider call instead of being scored on its own."""


def _length_buckets(max_len: int) -> tuple[int, ...]:
    """Sequence widths scored separately: ``max_len`` halved down to 16 (64 -> 16, 32, 64)."""
    widths = [max_len]
    while widths[-1] // 2 >= 16:
        widths.append(widths[-1] // 2)
    return tuple(reversed(widths))


def load_predictor(path: Path, *, expected_sha256: str | None = None, backend: str = "auto",
                   threads: int = 1) -> Forecaster | SentimentRNN | TextGenerator:
    """Verify and load an artifact directory into a predictor (the only loading path);
    ``backend`` (one of :data:`BACKENDS`) for the batch predictors, ``threads`` for each call
    on the ONNX path (ONNX Runtime's intra-op threads)."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    manifest = verify_artifact(path, expected_sha256=expected_sha256)
    try:
        state = json.loads((path / PREPROCESSING_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ArtifactError(f"{PREPROCESSING_FILE} is not JSON: {exc}") from None
    model = load_keras_model(path / MODEL_FILE)
    try:
        if manifest.kind == "forecaster":
            scaler = PriceScaler.from_dict(state)
            expected = (None, scaler.window, 1)
            if tuple(model.output_shape) != (None, scaler.outputs):
                raise ArtifactError(
                    f"model output shape {model.output_shape} does not match the "
                    f"preprocessing state (None, {scaler.outputs}): "
                    + ("a point forecast and the interval head's "
                       f"{scaler.outputs - 1} quantiles" if scaler.intervals
                       else "a point forecast only"))
            predictor: Forecaster | SentimentRNN | TextGenerator = Forecaster(
                model, scaler, manifest, backend=backend, threads=threads)
        elif manifest.kind == "textgen":
            expected = (None, None)
            predictor = TextGenerator(model, CharVocabulary.from_dict(state), manifest)
        else:
            vocabulary = Vocabulary.from_dict(state)
            declared = manifest.input.get("side_inputs")
            if declared is not None and tuple(declared) != vocabulary.side_inputs:
                raise ArtifactError(f"the manifest's side inputs {list(declared)} are not "
                                    f"{PREPROCESSING_FILE}'s {list(vocabulary.side_inputs)}")
            expected = _sentiment_inputs(model, vocabulary)
            predictor = SentimentRNN(model, vocabulary, manifest, backend=backend,
                                     threads=threads)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{PREPROCESSING_FILE} does not fit a {manifest.kind}: {exc}"
                            ) from None
    if _input_shape(model) != expected:
        raise ArtifactError(f"model input shape {model.input_shape} does not match the "
                            f"preprocessing state {expected}")
    return predictor


def _input_shape(model: Any) -> Any:
    shape = model.input_shape
    return tuple(tuple(s) for s in shape) if isinstance(shape, list) else tuple(shape)


def _sentiment_inputs(model: Any, vocabulary: Vocabulary) -> Any:
    """The input shape(s) the preprocessing state says the model must have; an
    :class:`ArtifactError` when its side inputs and the model's disagree."""
    ids = (None, vocabulary.max_len)
    if not vocabulary.side_inputs:
        if len(model.inputs) != 1:
            raise ArtifactError(f"the model takes {len(model.inputs)} inputs but "
                                f"{PREPROCESSING_FILE} names no side inputs")
        return ids
    names = [t.name for t in model.inputs]
    if len(model.inputs) != 2 or names[1] != "side_inputs":
        raise ArtifactError(f"{PREPROCESSING_FILE} names side inputs "
                            f"{list(vocabulary.side_inputs)} but the model's inputs are {names}")
    try:
        model.get_layer("text_features")
    except ValueError:
        raise ArtifactError("a model with side inputs must name its recurrent part's output "
                            "layer text_features") from None
    return (ids, (None, len(vocabulary.side_inputs)))


Predictor = Forecaster | SentimentRNN | TextGenerator


def load_latest(store: ModelStore, name: str, *, kind: ModelKind, hint: str = "",
                backend: str = "auto", threads: int = 1) -> Any:
    """The ``LATEST`` version of ``name`` through :func:`load_predictor`; a
    :class:`StoreError` (with ``hint`` appended: how to make one) when the store has none, an
    :class:`ArtifactError` when it holds another kind of model."""
    version = store.latest(name)
    if version is None:
        raise StoreError(f"no {name} model in {store.root}{hint}")
    predictor = load_predictor(store.path(name, version), backend=backend, threads=threads)
    if predictor.kind != kind:
        raise ArtifactError(f"{name}/{version} is a {predictor.kind} model, not a {kind}")
    return predictor
