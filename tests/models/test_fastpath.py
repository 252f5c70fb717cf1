"""The serving fast paths (NumPy, and ONNX Runtime when installed) give what Keras gives at
``training=False``, within 1e-5, on small random models of the serving architectures and their
variants; masked steps keep the state, as Keras' do; anything else is refused by name."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tickcast.models.architectures import build_forecaster, build_sentiment_rnn
from tickcast.models.backend import keras, set_seed
from tickcast.models.fastpath import (
    UnsupportedModelError,
    numpy_forecaster,
    numpy_forward,
    numpy_sentiment,
    onnx_forecaster,
    onnx_forward,
    onnx_sentiment,
)

TOLERANCE = 1e-5
VOCAB, MAX_LEN = 40, 12


def _onnx_or_skip() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")


def _randomize(model: Any, seed: int, scale: float = 0.6) -> Any:
    """Random weights large enough to reach the gates' nonlinear range (fresh Keras weights
    barely leave the linear part of tanh and sigmoid)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, scale, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def _reference(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x, training=False))


def _left_padded(rng: np.random.Generator, n: int, width: int = MAX_LEN) -> np.ndarray:
    """Token ids as the vocabulary encodes them: a text's ids at the right, zeros before; one
    row empty and one full."""
    ids = np.zeros((n, width), np.int32)
    lengths = rng.integers(1, width + 1, n)
    lengths[0], lengths[-1] = 0, width
    for row, length in enumerate(lengths):
        if length:
            ids[row, width - length:] = rng.integers(1, VOCAB, length)
    return ids


