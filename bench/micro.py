"""Inference micro-benchmarks: Keras ``predict`` vs the serving predictor (its backend: see
:mod:`tickcast.models.predictors`), per call and per batch size, for the forecaster and the
RNN, with a parity check on every pair. ``python -m tickcast_bench.backends`` compares every
backend."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from tickcast.models.predictors import Forecaster, SentimentRNN
from tickcast.models.preprocessing import vader_scores

__all__ = ["micro_benchmarks"]


def _per_call(fn: Callable[[], Any], *, min_seconds: float = 0.5, max_calls: int = 200) -> float:
    fn()  # warm up (tracing, allocation)
    calls, started = 0, time.perf_counter()
    while calls < max_calls and (calls < 3 or time.perf_counter() - started < min_seconds):
        fn()
        calls += 1
    return (time.perf_counter() - started) / calls


def micro_benchmarks(forecaster: Forecaster, rnn: SentimentRNN, texts: list[str],
                     batch_sizes: tuple[int, ...] = (1, 32, 256)) -> list[dict[str, Any]]:
    from tickcast.streams.sentiment.vader import FastVader

    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    analyzer = FastVader()
    for size in batch_sizes:
        walks = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (size, forecaster.window)), axis=1))
        features = forecaster.scaler.inputs(walks)
        batch = (texts * (size // len(texts) + 1))[:size]
        ids = rnn.vocabulary.encode_batch(batch)
        vader = vader_scores(batch, analyzer)
        rnn_inputs = [ids, vader[:, rnn.vocabulary.side_columns]] if rnn.needs_vader else ids
        for model, predictor, fast, x in (
                ("lstm", forecaster, partial(forecaster.predict_outputs, features), features),
                ("rnn", rnn, partial(rnn.score_ids, ids, vader if rnn.needs_vader else None),
                 rnn_inputs)):
            keras_model = predictor.model
            reference = np.asarray(keras_model.predict(x, verbose=0)).reshape(size, -1)
            diff = float(np.max(np.abs(reference - np.asarray(fast()).reshape(size, -1))))
            predict_s = _per_call(lambda m=keras_model, x=x: m.predict(x, verbose=0),
                                  max_calls=30)
            function_s = _per_call(fast)
            rows.append({"model": model, "batch": size, "backend": predictor.backend,
                         "predict_ms": predict_s * 1000, "serving_ms": function_s * 1000,
                         "speedup": predict_s / function_s,
                         "serving_items_per_s": size / function_s, "max_abs_diff": diff})
    return rows
