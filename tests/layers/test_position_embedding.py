import keras
import numpy as np
import pytest
from keras import ops

from layers.position_embedding import PositionEmbedding
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import keras_mask


def table_of(layer):
    return ops.convert_to_numpy(layer.position_embeddings)


def test_layer():
    x = np.random.default_rng(1).normal(size=(2, 6, 4)).astype("float32")
    run_layer_test(
        PositionEmbedding,
        {"sequence_length": 10, "initializer": "random_normal"},
        x,
        (2, 6, 4),
        expected_num_trainable_weights=1,
    )


def test_returns_rows_of_table_for_shorter_inputs():
    layer = PositionEmbedding(10)
    layer.build((None, 10, 4))
    assert tuple(layer.position_embeddings.shape) == (10, 4)
    table = table_of(layer)
    rng = np.random.default_rng(2)
    for length in (10, 3, 1):
        x = rng.normal(size=(3, length, 4)).astype("float32")
        out = ops.convert_to_numpy(layer(x))
        np.testing.assert_array_equal(out, np.broadcast_to(table[:length], x.shape))


def test_gradient_reaches_only_used_rows():
    layer = PositionEmbedding(8)
    inputs = keras.Input((3, 5))
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    before = table_of(layer).copy()
    model.train_on_batch(np.zeros((2, 3, 5), "float32"), np.ones((2, 3, 5), "float32"))
    changed = np.any(table_of(layer) != before, axis=-1)
    np.testing.assert_array_equal(changed, [True] * 3 + [False] * 5)


def test_longer_input_raises():
    with pytest.raises(ValueError, match="sequence_length=4"):
        PositionEmbedding(4)(np.zeros((2, 5, 3), "float32"))
    layer = PositionEmbedding(4)
    layer(np.zeros((2, 4, 3), "float32"))
    with pytest.raises(ValueError, match="sequence_length=4"):
        layer(np.zeros((2, 6, 3), "float32"))
    with pytest.raises(ValueError, match="sequence_length=4"):
        layer(keras.Input((9, 3)))


def test_passes_mask_through():
    x = np.ones((2, 4, 3), "float32")
    x[1, 1:] = 0.0
    out = PositionEmbedding(6)(keras.layers.Masking(0.0)(x))
    np.testing.assert_array_equal(keras_mask(out), [[1, 1, 1, 1], [1, 0, 0, 0]])


def test_mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = PositionEmbedding(6)
    out = layer(np.ones((2, 5, 4), "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(layer.position_embeddings.dtype) == "float32"
    out = ops.convert_to_numpy(ops.cast(out, "float32"))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], table_of(layer)[:5], atol=1e-2)


@pytest.mark.parametrize("value", [0, -3, 2.5, True, None])
def test_bad_sequence_length(value):
    with pytest.raises(ValueError, match="sequence_length"):
        PositionEmbedding(value)


def test_bad_input_rank():
    with pytest.raises(ValueError, match="rank 3"):
        PositionEmbedding(4)(np.zeros((2, 3), "float32"))


@pytest.mark.parametrize("start", [0, 3])
def test_start_index_selects_the_positions(start):
    layer = PositionEmbedding(sequence_length=6)
    x = np.zeros((2, 6, 3), "float32")
    table = keras.ops.convert_to_numpy(layer(x))[0]
    part = keras.ops.convert_to_numpy(layer(x[:, :2], start_index=start))
    np.testing.assert_array_equal(
        part, np.broadcast_to(table[start : start + 2], part.shape)
    )
    tensor = keras.ops.convert_to_numpy(
        layer(x[:, :2], start_index=keras.ops.convert_to_tensor(start))
    )
    np.testing.assert_array_equal(tensor, part)


def test_negative_start_index_is_refused():
    layer = PositionEmbedding(sequence_length=6)
    with pytest.raises(ValueError, match="start_index"):
        layer(np.zeros((1, 2, 3), "float32"), start_index=-1)
