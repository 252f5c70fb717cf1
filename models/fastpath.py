"""Serving fast paths built from a Keras model's weights: ONNX Runtime and pure NumPy.

At the batch sizes the streams call with (1 to a few dozen rows), a ``tf.function`` call costs
far more than the arithmetic of these small recurrent models: every call crosses into the
TensorFlow runtime and runs a ``while`` loop of tiny kernels. This module reads the model's
graph once, at load time, and builds an equivalent forward pass (``bench/backends.py``
measures them against ``tf.function``, XLA, LiteRT and tf2onnx):

* :func:`onnx_forecaster` / :func:`onnx_sentiment` (:func:`onnx_forward`): an ONNX graph
  written from the weights (no converter), run by ONNX Runtime's fused ``LSTM``/``GRU``
  kernels; left-padded texts go in as sequence lengths, so padding costs no steps. Needs the
  optional ``onnx`` and ``onnxruntime`` packages. The fastest at every measured batch size.
* :func:`numpy_forecaster` / :func:`numpy_sentiment` (:func:`numpy_forward`): NumPy only.
  Several times faster than ``tf.function`` at small batches, about even at 256. Run the
  process with ``OPENBLAS_NUM_THREADS=1``: NumPy's OpenBLAS otherwise wakes a thread per core
  for mid-sized matmuls, which on a small shared machine costs more than it saves.

Supported, exactly as Keras computes them at ``training=False`` (the NumPy path; the ONNX
path takes chains of these, narrower where its docstring says):

* layers: ``InputLayer``; ``Embedding`` (``mask_zero`` or not); ``Concatenate``; ``Dense``
  (activation ``linear``, ``sigmoid``, ``tanh``, ``relu`` or ``softmax``); ``Activation`` (same
  set); ``Dropout``, ``SpatialDropout1D/2D/3D``, ``GaussianNoise``, ``GaussianDropout`` (the
  identity at inference); ``LSTM`` and ``GRU`` (``reset_after`` either way) with their default
  activations (``tanh``, recurrent ``sigmoid``), ``return_sequences``, ``go_backwards``,
  ``zero_output_for_mask`` and a time-step mask; ``Bidirectional`` over two of those (merge
  ``concat``, ``sum``, ``ave`` or ``mul``).
* the mask ops Keras records in a functional graph (``not_equal``, ``equal``,
  ``expand_dims``, ``zeros_like``, ``ones_like``, ``logical_or``/``and``/``not``,
  ``concatenate``, ``any``, ``all``): masks are computed as the model's own graph says, and a
  masked time step keeps the previous state (and output, or zeros with
  ``zero_output_for_mask``), as ``keras.src.backend.tensorflow.rnn`` does.

Anything else (other layers or options, ``stateful``, ``return_state``, initial states, non
float32 dtype policies, quantized or LoRA layers, nested models, several outputs, several
inputs other than through :func:`numpy_head`) raises :class:`UnsupportedModelError` (a
``ValueError``) naming the layer, so serving can fall back to the next path, and finally to
``tf.function``.

:func:`numpy_head` runs the part of a graph after given tensors, as a function of their
values: the sentiment model's head, which joins VADER's scores to the text encoder's
features, runs there while the encoder runs on ONNX Runtime.

NumPy speed: the sigmoid gates' weight columns are pre-scaled by 1/2 so one ``tanh`` serves
all of a step's gates (``sigmoid(x) = tanh(x/2)/2 + 1/2``); the directions of a
``Bidirectional`` run stacked, one batched matmul per step; and an RNN fed by embeddings
(through ``Concatenate`` and dropout layers) gathers its input projection from a table
computed at load time (``vocab x 4 units`` floats per direction, when under
``fold_limit_bytes``) instead of multiplying per call.

The returned callables are thread-safe (every array a NumPy call writes is its own; ONNX
Runtime's ``run`` is thread-safe) and use neither TensorFlow nor Keras: they read the model
once, when built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

__all__ = ["FOLD_LIMIT_BYTES", "UnsupportedModelError", "numpy_forecaster", "numpy_forward",
           "numpy_head", "numpy_sentiment"]

FOLD_LIMIT_BYTES: Final = 64 * 2**20
"""Largest embedding-times-kernel table (all directions) precomputed for an RNN fed by an
embedding; above it the projection is multiplied per call."""

Forward = Callable[[np.ndarray], np.ndarray]
_Env = list[Any]
_Step = Callable[[_Env], None]

_LAYERS: Final = "keras.src.layers."
_OPS: Final = "keras.src.ops.numpy"
_IDENTITY: Final = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D",
                              "SpatialDropout3D", "GaussianNoise", "GaussianDropout"})
_RNNS: Final = frozenset({"LSTM", "GRU"})
_CALL_KWARGS: Final = frozenset({"training", "mask"})


class UnsupportedModelError(ValueError):
    """The model holds a layer, op or option the NumPy forward pass does not implement."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out = np.tanh(x * np.float32(0.5))  # no overflow for large |x|, unlike 1 / (1 + exp(-x))
    out *= np.float32(0.5)
    out += np.float32(0.5)
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_ACTIVATIONS: Final[dict[str, Callable[[np.ndarray], np.ndarray]]] = {
    "linear": lambda x: x,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, np.float32(0)),
    "softmax": _softmax,
}


# --- reading the graph -------------------------------------------------------------------------

def _kind(op: Any) -> str:
    """``Dense``, ``LSTM``... for stock Keras layers and ops; ``""`` for anything else (a
    subclass or a custom layer of the same name is not the stock computation)."""
    module = type(op).__module__
    if module.startswith(_LAYERS) or module == _OPS:
        return type(op).__name__
    return ""


def _describe(op: Any) -> str:
    return f"layer {getattr(op, 'name', '?')!r} ({type(op).__module__}.{type(op).__name__})"


