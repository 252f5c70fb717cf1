"""Inference backends for the two serving models, per call and per batch size.

For the forecaster (``lstm``) and the sentiment RNN (``rnn``) of a model store, each backend
is built from the loaded Keras model and timed at each batch size (for an RNN with side
inputs, its text encoder: the backends serve that part, the head that joins VADER's scores
runs in NumPy after it):

* ``tf_function`` — what serving runs today (``predictors._compiled``): a ``tf.function`` with
  a fixed signature around ``model(x, training=False)``. The baseline.
* ``xla`` — the same with ``jit_compile=True`` (compiled once per input shape).
* ``litert`` — LiteRT (``ai-edge-litert``, else ``tf.lite.Interpreter``): the model cloned with
  ``unroll=True``, its variables frozen, converted with builtin ops only, then resized to each
  batch. (Keras 3's RNN ``while`` loop converts only with a static batch or with
  ``SELECT_TF_OPS``, which no pip interpreter can run: the Flex delegate is not shipped.)
* ``onnx_tf2onnx`` — ``tf2onnx.convert.from_function`` on the ``tf.function``, run by ONNX
  Runtime.
* ``onnx`` — ``tickcast.models.fastpath.onnx_forecaster``/``onnx_sentiment``: an ONNX graph
  built from the Keras weights (fused ``LSTM``/``GRU`` kernels), run by ONNX Runtime.
* ``numpy`` — ``tickcast.models.fastpath.numpy_forecaster``/``numpy_sentiment``: a NumPy
  forward pass built from the weights.

Per row: the largest absolute difference from Keras' ``model(x, training=False)`` on that
batch, the first call (tracing, compiling, resizing), the median and p99 of the calls after it,
rows per second, and the speed-up over ``tf_function``. Per backend: build time (conversion
included), the resident memory it added (RSS after its calls minus before its build; with
``--isolate`` each backend runs in a fresh process, else later backends find libraries loaded
and TensorFlow's runtime warm), and for the RNN the difference over all sample texts.

Windows are random walks as in ``bench/micro.py``; texts are ``sample_texts()``, encoded to
the model's full width (the Keras reference takes no other; ``--cut`` then cuts each batch to
its longest text for the backends, as serving does). Backends run one after another; keep
``--seconds`` small on a shared machine.

``python -m tickcast_bench.backends [--store DIR] [--models lstm rnn] [--backends ...]
[--batches 1 10 32 256] [--cut] [--isolate] [--json PATH]``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BACKENDS", "BackendRow", "BackendSummary", "main", "markdown", "measure"]

Call = Callable[[np.ndarray], np.ndarray]
BACKENDS = ("tf_function", "xla", "litert", "onnx_tf2onnx", "onnx", "numpy")
MODELS = ("lstm", "rnn")


@dataclass
class BackendRow:
    model: str
    backend: str
    batch: int
    max_abs_diff: float
    first_ms: float
    median_ms: float
    p99_ms: float
    calls: int
    rows_per_s: float
    speedup: float | None = None  # baseline median / this median


@dataclass
class BackendSummary:
    model: str
    backend: str
    ok: bool
    build_s: float = 0.0
    rss_delta_mb: float = 0.0
    all_texts_diff: float | None = None
    note: str = ""
    rows: list[BackendRow] = field(default_factory=list)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, not current


def _limit_blas(threads: int) -> str:
    """NumPy's OpenBLAS spawns a thread per core for mid-sized matmuls; on a small, shared
    machine that costs far more than it gains (a 64x64 @ 64x256 took 250 us on 2 threads and
    32 us on 1 here)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "BLAS threads: default (threadpoolctl not installed)"
    threadpool_limits(threads, user_api="blas")
    return f"BLAS threads: {threads}"


# --- backends: each returns (call, prepare) where prepare(x) readies a shape ---------------------

def _signature(kind: str, window: int) -> tuple[list[int | None], str]:
    return ([None, window, 1], "float32") if kind == "lstm" else ([None, None], "int32")


def _tf_function(model: Any, kind: str, window: int, *, jit: bool) -> Call:
    import tensorflow as tf

    shape, dtype = _signature(kind, window)
    spec = tf.TensorSpec(shape=shape, dtype=getattr(tf, dtype))

    @tf.function(input_signature=[spec], autograph=False, jit_compile=jit)
    def call(x: Any) -> Any:
        return model(x, training=False)

    return lambda x: np.asarray(call(x))


