"""Layers that build Keras sublayers in `build` reload quantized from `.keras`."""

import keras
import numpy as np
import pytest

import layers

CASES = {
    "encoder": (lambda: layers.TransformerEncoder(2, 16), (5, 8), "float32"),
    "decoder": (lambda: layers.TransformerDecoder(2, 16), (5, 8), "float32"),
    "cbam": (lambda: layers.ConvolutionalAttentionModule(2), (6, 6, 8), "float32"),
    "self_attention_2d": (lambda: layers.SelfAttention2D(4), (4, 4, 8), "float32"),
    "embedding": (
        lambda: layers.TokenAndPositionEmbedding(30, 5, 8, mask_zero=True),
        (5,),
        "int32",
    ),
    "bigram": (
        lambda: layers.HashedBigramEmbedding(31, 8, mask_zero=True),
        (5,),
        "int32",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_quantized_layer_reloads_with_the_same_output(case, tmp_path):
    make, shape, dtype = CASES[case]
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape, dtype=dtype)
    model = keras.Model(inputs, make()(inputs))
    rng = np.random.default_rng(0)
    if dtype == "int32":
        x = rng.integers(1, 30, (2, *shape)).astype(dtype)
    else:
        x = rng.normal(size=(2, *shape)).astype(dtype)
    model.quantize("int8")
    quantized = sum(v.dtype == "int8" for v in model.weights)
    assert quantized > 0
    expected = keras.ops.convert_to_numpy(model(x))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert sum(v.dtype == "int8" for v in loaded.weights) == quantized
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), expected, atol=1e-6
    )