def _refuse(op: Any, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"{_describe(op)}: {why} is not supported by this fast path "
                                 "(serve the model through another one, or tf.function)")


def _history(tensor: Any) -> tuple[Any, Any]:
    try:
        operation, node_index, _ = tensor._keras_history
        return operation, operation._inbound_nodes[node_index]
    except (AttributeError, IndexError, TypeError, ValueError):
        raise UnsupportedModelError(f"cannot read the graph at tensor {tensor!r}") from None


def _is_symbolic(value: Any) -> bool:
    return hasattr(value, "_keras_history")


def _array(variable: Any) -> np.ndarray:
    value = variable.numpy() if hasattr(variable, "numpy") else variable
    return np.array(value, dtype=np.float32)


def _activation(fn: Any, owner: Any) -> str:
    name = getattr(fn, "__name__", "")
    if name in _ACTIVATIONS and getattr(fn, "__module__", "").startswith("keras.src.activations"):
        return name
    raise _refuse(owner, f"activation {getattr(fn, '__name__', fn)!r} (supported: "
                  f"{', '.join(_ACTIVATIONS)})")


def _check_layer(layer: Any) -> None:
    policy = getattr(getattr(layer, "dtype_policy", None), "name", "float32")
    if policy != "float32":
        raise _refuse(layer, f"dtype policy {policy!r}")
    if getattr(layer, "quantization_mode", None) is not None:
        raise _refuse(layer, f"quantization {layer.quantization_mode!r}")
    if getattr(layer, "lora_enabled", False):
        raise _refuse(layer, "LoRA")


def _axis(axis: Any) -> int | tuple[int, ...] | None:
    """Keras ops keep ``axis`` as an int, a list or None; NumPy wants an int or a tuple."""
    if axis is None or isinstance(axis, int):
        return axis
    axes = tuple(int(a) for a in axis)
    return axes[0] if len(axes) == 1 else axes


# --- recurrent layers ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Direction:
    """One direction's weights, gates reordered and pre-scaled (see :func:`_direction`)."""

    kernel: np.ndarray     # (d_in, G)
    bias: np.ndarray       # (G,), with GRU's recurrent z/r bias folded in
    recurrent: np.ndarray  # (units, G)
    backwards: bool


@dataclass(frozen=True)
class _Recurrent:
    kind: str  # "lstm" | "gru"
    units: int
    directions: tuple[_Direction, ...]
    reset_after: bool
    recurrent_bias: np.ndarray | None  # GRU reset_after: the candidate's (D, 1, units)
    return_sequences: bool
    zero_output_for_mask: bool
    merge: str | None  # Bidirectional merge mode; None for one direction
    recurrent_stack: np.ndarray  # (D, units, G)


def _rnn_config(layer: Any) -> dict[str, Any]:
    kind = _kind(layer)
    if kind not in _RNNS:
        raise _refuse(layer, "only LSTM and GRU run inside Bidirectional")
    _check_layer(layer)
    cell = layer.cell
    if _kind(cell) != f"{kind}Cell":
        raise _refuse(layer, f"cell {type(cell).__name__}")
    if layer.stateful:
        raise _refuse(layer, "stateful=True")
    if layer.return_state:
        raise _refuse(layer, "return_state=True")
    if _activation(cell.activation, layer) != "tanh":
        raise _refuse(layer, "activation other than tanh")
    if _activation(cell.recurrent_activation, layer) != "sigmoid":
        raise _refuse(layer, "recurrent_activation other than sigmoid")
    return {"kind": kind.lower(), "units": int(cell.units),
            "reset_after": bool(getattr(cell, "reset_after", False)),
            "return_sequences": bool(layer.return_sequences),
            "zero_output_for_mask": bool(layer.zero_output_for_mask)}


def _direction(layer: Any) -> tuple[_Direction, np.ndarray | None]:
    """Gates reordered so the sigmoid gates come first (LSTM ``i f c o`` -> ``i f o c``; GRU
    keeps ``z r h``) and their columns halved: ``sigmoid(x) = tanh(x/2)/2 + 1/2``, so one
    ``tanh`` over a step's pre-activations serves every gate."""
    cell = layer.cell
    u = int(cell.units)
    kernel, recurrent = _array(cell.kernel), _array(cell.recurrent_kernel)
    candidate_bias = None
    if _kind(layer) == "LSTM":
        order = np.r_[0:2 * u, 3 * u:4 * u, 2 * u:3 * u]
        bias = _array(cell.bias) if cell.use_bias else np.zeros(4 * u, np.float32)
        kernel, recurrent, bias = kernel[:, order], recurrent[:, order], bias[order]
        sig = 3 * u
    else:
        sig = 2 * u
        if not cell.use_bias:
            bias = np.zeros(3 * u, np.float32)
            if cell.reset_after:
                candidate_bias = np.zeros(u, np.float32)
        elif cell.reset_after:
            both = _array(cell.bias)  # (2, 3u): input bias, recurrent bias
            bias = both[0].copy()
            bias[:sig] += both[1, :sig]  # z and r see x W + b_x + h U + b_h: one bias
            candidate_bias = both[1, sig:].copy()  # inside r * (h U_h + b_h)
        else:
            bias = _array(cell.bias)
    kernel, recurrent, bias = kernel.copy(), recurrent.copy(), bias.copy()
    for a in (kernel, recurrent, bias):
        a[..., :sig] *= np.float32(0.5)
    return (_Direction(np.ascontiguousarray(kernel), bias, np.ascontiguousarray(recurrent),
                       bool(layer.go_backwards)), candidate_bias)


