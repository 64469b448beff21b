"""Quantized copies of models for export: Keras's `model.quantize`, on a copy."""

import os
import tempfile

import keras

from layers.quantizable_conv2d import QuantizableConv2D
from layers.validation import check_choice

# Modes `export_model(..., quantize=...)` takes: checked end to end (served
# graph, core ops only, answers against the quantized Keras model).
QUANTIZE_MODES = ("int8",)
# Tolerance of a quantized export's answers against the quantized Keras model
# run eagerly: a graph's fused float ops round differently, which moves some
# activations by one int8 step (measured up to 0.03 on vit_base's logits).
QUANTIZED_ATOL = 0.05
QUANTIZABLE = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Embedding,
    QuantizableConv2D,
)


def quantized_copy(model, mode):
    """A copy of `model` quantized with `model.quantize(mode)`; `model` is kept.

    The copy goes through a `.keras` file (loaded with `safe_mode=True`), so
    everything the model holds travels, a `TextClassifier`'s vocabulary too.
    Keras 3 quantizes `Dense`, `EinsumDense` and `Embedding` layers (weights
    int8 with per-channel scales, inputs quantized on the fly); the zoo's
    convolutions are `layers.QuantizableConv2D` (int8 kernels, per output
    channel, dequantized for a float convolution). Other layers, a plain
    `keras.layers.Conv2D` among them, stay float.

    Args:
        model: a built `keras.Model`.
        mode: one of `QUANTIZE_MODES`.

    Returns:
        The quantized `keras.Model`.

    Raises:
        ValueError: an unknown mode, or a model with no layer to quantize.
    """
    mode = check_choice("quantize", mode, QUANTIZE_MODES)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        copy = keras.saving.load_model(path, safe_mode=True)
    # Only the layers Keras can quantize: it warns for every other layer, and
    # refuses the unbuilt StringLookup inside a loaded TextVectorization.
    copy.quantize(mode, filters=lambda layer: isinstance(layer, QUANTIZABLE))
    if not any(v.dtype == mode for v in copy.weights):
        raise ValueError(
            f"Model {model.name!r} has no layer that `quantize({mode!r})` "
            "quantizes (Dense, EinsumDense, Embedding, QuantizableConv2D)."
        )
    return copy
