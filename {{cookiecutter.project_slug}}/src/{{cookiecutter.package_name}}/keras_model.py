"""KerasMLP: a dense network on the preprocessed matrix, built from model.params and training.

Imported only when the framework is tensorflow, so the other stages never pay for TensorFlow's start-up.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import ModelConfig
from .data import label
from .features import build_preprocessor, model_frame

if TYPE_CHECKING:
    import pandas as pd

PROGRESS_LINES = 20


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter out of the stage logs (set before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def keras_numpy_quiet() -> Iterator[None]:
    """Keras converts TensorFlow tensors with np.array(x), which numpy 2 flags as deprecated every time; harmless."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy keyword", DeprecationWarning)
        yield


def fit_keras(config: ModelConfig, rows: pd.DataFrame) -> tuple[Any, Any, list[str] | None]:
    """(fitted ColumnTransformer, Keras model, classes); deterministic for a given training.seed."""
    quiet_tensorflow()
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.training.seed)
    tf.config.experimental.enable_op_determinism()
    preprocess = build_preprocessor(config.data.features)
    matrix = np.asarray(preprocess.fit_transform(model_frame(rows, config.data.features)), dtype=np.float32)
    target = rows[config.data.target]
    classes: list[str] | None = None
    if config.model.task == "classification":
        classes = sorted({label(v) for v in target})
        index = {name: i for i, name in enumerate(classes)}
        y = np.asarray([index[label(v)] for v in target], dtype=np.int64)
    else:
        y = target.to_numpy(dtype=np.float32)
    model = build_model(config, matrix.shape[1], classes, y)
    t = config.training
    callbacks: list[Any] = [progress_callback(t.epochs)]
    monitor = "val_loss" if t.validation_split > 0 else "loss"
    if t.early_stopping is not None:
        stop = t.early_stopping
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=stop.patience, min_delta=stop.min_delta, restore_best_weights=True
            )
        )
    with keras_numpy_quiet():
        model.fit(
            matrix,
            y,
            epochs=t.epochs,
            batch_size=t.batch_size,
            validation_split=t.validation_split,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
    return preprocess, model, classes


def build_model(config: ModelConfig, inputs: int, classes: list[str] | None, y: np.ndarray) -> Any:
    """Dense layers from model.params; softmax over the classes, or one unit rescaled to the target's units."""
    import keras

    params = config.model.params
    l2 = float(params.get("l2", 0.0))
    dropout = float(params.get("dropout", 0.0))
    regularizer = keras.regularizers.L2(l2) if l2 else None
    layers: list[Any] = [keras.Input(shape=(inputs,), dtype="float32")]
    for units in params.get("hidden_units", [32]):
        layers.append(
            keras.layers.Dense(int(units), activation=params.get("activation", "relu"), kernel_regularizer=regularizer)
        )
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    if classes is not None:
        layers.append(keras.layers.Dense(len(classes), activation="softmax"))
        loss = "sparse_categorical_crossentropy"
    else:
        # The network learns a standardised target; the last layer maps it back, so outputs are in target units.
        mean, std = float(np.mean(y)), float(np.std(y)) or 1.0
        layers += [keras.layers.Dense(1), keras.layers.Rescaling(scale=std, offset=mean)]
        loss = "mse"
    model = keras.Sequential(layers, name="KerasMLP")
    model.compile(optimizer=optimizer(config), loss=loss)
    return model


def optimizer(config: ModelConfig) -> Any:
    import keras

    rate = config.training.learning_rate
    choices = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return choices[config.training.optimizer](learning_rate=rate)


def progress_callback(epochs: int) -> Any:
    """A Keras callback printing one line every few epochs (about PROGRESS_LINES in all) and the last one."""
    import keras

    every = max(1, epochs // PROGRESS_LINES)

    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            if epoch == 0 or (epoch + 1) % every == 0 or epoch + 1 == epochs:
                shown = "  ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()) if k.endswith("loss"))
                print(f"train: epoch {epoch + 1}/{epochs}  {shown}", flush=True)

        def on_train_end(self, logs: dict[str, float] | None = None) -> None:
            if self.model.stop_training:
                print("train: stopped early; best weights restored", flush=True)

    return EpochProgress()