def _recurrent(layer: Any) -> _Recurrent:
    _check_layer(layer)
    if _kind(layer) == "Bidirectional":
        if layer.return_state:
            raise _refuse(layer, "return_state=True")
        if layer.merge_mode not in ("concat", "sum", "ave", "mul"):
            raise _refuse(layer, f"merge_mode={layer.merge_mode!r}")
        parts = (layer.forward_layer, layer.backward_layer)
        merge: str | None = layer.merge_mode
    else:
        parts, merge = (layer,), None
    configs = [_rnn_config(p) for p in parts]
    if any(c != configs[0] for c in configs[1:]):
        raise _refuse(layer, "forward and backward layers of different kinds or options")
    built = [_direction(p) for p in parts]
    directions = tuple(d for d, _ in built)
    biases = [b for _, b in built]
    recurrent_bias = (None if biases[0] is None
                      else np.stack([b for b in biases if b is not None])[:, None, :])
    return _Recurrent(directions=directions, recurrent_bias=recurrent_bias, merge=merge,
                      recurrent_stack=np.stack([d.recurrent for d in directions]), **configs[0])


def _time_major_inputs(rnn: _Recurrent, x: np.ndarray | None, ids: np.ndarray | None,
                       table: np.ndarray | None) -> np.ndarray:
    """``(T, D, n, G)``: each direction's input projection in the order it steps through."""
    per_direction = []
    for d, direction in enumerate(rnn.directions):
        if table is not None and ids is not None:
            order = ids.T[::-1] if direction.backwards else ids.T
            per_direction.append(table[d][order])
        else:
            assert x is not None
            xt = x.transpose(1, 0, 2)
            xt = xt[::-1] if direction.backwards else xt
            projected = xt @ direction.kernel
            projected += direction.bias
            per_direction.append(projected)
    if len(per_direction) == 1:
        return per_direction[0][:, None]
    return np.stack(per_direction, axis=1)


def _time_major_mask(rnn: _Recurrent, mask: np.ndarray) -> np.ndarray:
    """``(T, D, n, 1)`` bool, in each direction's stepping order."""
    mt = np.asarray(mask, dtype=bool).T
    parts = [mt[::-1] if d.backwards else mt for d in rnn.directions]
    return np.stack(parts, axis=1)[..., None]


def _run_recurrent(rnn: _Recurrent, x: np.ndarray | None, mask: np.ndarray | None, *,
                   ids: np.ndarray | None = None, table: np.ndarray | None = None
                   ) -> np.ndarray:
    xs = _time_major_inputs(rnn, x, ids, table)
    steps, n_dir, n = xs.shape[0], xs.shape[1], xs.shape[2]
    if steps == 0:
        raise ValueError("an RNN needs at least one time step")
    u = rnn.units
    recurrent = rnn.recurrent_stack
    h = np.zeros((n_dir, n, u), np.float32)
    c = np.zeros((n_dir, n, u), np.float32)
    out = h
    masks = None if mask is None else _time_major_mask(rnn, mask)
    full = ([True] * steps if masks is None
            else masks.reshape(steps, -1).all(axis=1).tolist())
    zero_out = rnn.zero_output_for_mask
    outputs: list[np.ndarray] = []
    lstm = rnn.kind == "lstm"
    for s in range(steps):
        if lstm:
            z = np.matmul(h, recurrent)
            z += xs[s]
            np.tanh(z, out=z)
            gates = z[..., :3 * u]
            gates *= np.float32(0.5)
            gates += np.float32(0.5)
            c_new = z[..., u:2 * u] * c
            c_new += z[..., :u] * z[..., 3 * u:]
            h_new = np.tanh(c_new)
            h_new *= z[..., 2 * u:3 * u]
        else:
            h_new = _gru_step(rnn, h, xs[s], recurrent, u)
            c_new = c
        if full[s]:
            h, c, out = h_new, c_new, h_new
        else:
            assert masks is not None
            m = masks[s]
            c = np.where(m, c_new, c)
            h = np.where(m, h_new, h)
            out = np.where(m, h_new, np.float32(0)) if zero_out else h
        if rnn.return_sequences:
            outputs.append(out)
    if not rnn.return_sequences:
        return _merge(rnn, [out[d] for d in range(n_dir)])
    seq = np.stack(outputs)  # (T, D, n, u), stepping order (Keras keeps it for go_backwards)
    per_direction = [seq[:, d].transpose(1, 0, 2) for d in range(n_dir)]
    if rnn.merge is not None:
        per_direction[1] = per_direction[1][:, ::-1]  # Bidirectional flips the second back
    return _merge(rnn, per_direction)


def _gru_step(rnn: _Recurrent, h: np.ndarray, x: np.ndarray, recurrent: np.ndarray,
              u: int) -> np.ndarray:
    if rnn.reset_after:
        inner = np.matmul(h, recurrent)
        zr = inner[..., :2 * u]
    else:
        zr = np.matmul(h, recurrent[..., :2 * u])
    zr += x[..., :2 * u]
    np.tanh(zr, out=zr)
    zr *= np.float32(0.5)
    zr += np.float32(0.5)
    z, r = zr[..., :u], zr[..., u:]
    if rnn.reset_after:
        hh = inner[..., 2 * u:]
        if rnn.recurrent_bias is not None:
            hh += rnn.recurrent_bias
        hh *= r
    else:
        hh = np.matmul(r * h, recurrent[..., 2 * u:])
    hh += x[..., 2 * u:]
    np.tanh(hh, out=hh)
    h_new = h - hh
    h_new *= z
    h_new += hh  # z h + (1 - z) hh
    return h_new


def _merge(rnn: _Recurrent, parts: list[np.ndarray]) -> np.ndarray:
    if rnn.merge is None:
        return np.ascontiguousarray(parts[0])
    a, b = parts
    if rnn.merge == "concat":
        return np.concatenate([a, b], axis=-1)
    if rnn.merge == "sum":
        return a + b
    if rnn.merge == "ave":
        return (a + b) / np.float32(2)
    return a * b