def _unrolled(model: Any) -> Any:
    """A clone whose LSTM/GRU layers have ``unroll=True`` (no ``while`` loop, so no tensor
    lists for the converter), with the same weights."""
    config = model.get_config()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class_name") in ("LSTM", "GRU", "SimpleRNN") and "config" in node:
                node["config"]["unroll"] = True
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def _litert(model: Any, kind: str, window: int, threads: int) -> tuple[Call, Call, str]:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    width = window if kind == "lstm" else int(model.input_shape[1])
    shape: list[int | None] = [None, width, 1] if kind == "lstm" else [None, width]
    spec = tf.TensorSpec(shape=shape, dtype=tf.float32 if kind == "lstm" else tf.int32)
    clone = _unrolled(model)
    fn = tf.function(lambda x: clone(x, training=False), input_signature=[spec],
                     autograph=False)
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()
    try:
        from ai_edge_litert.interpreter import Interpreter
        which = "ai-edge-litert"
    except ImportError:
        Interpreter = tf.lite.Interpreter
        which = "tf.lite.Interpreter"
    interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    dtype = np.float32 if kind == "lstm" else np.int32

    def prepare(x: np.ndarray) -> np.ndarray:
        if x.ndim == 2 and x.shape[1] < width:  # unrolled to the full width: pad back
            x = np.pad(x, ((0, 0), (width - x.shape[1], 0)))
        interpreter.resize_tensor_input(inp, list(x.shape), strict=False)
        interpreter.allocate_tensors()
        return x

    def call(x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(inp, np.asarray(x, dtype=dtype))
        interpreter.invoke()
        return interpreter.get_tensor(out)

    return call, prepare, (f"{which}, unrolled, {len(flatbuffer) / 2**20:.1f} MB flatbuffer, "
                           f"fixed width {width}; not thread-safe")


def _tf2onnx(model: Any, kind: str, window: int, threads: int) -> tuple[Call, str]:
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    shape, dtype = _signature(kind, window)
    spec = tf.TensorSpec(shape=shape, dtype=getattr(tf, dtype), name="x")
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec],
                     autograph=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=[spec], opset=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ops = {n.op_type for n in proto.graph.node}
    rnn_ops = sorted(ops & {"LSTM", "GRU", "Loop", "Scan"})
    return (lambda x: session.run(None, {name: x})[0],
            f"tf2onnx {tf2onnx.__version__}, recurrence as {'/'.join(rnn_ops) or '?'}")


def _build(backend: str, model: Any, kind: str, window: int, threads: int
           ) -> tuple[Call, Call | None, str]:
    from tickcast.models import fastpath

    if backend == "tf_function":
        return _tf_function(model, kind, window, jit=False), None, "serving today"
    if backend == "xla":
        return _tf_function(model, kind, window, jit=True), None, "compiles per input shape"
    if backend == "litert":
        call, prepare, note = _litert(model, kind, window, threads)
        return call, prepare, note
    if backend == "onnx_tf2onnx":
        call, note = _tf2onnx(model, kind, window, threads)
        return call, None, note
    if backend == "onnx":
        import onnxruntime as ort

        build = fastpath.onnx_forecaster if kind == "lstm" else fastpath.onnx_sentiment
        return build(model, threads=threads), None, f"onnxruntime {ort.__version__}"
    if backend == "numpy":
        build = fastpath.numpy_forecaster if kind == "lstm" else fastpath.numpy_sentiment
        return build(model), None, f"numpy {np.__version__}"
    raise ValueError(f"unknown backend {backend!r}")


# --- measuring --------------------------------------------------------------------------------

def _timed(call: Call, x: np.ndarray, *, seconds: float, min_calls: int, max_calls: int
           ) -> list[float]:
    for _ in range(2):  # warm caches after the first call
        call(x)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < max_calls and (len(times) < min_calls
                                      or time.perf_counter() - started < seconds):
        t = time.perf_counter()
        call(x)
        times.append(time.perf_counter() - t)
    return times


