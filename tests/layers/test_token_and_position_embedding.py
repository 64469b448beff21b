import keras
import numpy as np
import pytest
from keras import ops

from layers.token_and_position_embedding import TokenAndPositionEmbedding
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import keras_mask

TOKENS = np.array([[3, 7, 1, 0, 0], [5, 0, 2, 9, 0]], dtype="int32")


def expected_output(layer, tokens):
    tokens_table = ops.convert_to_numpy(layer.token_embedding.embeddings)
    positions_table = ops.convert_to_numpy(layer.position_embedding.position_embeddings)
    return tokens_table[tokens] + positions_table[None, : tokens.shape[1]]


@pytest.mark.parametrize("mask_zero", [False, True])
def test_layer(mask_zero):
    kwargs = {
        "vocabulary_size": 10,
        "sequence_length": 8,
        "embedding_dim": 6,
        "mask_zero": mask_zero,
        "embeddings_initializer": "random_normal",
    }
    run_layer_test(
        TokenAndPositionEmbedding,
        kwargs,
        TOKENS,
        (2, 5, 6),
        expected_num_trainable_weights=2,
    )


def test_output_is_token_plus_position_embedding():
    layer = TokenAndPositionEmbedding(4, 3, 2)
    layer(np.zeros((1, 3), "int32"))
    tokens_table = np.array([[0, 0], [1, 10], [2, 20], [3, 30]], "float32")
    positions_table = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], "float32")
    layer.set_weights([tokens_table, positions_table])
    out = ops.convert_to_numpy(layer(np.array([[3, 1, 1], [0, 2, 0]])))
    expected = [
        [[3.1, 30.2], [1.3, 10.4], [1.5, 10.6]],
        [[0.1, 0.2], [2.3, 20.4], [0.5, 0.6]],
    ]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    out = ops.convert_to_numpy(layer(np.array([[2, 3]])))
    np.testing.assert_allclose(out, [[[2.1, 20.2], [3.3, 30.4]]], atol=1e-6)
    layer = TokenAndPositionEmbedding(10, 8, 6)
    # The position term differs between positions, so equal tokens differ.
    out = ops.convert_to_numpy(layer(np.array([[4, 4]])))
    assert not np.allclose(out[0, 0], out[0, 1])


def test_mask_zero():
    layer = TokenAndPositionEmbedding(10, 8, 6, mask_zero=True)
    np.testing.assert_array_equal(keras_mask(layer(TOKENS)), TOKENS != 0)
    assert keras_mask(TokenAndPositionEmbedding(10, 8, 6)(TOKENS)) is None


def test_mask_reaches_downstream_layers():
    inputs = keras.Input((5,), dtype="int32")
    embed = TokenAndPositionEmbedding(10, 8, 6, mask_zero=True)
    pooled = keras.layers.GlobalAveragePooling1D()(embed(inputs))
    model = keras.Model(inputs, pooled)
    out = model.predict_on_batch(TOKENS)
    full = expected_output(embed, TOKENS)
    keep = (TOKENS != 0)[..., None]
    expected = (full * keep).sum(axis=1) / keep.sum(axis=1)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_longer_input_raises():
    layer = TokenAndPositionEmbedding(10, 4, 6)
    with pytest.raises(ValueError, match="sequence_length=4"):
        layer(TOKENS)


def test_mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = TokenAndPositionEmbedding(10, 8, 6, mask_zero=True)
    out = layer(TOKENS)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    out = ops.convert_to_numpy(ops.cast(out, "float32"))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, expected_output(layer, TOKENS), atol=1e-2)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"vocabulary_size": 0}, "vocabulary_size"),
        ({"sequence_length": -1}, "sequence_length"),
        ({"embedding_dim": 2.0}, "embedding_dim"),
        ({"embedding_dim": None}, "embedding_dim"),
    ],
)
def test_bad_arguments(kwargs, name):
    arguments = {"vocabulary_size": 10, "sequence_length": 8, "embedding_dim": 6}
    with pytest.raises(ValueError, match=name):
        TokenAndPositionEmbedding(**{**arguments, **kwargs})


def test_bad_input_rank():
    with pytest.raises(ValueError, match="rank 2"):
        TokenAndPositionEmbedding(10, 8, 6)(TOKENS[..., None])
