"""The sentiment network's starting embedding: given weights, frozen until made trainable."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.models.architectures import build_sentiment_rnn, compile_sentiment_rnn


def test_given_embeddings_start_the_embedding_frozen_until_it_is_made_trainable() -> None:
    table = np.random.default_rng(3).normal(size=(12, 5)).astype(np.float32)
    model = build_sentiment_rnn(vocab_size=12, max_len=6, embed_dim=99, units=2,
                                side_inputs=4, embeddings=table)
    embedding = model.get_layer("embedding")
    assert embedding.output_dim == 5  # the vectors' width, not embed_dim
    assert not embedding.trainable
    np.testing.assert_array_equal(embedding.get_weights()[0], table)
    ids = np.array([[0, 0, 3, 4, 5, 6]] * 8, dtype=np.int32)
    x, y = [ids, np.zeros((8, 4), np.float32)], np.array([0, 1] * 4, np.float32)
    model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(embedding.get_weights()[0], table)
    embedding.trainable = True
    compile_sentiment_rnn(model, 1e-1)
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(embedding.get_weights()[0], table)


def test_embeddings_for_another_vocabulary_are_refused() -> None:
    with pytest.raises(ValueError, match="embedding has 7 rows for 12 tokens"):
        build_sentiment_rnn(vocab_size=12, max_len=6, embeddings=np.zeros((7, 5)))