def _inputs(kind: str, forecaster: Any, rnn: Any, texts: list[str], batch: int,
            rng: np.random.Generator) -> np.ndarray:
    if kind == "lstm":
        walks = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (batch, forecaster.window)), axis=1))
        return np.asarray(forecaster.scaler.inputs(walks), dtype=np.float32)
    chosen = (texts * (batch // len(texts) + 1))[:batch]
    return np.asarray(rnn.vocabulary.encode_batch(chosen), dtype=np.int32)


def _cut(ids: np.ndarray) -> np.ndarray:
    """Left-padded ids cut to the longest text, as ``SentimentRNN.score_ids`` cuts a batch
    (masking makes the scores equal)."""
    width = max(int(np.count_nonzero(ids, axis=1).max()), 1)
    return np.ascontiguousarray(ids[:, ids.shape[1] - width:])


def measure(store: Path, *, models: Sequence[str] = MODELS,
            backends: Sequence[str] = BACKENDS, batches: Sequence[int] = (1, 10, 32, 256),
            seconds: float = 0.4, min_calls: int = 20, max_calls: int = 2000,
            threads: int = 1, cut: bool = False, log: Callable[[str], None] = print
            ) -> list[BackendSummary]:
    """Build and time every backend on every model; a backend that fails to build or run is
    reported (``ok=False`` and why), not raised. ``cut``: the RNN's batches are cut to their
    longest text, as serving cuts them (the Keras reference still runs the full width)."""
    from tickcast.models.predictors import load_latest, text_encoder
    from tickcast.models.registry import ModelStore
    from tickcast.training.data import sample_texts

    model_store = ModelStore(store)
    forecaster = load_latest(model_store, "gold-lstm", kind="forecaster")
    rnn = load_latest(model_store, "sentiment-rnn", kind="sentiment")
    texts = [str(t) for t in sample_texts()["text"]]
    summaries: list[BackendSummary] = []
    for kind in models:
        # The RNN's text encoder: what the backends serve (side inputs join after it).
        model = forecaster.model if kind == "lstm" else text_encoder(rnn.model)
        rng = np.random.default_rng(0)
        xs = {b: _inputs(kind, forecaster, rnn, texts, b, rng) for b in batches}
        refs = {b: np.asarray(model(x, training=False)) for b, x in xs.items()}
        if cut and kind == "rnn":
            xs = {b: _cut(x) for b, x in xs.items()}
        all_ids = (np.asarray(rnn.vocabulary.encode_batch(texts), dtype=np.int32)
                   if kind == "rnn" else None)
        all_ref = None if all_ids is None else np.asarray(model(all_ids, training=False))
        for backend in backends:
            gc.collect()
            summary = BackendSummary(kind, backend, ok=False)
            summaries.append(summary)
            rss = _rss_mb()
            started = time.perf_counter()
            try:
                call, prepare, summary.note = _build(backend, model, kind, forecaster.window,
                                                     threads)
            except Exception as exc:  # noqa: BLE001 - reported, the other backends go on
                summary.note = f"build failed: {type(exc).__name__}: {str(exc)[:200]}"
                log(f"{kind} {backend}: {summary.note}")
                continue
            summary.build_s = time.perf_counter() - started
            try:
                for batch in batches:
                    x = xs[batch]
                    t = time.perf_counter()
                    x = prepare(x) if prepare else x
                    y = call(x)
                    first = time.perf_counter() - t
                    diff = float(np.max(np.abs(np.asarray(y).reshape(refs[batch].shape)
                                               - refs[batch])))
                    times = _timed(call, x, seconds=seconds, min_calls=min_calls,
                                   max_calls=max_calls)
                    median = float(np.median(times))
                    summary.rows.append(BackendRow(
                        kind, backend, batch, diff, first * 1e3, median * 1e3,
                        float(np.percentile(times, 99)) * 1e3, len(times), batch / median))
                    log(f"{kind} {backend} batch {batch}: {median * 1e3:.3f} ms, "
                        f"diff {diff:.1e}")
                if all_ids is not None and all_ref is not None:
                    ids = prepare(all_ids) if prepare else all_ids
                    summary.all_texts_diff = float(np.max(np.abs(
                        np.asarray(call(ids)).reshape(all_ref.shape) - all_ref)))
                summary.ok = True
            except Exception as exc:  # noqa: BLE001
                summary.note = f"run failed: {type(exc).__name__}: {str(exc)[:200]}"
                log(f"{kind} {backend}: {summary.note}")
            summary.rss_delta_mb = _rss_mb() - rss
            del call, prepare
    return _with_speedups(summaries)


def _with_speedups(summaries: list[BackendSummary]) -> list[BackendSummary]:
    baseline = {(r.model, r.batch): r.median_ms for s in summaries if s.backend == "tf_function"
                for r in s.rows}
    for s in summaries:
        for r in s.rows:
            base = baseline.get((r.model, r.batch))
            r.speedup = None if base is None else base / r.median_ms
    return summaries


def _isolated(args: argparse.Namespace, log: Callable[[str], None]) -> list[BackendSummary]:
    """Each model and backend in a fresh process: build times and memory without the other
    backends' runtimes loaded or warmed (each process loads TensorFlow and both models)."""
    import subprocess
    import tempfile

    summaries: list[BackendSummary] = []
    for kind in args.models:
        for backend in args.backends:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "result.json"
                command = [sys.executable, "-m", "tickcast_bench.backends", "--store",
                           str(args.store), "--models", kind, "--backends", backend,
                           "--batches", *map(str, args.batches), "--seconds",
                           str(args.seconds), "--min-calls", str(args.min_calls),
                           "--max-calls", str(args.max_calls), "--threads", str(args.threads),
                           "--blas-threads", str(args.blas_threads), "--json", str(out),
                           "--quiet", *(["--cut"] if args.cut else [])]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0 or not out.exists():
                    summaries.append(BackendSummary(kind, backend, ok=False, note=(
                        f"process failed ({done.returncode}): {done.stderr[-200:]}")))
                    continue
                for item in json.loads(out.read_text(encoding="utf-8"))["results"]:
                    rows = [BackendRow(**r) for r in item.pop("rows")]
                    summaries.append(BackendSummary(**item, rows=rows))
            log(f"{kind} {backend}: done")
    return _with_speedups(summaries)


def markdown(summaries: Sequence[BackendSummary]) -> str:
    lines = ["| model | backend | batch | max abs diff | first ms | median ms | p99 ms | calls "
             "| rows/s | vs tf.function |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in summaries:
        for r in s.rows:
            speedup = "" if r.speedup is None else f"{r.speedup:.1f}x"
            lines.append(f"| {r.model} | {r.backend} | {r.batch} | {r.max_abs_diff:.1e} | "
                         f"{r.first_ms:.2f} | {r.median_ms:.3f} | {r.p99_ms:.3f} | {r.calls} | "
                         f"{r.rows_per_s:,.0f} | {speedup} |")
    lines += ["", "| model | backend | ok | build s | RSS delta MB | all-texts diff | note |",
              "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    for s in summaries:
        texts = "" if s.all_texts_diff is None else f"{s.all_texts_diff:.1e}"
        lines.append(f"| {s.model} | {s.backend} | {'yes' if s.ok else 'no'} | "
                     f"{s.build_s:.2f} | {s.rss_delta_mb:+.1f} | {texts} | "
                     f"{s.note.replace('|', '/')} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tickcast_bench.backends",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path,
                        help="model store (default: TICKCAST_MODEL_DIR's, as the worker reads it)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS),
                        help="tf_function first: the speed-up column is relative to it")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 10, 32, 256])
    parser.add_argument("--seconds", type=float, default=0.4,
                        help="timing budget per backend and batch (default: %(default)s)")
    parser.add_argument("--min-calls", type=int, default=20)
    parser.add_argument("--max-calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for LiteRT and ONNX Runtime (default: %(default)s)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="NumPy's BLAS threads, set with threadpoolctl when installed "
                        "(default: %(default)s)")
    parser.add_argument("--cut", action="store_true",
                        help="cut each RNN batch to its longest text, as serving does "
                        "(LiteRT, unrolled to the full width, pads back)")
    parser.add_argument("--isolate", action="store_true",
                        help="each model and backend in a fresh process (memory and build "
                        "time without the others; slower)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.store is None:
        from tickcast.streams.settings import Settings

        args.store = Settings.from_env().model_dir
    blas = _limit_blas(args.blas_threads)

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    started = time.perf_counter()
    if args.isolate:
        summaries = _isolated(args, log)
    else:
        summaries = measure(args.store, models=args.models, backends=args.backends,
                            batches=args.batches, seconds=args.seconds,
                            min_calls=args.min_calls, max_calls=args.max_calls,
                            threads=args.threads, cut=args.cut, log=log)
    meta = {"command": " ".join(["python -m tickcast_bench.backends", *(argv or sys.argv[1:])]),
            "python": platform.python_version(), "numpy": np.__version__,
            "cpus": os.cpu_count(), "blas": blas, "threads": args.threads,
            "wall_s": round(time.perf_counter() - started, 1)}
    print(f"{meta['command']}  ({meta['cpus']} CPUs, {blas}, runtime threads {args.threads}, "
          f"{meta['wall_s']} s)\n")
    print(markdown(summaries))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta,
                                         "results": [asdict(s) for s in summaries]}, indent=2),
                             encoding="utf-8")


if __name__ == "__main__":
    main()