# --- building the plan ---------------------------------------------------------------------------

@dataclass
class _Planned:
    inputs: tuple[int, ...]
    output: int
    run: _Step


class _Planner:
    """Walks the graph from the model's outputs and turns each node into a NumPy step over
    slots of a per-call environment list."""

    def __init__(self, model: Any, fold_limit_bytes: int) -> None:
        self.model = model
        self.fold_limit_bytes = fold_limit_bytes
        self.slots: dict[int, int] = {}
        self.steps: list[_Planned] = []
        self.done: set[int] = set()
        self.vocab: dict[int, int] = {}  # id slot -> smallest vocabulary reading it
        self.stop: set[int] = set()  # ids of the tensors the program is given, not computes

    def slot(self, tensor: Any) -> int:
        return self.slots.setdefault(id(tensor), len(self.slots))

    def plan(self, tensor: Any) -> None:
        if id(tensor) in self.stop:
            return
        operation, node = _history(tensor)
        if id(node) in self.done:
            return
        self.done.add(id(node))
        for t in node.input_tensors:
            self.plan(t)
        outputs = node.output_tensors
        if len(outputs) != 1:
            raise _refuse(operation, f"{len(outputs)} outputs")
        if _kind(operation) == "InputLayer":
            return
        run, inputs = self.step(operation, node)
        self.steps.append(_Planned(inputs, self.slot(outputs[0]), run))

    # Each builder returns (run(env) -> value, input slots).
    def step(self, op: Any, node: Any) -> tuple[Callable[[_Env], Any], tuple[int, ...]]:
        kind = _kind(op)
        args, kwargs = node.arguments.args, node.arguments.kwargs
        if type(op).__module__ == _OPS:
            return self.op_step(op, kind, args, kwargs)
        if hasattr(op, "layers") and hasattr(op, "inputs"):
            raise _refuse(op, "a nested model")
        if not kind:
            raise _refuse(op, "not a stock Keras layer")
        extra = set(kwargs) - _CALL_KWARGS
        if extra:
            raise _refuse(op, f"call arguments {sorted(extra)}")
        for key in ("training",):
            if _is_symbolic(kwargs.get(key)):
                raise _refuse(op, f"a tensor as {key}")
        mask = kwargs.get("mask")
        if mask is not None and not _is_symbolic(mask):
            raise _refuse(op, "a constant mask")
        _check_layer(op)
        if kind == "Concatenate":
            if len(args) != 1 or not isinstance(args[0], list | tuple):
                raise _refuse(op, "unexpected call arguments")
            sources = tuple(self.slot(t) for t in args[0])
            axis = op.axis
            return (lambda env: np.concatenate([env[i] for i in sources], axis=axis)), sources
        if len(args) != 1 or not _is_symbolic(args[0]):
            raise _refuse(op, "unexpected call arguments")
        (x_tensor,) = args
        x = self.slot(x_tensor)
        if kind in _IDENTITY:
            return (lambda env: env[x]), (x,)
        if kind == "Embedding":
            table = _array(op.embeddings)
            self.vocab[x] = min(self.vocab.get(x, table.shape[0]), table.shape[0])
            return (lambda env: table[env[x]]), (x,)
        if kind == "Dense":
            kernel = _array(op.kernel)
            bias = _array(op.bias) if op.use_bias else None
            act = _ACTIVATIONS[_activation(op.activation, op)]

            def dense(env: _Env) -> np.ndarray:
                y = np.matmul(env[x], kernel)
                if bias is not None:
                    y += bias
                return act(y)

            return dense, (x,)
        if kind == "Activation":
            act = _ACTIVATIONS[_activation(op.activation, op)]
            return (lambda env: act(env[x])), (x,)
        if kind in _RNNS or kind == "Bidirectional":
            return self.rnn_step(op, x_tensor, mask)
        raise _refuse(op, "layer type")

    def rnn_step(self, op: Any, x_tensor: Any, mask_tensor: Any
                 ) -> tuple[Callable[[_Env], Any], tuple[int, ...]]:
        rnn = _recurrent(op)
        if x_tensor.shape is None or len(x_tensor.shape) != 3:
            raise _refuse(op, f"input of shape {x_tensor.shape} (need batch, time, features)")
        m = None if mask_tensor is None else self.slot(mask_tensor)
        found = self.lookup(x_tensor)
        if found is not None:
            ids_tensor, tables = found
            vocab = min(t.shape[0] for t in tables)
            size = vocab * sum(d.kernel.shape[1] for d in rnn.directions) * 4  # float32
            if size <= self.fold_limit_bytes and all(t.shape[0] == vocab for t in tables):
                emb = np.concatenate(tables, axis=1)
                table = np.stack([emb @ d.kernel + d.bias for d in rnn.directions])
                ids = self.slot(ids_tensor)
                self.vocab[ids] = min(self.vocab.get(ids, table.shape[1]), table.shape[1])
                if m is None:
                    return (lambda env: _run_recurrent(rnn, None, None, ids=env[ids],
                                                       table=table)), (ids,)
                return (lambda env: _run_recurrent(rnn, None, env[m], ids=env[ids],
                                                   table=table)), (ids, m)
        x = self.slot(x_tensor)
        if m is None:
            return (lambda env: _run_recurrent(rnn, env[x], None)), (x,)
        return (lambda env: _run_recurrent(rnn, env[x], env[m])), (x, m)

    def lookup(self, tensor: Any) -> tuple[Any, list[np.ndarray]] | None:
        """``(ids tensor, embedding tables)`` when ``tensor`` is embeddings of one id tensor
        (through identity layers and ``Concatenate`` on the last axis); else ``None``."""
        op, node = _history(tensor)
        kind = _kind(op)
        args = node.arguments.args
        if kind in _IDENTITY:
            return self.lookup(args[0])
        if kind == "Embedding":
            _check_layer(op)
            return args[0], [_array(op.embeddings)]
        if kind == "Concatenate" and op.axis in (-1, len(tensor.shape) - 1):
            found = [self.lookup(t) for t in args[0]]
            if any(f is None for f in found):
                return None
            ids = {id(f[0]) for f in found if f is not None}
            if len(ids) != 1:
                return None
            return found[0][0], [t for f in found if f is not None for t in f[1]]  # type: ignore[index]
        return None

    def op_step(self, op: Any, kind: str, args: Sequence[Any], kwargs: dict[str, Any]
                ) -> tuple[Callable[[_Env], Any], tuple[int, ...]]:
        if kwargs:
            raise _refuse(op, f"op arguments {sorted(kwargs)}")
        binary: dict[str, Callable[[Any, Any], Any]] = {
            "NotEqual": np.not_equal, "Equal": np.equal,
            "LogicalOr": np.logical_or, "LogicalAnd": np.logical_and}
        if kind in binary and len(args) == 2:
            fn = binary[kind]
            operands = [("slot", self.slot(a)) if _is_symbolic(a) else ("const", a)
                        for a in args]
            if any(k == "const" and not isinstance(v, int | float | bool)
                   for k, v in operands):
                raise _refuse(op, "a non-scalar constant")
            (ka, va), (kb, vb) = operands
            slots = tuple(v for k, v in operands if k == "slot")
            return (lambda env: fn(env[va] if ka == "slot" else va,
                                   env[vb] if kb == "slot" else vb)), slots
        if kind == "Concatenate" and len(args) == 1 and isinstance(args[0], list | tuple):
            sources = tuple(self.slot(t) for t in args[0])
            axis = op.axis
            return (lambda env: np.concatenate([env[i] for i in sources], axis=axis)), sources
        if len(args) != 1 or not _is_symbolic(args[0]):
            raise _refuse(op, "unexpected op arguments")
        x = self.slot(args[0])
        if kind == "LogicalNot":
            return (lambda env: np.logical_not(env[x])), (x,)
        if kind == "ExpandDims":
            axis = _axis(op.axis)
            return (lambda env: np.expand_dims(env[x], axis)), (x,)
        if kind in ("Any", "All"):
            reduce = np.any if kind == "Any" else np.all
            axis, keepdims = _axis(op.axis), bool(op.keepdims)
            return (lambda env: reduce(env[x], axis=axis, keepdims=keepdims)), (x,)
        if kind in ("ZerosLike", "OnesLike"):
            dtype = np.dtype(op.dtype or args[0].dtype)
            fill = np.zeros if kind == "ZerosLike" else np.ones
            shape_of = self.shape_source(args[0])
            if shape_of is not None:  # only the shape is read: skip the embedding lookup
                ids, width = shape_of
                return (lambda env: fill((*env[ids].shape, width), dtype)), (ids,)
            return (lambda env: fill(env[x].shape, dtype)), (x,)
        raise _refuse(op, "op type")

    def shape_source(self, tensor: Any) -> tuple[int, int] | None:
        op, node = _history(tensor)
        if _kind(op) == "Embedding":
            return self.slot(node.arguments.args[0]), int(op.output_dim)
        return None


