"""Import Keras on TensorFlow quietly. Training and export modules call this; inference does not."""

from __future__ import annotations

import os


def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras as _keras

    return _keras