def _windows(rng: np.random.Generator, n: int, window: int) -> np.ndarray:
    return rng.normal(0, 1, (n, window, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def forecaster() -> Any:
    set_seed(1)
    return _randomize(build_forecaster(window=10, units=(8, 5)), seed=1)


@pytest.fixture(scope="module")
def sentiment() -> Any:
    set_seed(2)
    lexicon = np.random.default_rng(2).normal(0, 1, (VOCAB, 2)).astype(np.float32)
    return _randomize(build_sentiment_rnn(vocab_size=VOCAB, max_len=MAX_LEN, embed_dim=6,
                                          units=5, lexicon=lexicon), seed=2)


BACKENDS = {"numpy": (numpy_forecaster, numpy_sentiment),
            "numpy-unfolded": (lambda m: numpy_forecaster(m, fold_limit_bytes=0),
                               lambda m: numpy_sentiment(m, fold_limit_bytes=0)),
            "onnx": (onnx_forecaster, onnx_sentiment)}


def _backend(name: str, which: int) -> Callable[[Any], Callable[[np.ndarray], np.ndarray]]:
    if name == "onnx":
        _onnx_or_skip()
    return BACKENDS[name][which]  # type: ignore[return-value]


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_forecaster_matches_keras(forecaster: Any, backend: str) -> None:
    forward = _backend(backend, 0)(forecaster)
    rng = np.random.default_rng(0)
    for n in (1, 3, 17):
        x = _windows(rng, n, 10)
        got = forward(x)
        assert got.shape == (n, 1)
        assert np.max(np.abs(got - _reference(forecaster, x))) <= TOLERANCE
    assert forward(np.zeros((0, 10, 1), np.float32)).shape == (0, 1)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_sentiment_matches_keras_on_left_padded_ids(sentiment: Any, backend: str) -> None:
    forward = _backend(backend, 1)(sentiment)
    ids = _left_padded(np.random.default_rng(3), 24)
    got = forward(ids)
    assert got.shape == (24, 1)
    assert np.max(np.abs(got - _reference(sentiment, ids))) <= TOLERANCE
    # Masked steps keep the state: any amount of left padding scores the same, so serving
    # may cut a batch to its longest text (SentimentRNN.score_ids).
    short = ids[np.count_nonzero(ids, axis=1) <= 5]
    assert np.max(np.abs(forward(short[:, -5:]) - forward(short))) <= TOLERANCE


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_mask_with_holes_is_masked_step_by_step(sentiment: Any, backend: str) -> None:
    """Zeros inside a text are skipped, not embedded (ONNX hands such a call to NumPy)."""
    forward = _backend(backend, 1)(sentiment)
    ids = np.random.default_rng(4).integers(1, VOCAB, (6, MAX_LEN)).astype(np.int32)
    ids[:, 3] = 0
    ids[2, 7:] = 0  # right padding too
    assert np.max(np.abs(forward(ids) - _reference(sentiment, ids))) <= TOLERANCE


def _variant(name: str) -> Any:
    """Small models around the serving architectures: other cells, options, merges."""
    k = keras()
    set_seed(5)
    ids = k.Input(shape=(MAX_LEN,), dtype="int32")
    masked = k.layers.Embedding(VOCAB, 6, mask_zero=True)(ids)
    floats = k.Input(shape=(MAX_LEN, 3))
    if name == "bigru-reset-after-ave":
        inputs = ids
        x = k.layers.Bidirectional(k.layers.GRU(5), merge_mode="ave")(masked)
    elif name == "bigru-reset-before":
        inputs = ids
        x = k.layers.Bidirectional(k.layers.GRU(5, reset_after=False))(masked)
    elif name == "gru-sequences-then-lstm":
        inputs = floats
        x = k.layers.GRU(4, return_sequences=True)(floats)
        x = k.layers.LSTM(3, go_backwards=True)(x)
    elif name == "stacked-masked-lstm":
        inputs = ids
        x = k.layers.LSTM(4, return_sequences=True)(masked)
        x = k.layers.LSTM(3)(x)
    elif name == "backwards-zero-output":
        inputs = ids
        x = k.layers.LSTM(4, go_backwards=True, return_sequences=True,
                          zero_output_for_mask=True)(masked)
        x = k.layers.Dense(2, activation="tanh")(x)
        x = k.layers.LSTM(3)(x)
    elif name == "bilstm-sequences-softmax":
        inputs = floats
        x = k.layers.Bidirectional(k.layers.LSTM(4, return_sequences=True))(floats)
        x = k.layers.Bidirectional(k.layers.LSTM(3), merge_mode="mul")(x)
        x = k.layers.Dense(3, activation="relu")(x)
        x = k.layers.Dense(2, activation="softmax")(x)
    else:
        raise AssertionError(name)
    outputs = k.layers.Dense(1, activation="sigmoid")(x)
    return _randomize(k.Model(inputs, outputs), seed=5)


VARIANTS = ["bigru-reset-after-ave", "bigru-reset-before", "gru-sequences-then-lstm",
            "stacked-masked-lstm", "backwards-zero-output", "bilstm-sequences-softmax"]
ONNX_REFUSES = {"bigru-reset-after-ave": "merge_mode", "gru-sequences-then-lstm": None,
                "stacked-masked-lstm": "masked RNN returning sequences",
                "backwards-zero-output": "masked RNN returning sequences",
                "bilstm-sequences-softmax": "merge_mode"}


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_match_keras(name: str) -> None:
    model = _variant(name)
    rng = np.random.default_rng(6)
    if model.inputs[0].dtype == "int32":
        x = _left_padded(rng, 9)
        x[3, 4] = 0  # a hole too
    else:
        x = rng.normal(0, 1, (9, MAX_LEN, 3)).astype(np.float32)
    reference = _reference(model, x)
    assert np.max(np.abs(numpy_forward(model)(x) - reference)) <= TOLERANCE
    assert np.max(np.abs(numpy_forward(model, fold_limit_bytes=0)(x) - reference)) <= TOLERANCE
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    refusal = ONNX_REFUSES.get(name)
    if refusal:
        with pytest.raises(UnsupportedModelError, match=refusal):
            onnx_forward(model)
    else:
        assert np.max(np.abs(onnx_forward(model)(x) - reference)) <= TOLERANCE


def test_an_unsupported_layer_is_refused_by_name() -> None:
    k = keras()
    inputs = k.Input(shape=(10, 1))
    x = k.layers.Conv1D(4, 3, name="smoothing")(inputs)
    outputs = k.layers.Dense(1)(k.layers.LSTM(4)(x))
    model = k.Model(inputs, outputs)
    with pytest.raises(UnsupportedModelError, match=r"'smoothing' \(.*Conv1D\)"):
        numpy_forecaster(model)
    with pytest.raises(ValueError, match="smoothing"):  # serving may catch plain ValueError
        numpy_forward(model)


def test_unsupported_options_are_refused_by_name() -> None:
    k = keras()
    inputs = k.Input(shape=(10, 1))
    model = k.Model(inputs, k.layers.LSTM(3, activation="relu", name="relu_lstm")(inputs))
    with pytest.raises(UnsupportedModelError, match=r"'relu_lstm'.*activation"):
        numpy_forecaster(model)
    ids = k.Input(shape=(MAX_LEN,), dtype="int32")
    model = k.Model(ids, k.layers.LSTM(3, name="lstm")(k.layers.Embedding(VOCAB, 4)(ids)))
    with pytest.raises(UnsupportedModelError, match="not float32"):
        numpy_forecaster(model)


def test_bad_inputs_are_clear_errors(forecaster: Any, sentiment: Any) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        numpy_forecaster(forecaster)(np.zeros((2, 10, 3), np.float32))
    forward = numpy_sentiment(sentiment)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 40\)"):
        forward(np.full((1, MAX_LEN), VOCAB, np.int32))
    with pytest.raises(ValueError, match="token ids must be integers"):
        forward(np.zeros((1, MAX_LEN), np.float32))


def test_importing_the_fast_path_does_not_import_tensorflow() -> None:
    code = ("import sys, tickcast.models.fastpath; "
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