def numpy_forward(model: Any, *, fold_limit_bytes: int = FOLD_LIMIT_BYTES) -> Forward:
    """The model's forward pass at ``training=False`` as a NumPy function of its one input;
    :class:`UnsupportedModelError` if the model holds anything this module does not support."""
    inputs, outputs = _io(model)
    return _program(model, inputs, outputs[0], fold_limit_bytes)


def numpy_head(model: Any, inputs: Sequence[Any], *,
               fold_limit_bytes: int = FOLD_LIMIT_BYTES) -> Callable[..., np.ndarray]:
    """The part of a model's graph from ``inputs`` (symbolic tensors inside it: an inner
    layer's output, a model input) to its one output, as a NumPy function of those tensors'
    values in order. The head of a model whose first part runs elsewhere: the text encoder
    on a fast path, the side inputs joined after it here."""
    _, outputs = _io(model, n_inputs=None)
    return _program(model, list(inputs), outputs[0], fold_limit_bytes)


def _program(model: Any, inputs: list[Any], output: Any,
             fold_limit_bytes: int) -> Callable[..., np.ndarray]:
    planner = _Planner(model, fold_limit_bytes)
    input_slots = [planner.slot(t) for t in inputs]
    planner.stop.update(id(t) for t in inputs)
    planner.plan(output)
    output_slot = planner.slot(output)
    needed = {output_slot}
    steps: list[_Planned] = []
    for planned in reversed(planner.steps):  # keep only the steps the output needs
        if planned.output in needed:
            steps.append(planned)
            needed.update(planned.inputs)
    steps.reverse()
    if needed - {p.output for p in steps} - set(input_slots):
        raise UnsupportedModelError("the model's output depends on a tensor that is not "
                                    "computed from its input")
    program = [(p.output, p.run) for p in steps]
    n_slots = len(planner.slots)
    specs = [(slot, np.dtype(str(getattr(t, "dtype", "float32"))), tuple(t.shape),
              planner.vocab.get(slot)) for slot, t in zip(input_slots, inputs, strict=True)]

    def forward(*xs: np.ndarray) -> np.ndarray:
        if len(xs) != len(specs):
            raise ValueError(f"expected {len(specs)} inputs, got {len(xs)}")
        env: _Env = [None] * n_slots
        for x, (slot, dtype, shape, vocab) in zip(xs, specs, strict=True):
            env[slot] = _standardize(x, dtype, shape, vocab)
        for out, run in program:
            env[out] = run(env)
        return np.asarray(env[output_slot], dtype=np.float32)

    return forward


