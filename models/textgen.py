"""Text generation with a character LSTM: one character per step, states carried over.

Each step runs the ``embedding`` layer, each ``lstm_<i>`` layer's *cell* and the ``logits`` layer
of a model built by :func:`tickcast.models.architectures.build_char_lm` on one character per
text, carrying the LSTM states — a new character costs the same however long the text already
is (re-running the model on the whole prefix would cost O(length) per character). The steps
run inside one ``tf.function`` with a fixed input signature, in chunks of up to
:data:`CHUNK` characters, so Python and the TensorFlow call overhead are paid once per chunk
instead of once per character. Within a chunk, a text's prompt characters are fed as
given; after its prompt, each step's sample is the next step's input.

Sampling draws the next id from ``softmax(logits / temperature)`` by the inverse CDF at one
uniform number per text and step. The uniform numbers come from a seeded
:class:`numpy.random.Generator`, so the same model, arguments and seed give the same texts.
The boundary id ends a text (``stop_at_end``) or is never sampled; the unknown-character id is
never sampled.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import numpy as np

from tickcast.models.artifacts import Manifest
from tickcast.models.backend import keras, tensorflow
from tickcast.models.preprocessing import (
    BOUNDARY,
    UNKNOWN_CHAR,
    CharVocabulary,
    normalize_text,
)

__all__ = ["CHUNK", "TextGenerator"]

CHUNK: Final = 64
"""Steps per ``tf.function`` call; a batch whose texts have all ended stops after its chunk."""
_PASSIVE_LAYERS = ("InputLayer", "Dropout")  # no effect at inference
_BANNED = -1e30  # added to a banned id's scaled logit: probability exactly 0


class TextGenerator:
    """Prompts -> sampled continuations, character by character."""

    kind = "textgen"

    def __init__(self, model: Any, vocabulary: CharVocabulary,
                 manifest: Manifest | None = None) -> None:
        self.model = model
        self.vocabulary = vocabulary
        self.manifest = manifest
        self.name = manifest.name if manifest else model.name
        self.version = manifest.version if manifest else "unsaved"
        embedding, self._lstms, logits = _char_lm_layers(model, vocabulary.size)
        self.units = tuple(int(layer.units) for layer in self._lstms)
        self._steps = _compiled_steps(embedding, self._lstms, logits)

    def generate(self, prompts: Sequence[str], *, length: int, temperature: float = 1.0,
                 seed: int | None = None, stop_at_end: bool = False) -> list[str]:
        """One text per prompt: the prompt (whitespace as spaces) followed by ``length``
        sampled characters (fewer when ``stop_at_end`` and the model ends the text first)."""
        return self._generate(prompts, length=length, temperature=temperature,
                              rng=np.random.default_rng(seed), stop_at_end=stop_at_end)

    def stream(self, *, prompts: Sequence[str] = ("",), temperature: float = 1.0,
               seed: int | None = None, max_length: int = 280, batch_size: int = 16
               ) -> Iterator[str]:
        """Endless whole texts (each ends where the model ends it, or at ``max_length``
        characters after its prompt), generated ``batch_size`` at a time; prompts are drawn
        at random from ``prompts``. Whitespace-only texts are skipped."""
        if not prompts or isinstance(prompts, str):
            raise ValueError("prompts must be a sequence of at least one prompt ('' for none)")
        if max_length < 1 or batch_size < 1 or not temperature > 0:
            raise ValueError(f"need max_length >= 1, batch_size >= 1 and temperature > 0; got "
                             f"{max_length}, {batch_size}, {temperature}")
        return self._stream(list(prompts), temperature=temperature,
                            rng=np.random.default_rng(seed), max_length=max_length,
                            batch_size=batch_size)

    def _stream(self, prompts: list[str], *, temperature: float, rng: np.random.Generator,
                max_length: int, batch_size: int) -> Iterator[str]:
        while True:
            chosen = [prompts[i] for i in rng.integers(len(prompts), size=batch_size)]
            for text in self._generate(chosen, length=max_length, temperature=temperature,
                                       rng=rng, stop_at_end=True):
                if text.strip():
                    yield text.strip()

    def _generate(self, prompts: Sequence[str], *, length: int, temperature: float,
                  rng: np.random.Generator, stop_at_end: bool) -> list[str]:
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, not one string")
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not prompts or length == 0:
            return [normalize_text(p) for p in prompts]
        sequences = [[BOUNDARY, *self.vocabulary.encode(p)] for p in prompts]
        generated = self._run(sequences, length=length, temperature=temperature, rng=rng,
                              stop_at_end=stop_at_end)
        return [normalize_text(prompt) + self.vocabulary.decode(ids)
                for prompt, ids in zip(prompts, generated, strict=True)]

    def _run(self, sequences: list[list[int]], *, length: int, temperature: float,
             rng: np.random.Generator, stop_at_end: bool) -> list[list[int]]:
        """Feed each row its prompt, then its own samples; returns the generated ids."""
        n = len(sequences)
        lens = np.array([len(s) for s in sequences])
        steps = int(lens.max()) + length - 1  # step t predicts position t + 1
        forced = np.full((n, steps), -1, dtype=np.int32)  # -1: feed the sample
        for row, seq in enumerate(sequences):
            forced[row, :len(seq) - 1] = seq[1:]
        bias = np.zeros(self.vocabulary.size, dtype=np.float64)
        bias[[UNKNOWN_CHAR] if stop_at_end else [UNKNOWN_CHAR, BOUNDARY]] = _BANNED
        ids = np.array([seq[0] for seq in sequences], dtype=np.int32)
        states: Any = [(np.zeros((n, u), np.float32), np.zeros((n, u), np.float32))
                       for u in self.units]
        chunks = []
        for start in range(0, steps, CHUNK):
            stop = min(start + CHUNK, steps)
            sampled, ids, states = self._steps(ids, states, forced[:, start:stop],
                                               rng.random((n, stop - start)),
                                               1.0 / temperature, bias)
            chunks.append(np.asarray(sampled).T)
            if stop_at_end and _all_ended(np.concatenate(chunks, axis=1), lens):
                break
        sampled = np.concatenate(chunks, axis=1)
        rows = []
        for row, first in enumerate(lens - 1):
            ids_ = sampled[row, first:first + length]
            end = np.flatnonzero(ids_ == BOUNDARY)
            rows.append(ids_[: end[0]].tolist() if len(end) else ids_.tolist())
        return rows


def _all_ended(sampled: np.ndarray, lens: np.ndarray) -> bool:
    return all(np.any(sampled[row, first:] == BOUNDARY) for row, first in enumerate(lens - 1))


def _char_lm_layers(model: Any, vocab_size: int) -> tuple[Any, list[Any], Any]:
    """The ``embedding``, ``lstm_<i>`` and ``logits`` layers, in order; anything else (a
    layer that would change the step's arithmetic) is refused."""
    k = keras()
    active = [layer for layer in model.layers
              if type(layer).__name__ not in _PASSIVE_LAYERS]
    names = [layer.name for layer in active]
    expected = ["embedding", *(f"lstm_{i}" for i in range(len(active) - 2)), "logits"]
    if len(active) < 3 or names != expected:
        raise ValueError(f"not a character LSTM language model: layers {names}, expected "
                         "embedding, lstm_0[, lstm_1 ...], logits")
    embedding, *lstms, logits = active
    if not isinstance(embedding, k.layers.Embedding) or embedding.mask_zero:
        raise ValueError("layer 'embedding' must be an Embedding without mask_zero")
    for layer in lstms:
        if not isinstance(layer, k.layers.LSTM) or layer.go_backwards or layer.stateful:
            raise ValueError(f"layer {layer.name!r} must be a forward, stateless LSTM")
    if not isinstance(logits, k.layers.Dense) or logits.activation.__name__ != "linear":
        raise ValueError("layer 'logits' must be a Dense layer without activation")
    if embedding.input_dim != vocab_size or logits.units != vocab_size:
        raise ValueError(f"model has {embedding.input_dim} input and {logits.units} output ids;"
                         f" the vocabulary has {vocab_size}")
    return embedding, lstms, logits


def _compiled_steps(embedding: Any, lstms: list[Any], logits: Any) -> Any:
    """``(ids, states, forced, uniforms, inverse temperature, bias) -> (samples, ids, states)``
    over ``forced.shape[1]`` steps, samples ``(steps, n)``: step ``t`` samples from the model
    and feeds ``forced[:, t]`` next where it is >= 0, its own sample elsewhere."""
    tf = tensorflow()
    size = int(logits.units)
    state_spec = [(tf.TensorSpec([None, layer.units], tf.float32),
                   tf.TensorSpec([None, layer.units], tf.float32)) for layer in lstms]
    signature = [tf.TensorSpec([None], tf.int32), state_spec,
                 tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.float64),
                 tf.TensorSpec([], tf.float64), tf.TensorSpec([size], tf.float64)]

    def step(t: Any, ids: Any, states: Any, samples: Any, forced: Any, uniforms: Any,
             inverse_temperature: Any, bias: Any) -> Any:
        x = embedding(ids)
        carried = []
        for layer, (h, c) in zip(lstms, states, strict=True):
            x, (h, c) = layer.cell(x, [h, c], training=False)
            carried.append((h, c))
        z = tf.cast(logits(x), tf.float64) * inverse_temperature + bias
        cdf = tf.cumsum(tf.nn.softmax(z), axis=1)
        u = uniforms[:, t] * cdf[:, -1]
        drawn = tf.reduce_sum(tf.cast(cdf <= u[:, None], tf.int32), axis=1)
        # u * total can round up to total (p ~ 1e-16): take the likeliest id then.
        drawn = tf.where(drawn >= size, tf.argmax(z, axis=1, output_type=tf.int32), drawn)
        ids = tf.where(forced[:, t] >= 0, forced[:, t], drawn)
        return t + 1, ids, carried, samples.write(t, drawn)

    @tf.function(input_signature=signature, autograph=False)
    def steps(ids: Any, states: Any, forced: Any, uniforms: Any, inverse_temperature: Any,
              bias: Any) -> Any:
        count = tf.shape(forced)[1]
        samples = tf.TensorArray(tf.int32, size=count)
        _, ids, states, samples = tf.while_loop(
            lambda t, *_: t < count,
            lambda t, ids, states, samples: step(t, ids, states, samples, forced, uniforms,
                                                 inverse_temperature, bias),
            [tf.constant(0), ids, states, samples], parallel_iterations=1)
        return samples.stack(), ids, states  # (steps, n): int32 transposes log oneDNN noise

    return steps
