"""Model architectures: the seed lesson's shapes, built only from stock Keras layers.

No Lambda layers and no custom objects, so artifacts load with ``safe_mode=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tickcast.models.backend import keras

__all__ = ["build_char_lm", "build_forecaster", "build_sentiment_rnn", "compile_sentiment_rnn",
           "point_and_pinball_loss"]


def build_forecaster(*, window: int, units: tuple[int, ...] = (64, 32),
                     dropout: float = 0.2, quantiles: tuple[float, ...] = ()) -> Any:
    """Stacked LSTM with dropout between layers and a Dense head: W scaled log returns in,
    the next scaled log return out -- and, with ``quantiles``, those quantiles of it after
    the point forecast (one output tensor ``(n, 1 + len(quantiles))``), trained with the
    pinball loss beside the point forecast's squared error."""
    k = keras()
    inputs = k.Input(shape=(window, 1), name="window")
    x = inputs
    for i, n in enumerate(units):
        x = k.layers.LSTM(n, return_sequences=i < len(units) - 1, name=f"lstm_{i}")(x)
        x = k.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    outputs = k.layers.Dense(1 + len(quantiles), name="next_return")(x)
    model = k.Model(inputs, outputs, name="gold_lstm")
    model.compile(optimizer=k.optimizers.Adam(1e-3),
                  loss=point_and_pinball_loss(quantiles) if quantiles else "mse")
    return model


def point_and_pinball_loss(quantiles: tuple[float, ...]) -> Any:
    """Squared error of column 0 plus the mean pinball loss of the quantile columns."""
    ops = keras().ops
    tau = np.asarray(quantiles, dtype="float32")[None, :]

    def loss(y_true: Any, y_pred: Any) -> Any:
        y = ops.reshape(ops.cast(y_true, "float32"), (-1, 1))
        point, q = y_pred[:, :1], y_pred[:, 1:]
        diff = y - q
        pinball = ops.mean(ops.maximum(tau * diff, (tau - 1.0) * diff), axis=-1)
        return ops.mean(ops.square(y - point), axis=-1) + pinball

    return loss


def build_sentiment_rnn(*, vocab_size: int, max_len: int, embed_dim: int = 64,
                        units: int = 48, dropout: float = 0.3,
                        lexicon: np.ndarray | None = None, side_inputs: int = 0,
                        head_units: int = 16, embeddings: np.ndarray | None = None,
                        learning_rate: float = 2e-3) -> Any:
    """Embedding -> bidirectional LSTM with dropout -> P(positive).

    ``embeddings`` (``(vocab_size, d)``), when given, are the embedding's starting weights
    (pre-trained word vectors; ``embed_dim`` is then ``d``), and the embedding starts frozen:
    make the layer trainable and :func:`compile_sentiment_rnn` again to fine-tune it.

    ``lexicon`` (``(vocab_size, d)``), when given, adds frozen per-token features beside the
    learned embedding — prior knowledge such as VADER's human-rated word valences, which a
    corpus of 20k snippets cannot learn for rare words. It is stored as ordinary weights.

    ``side_inputs`` > 0 adds a second input, ``side_inputs`` sentence-level features per text
    (VADER's scores: what its rules make of the valences), joined after the recurrent layer:
    the LSTM's features and the side inputs go through a ``head_units`` ReLU layer to the
    output. The layer names ``text_features`` (the recurrent part's output) and
    ``side_inputs`` are the serving contract (:class:`tickcast.models.predictors.SentimentRNN`).
    """
    k = keras()
    inputs = k.Input(shape=(max_len,), dtype="int32", name="token_ids")
    x = (_frozen_embedding(embeddings, "embedding", vocab_size, max_len)
         if embeddings is not None else
         k.layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding"))(inputs)
    if lexicon is not None:
        prior = _frozen_embedding(lexicon, "lexicon", vocab_size, max_len)
        x = k.layers.Concatenate(name="embedding_and_lexicon")([x, prior(inputs)])
    x = k.layers.SpatialDropout1D(dropout / 2, name="embedding_dropout")(x)
    x = k.layers.Bidirectional(k.layers.LSTM(units), name="bilstm")(x)
    x = k.layers.Dropout(dropout, name="text_features")(x)
    model_inputs = [inputs]
    if side_inputs:
        side = k.Input(shape=(side_inputs,), dtype="float32", name="side_inputs")
        model_inputs.append(side)
        x = k.layers.Concatenate(name="text_and_side")([x, side])
        x = k.layers.Dense(head_units, activation="relu", name="head")(x)
    outputs = k.layers.Dense(1, activation="sigmoid", name="p_positive")(x)
    model = k.Model(model_inputs if side_inputs else inputs, outputs, name="sentiment_rnn")
    return compile_sentiment_rnn(model, learning_rate)


def _frozen_embedding(table: np.ndarray, name: str, vocab_size: int, max_len: int) -> Any:
    """An ``Embedding`` layer holding ``table`` (one row per token id), not trainable."""
    if table.shape[0] != vocab_size:
        raise ValueError(f"{name} has {table.shape[0]} rows for {vocab_size} tokens")
    layer = keras().layers.Embedding(vocab_size, table.shape[1], mask_zero=True,
                                     trainable=False, name=name)
    layer.build((None, max_len))
    layer.set_weights([table.astype("float32")])
    return layer


def compile_sentiment_rnn(model: Any, learning_rate: float) -> Any:
    """(Re)compile a sentiment model: Adam, binary cross-entropy, ``auc`` tracked. Needed after
    changing which layers train."""
    k = keras()
    model.compile(optimizer=k.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                  metrics=[k.metrics.AUC(name="auc")])
    return model


def build_char_lm(*, vocab_size: int, embed_dim: int = 32, units: tuple[int, ...] = (256,),
                  dropout: float = 0.1, learning_rate: float = 1e-2) -> Any:
    """Character language model: ids -> Embedding -> LSTM(s) -> logits of the next character.

    The time axis is open (``None``): it trains on fixed windows and scores whole texts. Layer
    names are part of the contract: :class:`tickcast.models.textgen.TextGenerator` runs the
    ``embedding``, ``lstm_<i>`` cells and ``logits`` one character at a time.
    """
    k = keras()
    inputs = k.Input(shape=(None,), dtype="int32", name="char_ids")
    x = k.layers.Embedding(vocab_size, embed_dim, name="embedding")(inputs)
    for i, n in enumerate(units):
        x = k.layers.LSTM(n, return_sequences=True, name=f"lstm_{i}")(x)
        if dropout:
            x = k.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    outputs = k.layers.Dense(vocab_size, name="logits")(x)
    model = k.Model(inputs, outputs, name="char_lm")
    model.compile(optimizer=k.optimizers.Adam(learning_rate, clipnorm=1.0),  # tames spikes
                  loss=k.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