def _io(model: Any, *, n_inputs: int | None = 1) -> tuple[list[Any], list[Any]]:
    """The model's symbolic inputs and outputs: one output, and ``n_inputs`` inputs (any
    number with ``None``)."""
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, TypeError, ValueError):
        raise UnsupportedModelError(f"model {getattr(model, 'name', model)!r} has no symbolic "
                                    "inputs and outputs (build it on a keras.Input)") from None
    if (n_inputs is not None and len(inputs) != n_inputs) or len(outputs) != 1:
        raise UnsupportedModelError(f"model {model.name!r} has {len(inputs)} inputs and "
                                    f"{len(outputs)} outputs; one of each is supported")
    return inputs, outputs


def _standardize(x: np.ndarray, dtype: np.dtype, shape: tuple[int | None, ...],
                 vocab: int | None) -> np.ndarray:
    array = np.asarray(x)
    # Any batch size and any number of time steps (as a tf.function with a None signature).
    if array.ndim != len(shape) or (array.ndim >= 3 and shape[-1] is not None
                                    and array.shape[-1] != shape[-1]):
        raise ValueError(f"input of shape {array.shape} does not fit the model's {shape}")
    if dtype.kind in "iu":
        if array.dtype.kind not in "iu":
            raise ValueError(f"token ids must be integers, got {array.dtype}")
        array = array.astype(np.intp, copy=False)
        if vocab is not None and array.size and (array.min() < 0 or array.max() >= vocab):
            raise ValueError(f"token ids must be in [0, {vocab}), got "
                             f"[{array.min()}, {array.max()}]")
        return array
    return np.ascontiguousarray(array, dtype=dtype)


def numpy_forecaster(model: Any, *, fold_limit_bytes: int = FOLD_LIMIT_BYTES) -> Forward:
    """``(n, W, 1)`` float32 windows -> the model's ``(n, 1)`` outputs, in NumPy."""
    inputs, _ = _io(model)
    if str(inputs[0].dtype) != "float32" or len(inputs[0].shape) != 3:
        raise UnsupportedModelError(f"model {model.name!r} takes {inputs[0].dtype} input of "
                                    f"shape {inputs[0].shape}, not float32 (n, W, features)")
    return numpy_forward(model, fold_limit_bytes=fold_limit_bytes)


def numpy_sentiment(model: Any, *, fold_limit_bytes: int = FOLD_LIMIT_BYTES) -> Forward:
    """``(n, T)`` integer token ids (any ``T``, left-padded with 0) -> the model's ``(n, 1)``
    outputs, in NumPy."""
    inputs, _ = _io(model)
    if not str(inputs[0].dtype).startswith(("int", "uint")) or len(inputs[0].shape) != 2:
        raise UnsupportedModelError(f"model {model.name!r} takes {inputs[0].dtype} input of "
                                    f"shape {inputs[0].shape}, not integer ids (n, T)")
    return numpy_forward(model, fold_limit_bytes=fold_limit_bytes)


# --- ONNX Runtime: the same weights in ONNX's fused LSTM/GRU kernels ------------------------------

def _mask_kind(tensor: Any, ids: Any) -> frozenset[str]:
    """What a mask tensor of the graph is, read symbolically: ``{"ne0"}`` for ``ids != 0``
    (broadcast over features), ``{"all"}`` / ``{"none"}`` for constant True / False; several
    kinds for a concatenation along features. Anything else is refused."""
    op, node = _history(tensor)
    kind, args = _kind(op), node.arguments.args
    if type(op).__module__ != _OPS:
        raise _refuse(op, "a mask computed by a layer the ONNX path cannot read")
    if kind == "NotEqual" and len(args) == 2:
        a, b = args
        if (a is ids and not _is_symbolic(b) and b == 0) or (b is ids and not _is_symbolic(a)
                                                              and a == 0):
            return frozenset({"ne0"})
    elif kind == "ZerosLike" and np.dtype(op.dtype or "bool") == bool:
        return frozenset({"none"})
    elif kind == "OnesLike" and np.dtype(op.dtype or "bool") == bool:
        return frozenset({"all"})
    elif kind == "ExpandDims":
        return _mask_kind(args[0], ids)
    elif kind in ("LogicalOr", "LogicalAnd") and len(args) == 2:
        a, b = (_mask_kind(t, ids) for t in args)
        if len(a) == 1 and len(b) == 1:
            absorbing, neutral = ("all", "none") if kind == "LogicalOr" else ("none", "all")
            kinds = a | b
            if absorbing in kinds:
                return frozenset({absorbing})
            return kinds - {neutral} or frozenset({neutral})
    elif kind == "Concatenate" and _axis(op.axis) in (-1, len(tensor.shape) - 1):
        return frozenset().union(*(_mask_kind(t, ids) for t in args[0]))
    elif kind in ("Any", "All") and _axis(op.axis) in (-1, len(tensor.shape)):
        kinds = _mask_kind(args[0], ids)
        absorbing, neutral = ("all", "none") if kind == "Any" else ("none", "all")
        if absorbing in kinds:
            return frozenset({absorbing})
        return kinds - {neutral} or frozenset({neutral})
    raise _refuse(op, "a mask other than token ids != 0")


@dataclass
class _OnnxGraph:
    nodes: list[Any]
    weights: list[Any]
    masked: bool = False
    counter: int = 0

    def name(self, base: str) -> str:
        self.counter += 1
        return f"{base}_{self.counter}"

    def const(self, value: np.ndarray, base: str) -> str:
        from onnx import numpy_helper

        name = self.name(base)
        self.weights.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        from onnx import helper

        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs


