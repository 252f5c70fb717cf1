"""The one place TensorFlow and Keras are imported: lazily (not at import of tickcast), quietly
and reproducibly."""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["keras", "set_seed", "tensorflow"]


def _quiet() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no oneDNN/CPU-feature banners
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def tensorflow() -> ModuleType:
    _quiet()
    import tensorflow as tf

    return tf


def keras() -> ModuleType:
    _quiet()
    import keras as k

    return k


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (op determinism stays off: it is much slower on CPU)."""
    keras().utils.set_random_seed(seed)
