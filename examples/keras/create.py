"""Create a tiny Keras model (random weights, no download) next to this file:
model.keras (Keras 3, ``model.save``) and saved_model/ (a TensorFlow SavedModel,
``model.export``).

    python examples/keras/create.py [FOLDER]

It takes two named inputs, ``features`` (float32, [batch, 4]) and ``scale`` (float32,
[batch, 1]), and answers two named outputs, ``logits`` and ``probabilities`` (float32,
[batch, 3]). Both files carry their signature: deployer.yaml declares none.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # after KERAS_BACKEND

CLASSES = 3


def build() -> Any:
    """A functional model with two named inputs and two named outputs."""
    keras.utils.set_random_seed(0)
    features = keras.Input(shape=(4,), name="features", dtype="float32")
    scale = keras.Input(shape=(1,), name="scale", dtype="float32")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(features)
    raw = keras.layers.Dense(CLASSES, name="raw")(hidden)
    logits = keras.layers.Multiply(name="logits")([raw, scale])
    probabilities = keras.layers.Softmax(name="probabilities")(logits)
    return keras.Model(
        inputs={"features": features, "scale": scale},
        outputs={"logits": logits, "probabilities": probabilities},
        name="tiny",
    )


def example_inputs(batch: int = 2) -> dict[str, np.ndarray]:
    generator = np.random.default_rng(1)
    return {
        "features": generator.random((batch, 4), dtype=np.float32),
        "scale": np.linspace(0.5, 2.0, batch, dtype=np.float32).reshape(batch, 1),
    }


def main(folder: Path) -> None:
    model = build()
    model.save(folder / "model.keras")
    print(f"wrote {folder / 'model.keras'}")
    model.export(str(folder / "saved_model"), verbose=False)
    print(f"wrote {folder / 'saved_model'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