def _onnx_gates(layer: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras cell weights -> ONNX ``W (G, in)``, ``R (G, u)``, ``B (2G,)``: LSTM gates ``i f c
    o`` -> ``i o f c``; GRU keeps ``z r h``; ONNX adds input and recurrent biases."""
    cell = layer.cell
    u = int(cell.units)
    kernel, recurrent = _array(cell.kernel), _array(cell.recurrent_kernel)
    if _kind(layer) == "LSTM":
        order = np.r_[0:u, 3 * u:4 * u, u:2 * u, 2 * u:3 * u]
        bias = _array(cell.bias) if cell.use_bias else np.zeros(4 * u, np.float32)
        b = np.concatenate([bias[order], np.zeros(4 * u, np.float32)])
        return kernel[:, order].T.copy(), recurrent[:, order].T.copy(), b
    if not cell.use_bias:
        b = np.zeros(6 * u, np.float32)
    elif cell.reset_after:
        b = _array(cell.bias).reshape(-1)  # input bias, then recurrent bias
    else:
        b = np.concatenate([_array(cell.bias), np.zeros(3 * u, np.float32)])
    return kernel.T.copy(), recurrent.T.copy(), b


def _onnx_rnn(g: _OnnxGraph, layer: Any, x: str, *, masked: bool) -> tuple[str, int]:
    """Emit one LSTM/GRU (or a Bidirectional pair) on time-major ``x``; returns (output, rank).
    A masked layer reads time-reversed ids (see :func:`onnx_forward`), so its directions
    swap: ONNX's forward pass over the reversed text is Keras' backward layer."""
    rnn = _recurrent(layer)  # validates every option the NumPy path validates
    if rnn.merge not in (None, "concat"):
        raise _refuse(layer, f"merge_mode={rnn.merge!r} on the ONNX path")
    parts = ((layer.forward_layer, layer.backward_layer) if rnn.merge else (layer,))
    backwards = [bool(p.go_backwards) for p in parts]
    if rnn.merge and backwards != [False, True]:
        raise _refuse(layer, "a forward layer that goes backwards")
    if masked and (rnn.return_sequences or (rnn.zero_output_for_mask and not rnn.merge)):
        raise _refuse(layer, "a masked RNN returning sequences or zeroing masked outputs on "
                      "the ONNX path")
    if not rnn.merge and backwards[0] and rnn.return_sequences:
        raise _refuse(layer, "go_backwards with return_sequences on the ONNX path")
    order = list(reversed(parts)) if masked and rnn.merge else list(parts)
    gates = [_onnx_gates(p) for p in order]
    w, r, b = (np.stack([gate[i] for gate in gates]) for i in range(3))
    # One direction steps backwards over the text if exactly one of go_backwards and the
    # reversed feed holds.
    single = "reverse" if backwards[0] != masked else "forward"
    direction = "bidirectional" if rnn.merge else single
    attrs: dict[str, Any] = {"direction": direction, "hidden_size": rnn.units}
    if rnn.kind == "gru":
        attrs["linear_before_reset"] = int(rnn.reset_after)
    inputs = [x, g.const(w, "W"), g.const(r, "R"), g.const(b, "B"), "lens" if masked else ""]
    y, y_h = g.node(rnn.kind.upper(), inputs, 2, **attrs)[:2]
    if rnn.return_sequences:  # Y: (T, D, n, u), both directions in input time order
        if not rnn.merge:
            return g.node("Squeeze", [y, g.const(np.array([1]), "axes")])[0], 3
        (yt,) = g.node("Transpose", [y], perm=[0, 2, 1, 3])
        return g.node("Reshape", [yt, g.const(np.array([0, 0, -1]), "shape")])[0], 3
    if not rnn.merge:
        return g.node("Squeeze", [y_h, g.const(np.array([0]), "axes")])[0], 2
    if masked:  # back to Keras' [forward, backward]
        (y_h,) = g.node("Gather", [y_h, g.const(np.array([1, 0]), "swap")], axis=0)
    (yt,) = g.node("Transpose", [y_h], perm=[1, 0, 2])
    return g.node("Reshape", [yt, g.const(np.array([0, -1]), "shape")])[0], 2


_ONNX_ACTIVATIONS: Final = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu",
                            "softmax": "Softmax"}


def _chain(model: Any, output: Any, input_tensor: Any) -> list[tuple[Any, Any]]:
    """The layers from the input (exclusive) to the output, when the model is a chain (an
    embedding group of several embeddings of the input counts as one link)."""
    links: list[tuple[Any, Any]] = []
    tensor = output
    while tensor is not input_tensor:
        op, node = _history(tensor)
        links.append((op, node))
        args = node.arguments.args
        if _kind(op) == "Concatenate" and args and isinstance(args[0], list | tuple):
            for t in args[0]:
                member, _ = _history(t)
                if _kind(member) != "Embedding" or _history(t)[1].arguments.args[0] is not (
                        input_tensor):
                    raise _refuse(op, "a concatenation of anything but embeddings of the "
                                  "input on the ONNX path")
            break
        if not args or not _is_symbolic(args[0]) or len(args) != 1:
            raise _refuse(op, "not a single-input link of a chain on the ONNX path")
        tensor = args[0]
    links.reverse()
    return links


def onnx_forward(model: Any, *, threads: int = 1, memory_arena: bool = False) -> Forward:
    """The model as an ONNX graph run by ONNX Runtime, built from its weights (no converter):
    ``Embedding``/``Concatenate`` -> ``Gather``, LSTM/GRU/Bidirectional -> ONNX's fused
    ``LSTM``/``GRU`` kernels, ``Dense`` -> ``MatMul``. Supports chains of the layers the NumPy
    path supports, with a mask only as ``ids != 0`` into one RNN that returns its last output
    (left-padded texts: a call whose ids are not left-padded runs the NumPy path, which
    masks any pattern exactly). Needs the ``onnx`` and ``onnxruntime`` packages;
    :class:`UnsupportedModelError` when they are missing or the model is not supported.

    ``threads``: ONNX Runtime's intra-op threads (1 suits serving's small batches on a small
    machine). ``memory_arena``: ONNX Runtime's CPU arena keeps the largest batch's buffers for
    good (scoring 1,200 texts at once held 170 MB more); off, small batches run as fast."""
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError as exc:
        raise UnsupportedModelError(f"the ONNX path needs onnx and onnxruntime: {exc}") from None
    inputs, outputs = _io(model)
    x_tensor, y_tensor = inputs[0], outputs[0]
    token_ids = str(x_tensor.dtype).startswith(("int", "uint"))
    g = _OnnxGraph([], [])
    cur, rank, time_major = "x", len(x_tensor.shape), False
    vocab: int | None = None
    for op, node in _chain(model, y_tensor, x_tensor):
        kind = _kind(op)
        _check_layer(op)
        kwargs = node.arguments.kwargs
        if set(kwargs) - _CALL_KWARGS:
            raise _refuse(op, f"call arguments {sorted(set(kwargs) - _CALL_KWARGS)}")
        if kind in ("Embedding", "Concatenate") and cur == "x" and token_ids:
            members = ([op] if kind == "Embedding" else
                       [_history(t)[0] for t in node.arguments.args[0]])
            for member in members:
                _check_layer(member)
            table = np.concatenate([_array(m.embeddings) for m in members], axis=1)
            vocab = min(int(m.input_dim) for m in members)
            (cur,) = g.node("Gather", [g.const(table, "embeddings"), "x"], axis=0)
            rank, time_major = 3, True  # the wrapper feeds ids time-major
        elif kind in _IDENTITY:
            continue
        elif kind in _RNNS or kind == "Bidirectional":
            mask = kwargs.get("mask")
            kinds = frozenset({"all"}) if mask is None else _mask_kind(mask, x_tensor)
            if kinds not in ({"all"}, {"ne0"}):
                raise _refuse(op, f"mask {sorted(kinds)}")
            masked = kinds == {"ne0"}
            if masked and g.masked:
                raise _refuse(op, "a second masked RNN on the ONNX path")
            if not time_major:
                (cur,) = g.node("Transpose", [cur], perm=[1, 0, 2])
                time_major = True
            g.masked |= masked
            cur, rank = _onnx_rnn(g, op, cur, masked=masked)
            time_major = rank == 3
        elif kind in ("Dense", "Activation"):
            if kind == "Dense":
                (cur,) = g.node("MatMul", [cur, g.const(_array(op.kernel), "kernel")])
                if op.use_bias:
                    (cur,) = g.node("Add", [cur, g.const(_array(op.bias), "bias")])
            name = _activation(op.activation, op)
            if name != "linear":
                attrs = {"axis": -1} if name == "softmax" else {}
                (cur,) = g.node(_ONNX_ACTIVATIONS[name], [cur], **attrs)
        else:
            raise _refuse(op, "layer type on the ONNX path")
    if rank == 3 and time_major:
        (cur,) = g.node("Transpose", [cur], perm=[1, 0, 2])
    g.nodes.append(helper.make_node("Identity", [cur], ["y"]))
    x_info = helper.make_tensor_value_info(
        "x", TensorProto.INT32 if token_ids else TensorProto.FLOAT,
        [None, None] if token_ids else [None, None, x_tensor.shape[-1]])
    graph_inputs = [x_info]
    if g.masked:
        graph_inputs.append(helper.make_tensor_value_info("lens", TensorProto.INT32, [None]))
    graph = helper.make_graph(g.nodes, model.name, graph_inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             list(y_tensor.shape))],
                              initializer=g.weights)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(proto)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = memory_arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    out_tail = tuple(int(d) for d in y_tensor.shape[1:] if d is not None)
    shape = tuple(x_tensor.shape)
    fallback = numpy_forward(model, fold_limit_bytes=0) if g.masked else None
    run = session.run

    def forward(x: np.ndarray) -> np.ndarray:
        if not token_ids:
            x = _standardize(x, np.dtype(np.float32), shape, None)
            if len(x) == 0:
                return np.zeros((0, *out_tail), np.float32)
            return run(None, {"x": x})[0]
        ids = _standardize(x, np.dtype(np.int32), shape, vocab)
        if len(ids) == 0:
            return np.zeros((0, *out_tail), np.float32)
        if not g.masked:
            return run(None, {"x": np.ascontiguousarray(ids.T, dtype=np.int32)})[0]
        mask = ids != 0
        if not np.all(mask[:, 1:] >= mask[:, :-1]):  # not left-padded: mask it step by step
            assert fallback is not None
            return fallback(ids)
        feed = {"x": np.ascontiguousarray(ids[:, ::-1].T, dtype=np.int32),
                "lens": np.count_nonzero(mask, axis=1).astype(np.int32)}
        return run(None, feed)[0]

    return forward


def onnx_forecaster(model: Any, *, threads: int = 1, memory_arena: bool = False) -> Forward:
    """:func:`numpy_forecaster`'s contract, run by ONNX Runtime (see :func:`onnx_forward`)."""
    numpy_forecaster(model, fold_limit_bytes=0)  # the same input checks
    return onnx_forward(model, threads=threads, memory_arena=memory_arena)


def onnx_sentiment(model: Any, *, threads: int = 1, memory_arena: bool = False) -> Forward:
    """:func:`numpy_sentiment`'s contract, run by ONNX Runtime (see :func:`onnx_forward`)."""
    numpy_sentiment(model, fold_limit_bytes=0)
    return onnx_forward(model, threads=threads, memory_arena=memory_arena)
