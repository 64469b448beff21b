import numpy as np
import pytest
from keras import ops

from layers.hashed_bigram_embedding import HashedBigramEmbedding
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import keras_mask

TOKENS = np.array([[3, 7, 1, 0, 0], [5, 9, 2, 9, 4]], dtype="int32")


def reference(table, tokens):
    """Python integers: no overflow, the hash written out per position."""
    buckets = table.shape[0]
    out = np.zeros((*tokens.shape, table.shape[1]), "float64")
    for row, sequence in enumerate(tokens.tolist()):
        for i, token in enumerate(sequence):
            following = sequence[i + 1] if i + 1 < len(sequence) else 0
            if token:
                out[row, i] = table[((token % buckets) * 4093 + following) % buckets]
    return out


@pytest.mark.parametrize("mask_zero", [False, True])
def test_layer(mask_zero):
    kwargs = {
        "num_buckets": 16,
        "embedding_dim": 6,
        "mask_zero": mask_zero,
        "embeddings_initializer": "random_normal",
    }
    run_layer_test(
        HashedBigramEmbedding,
        kwargs,
        TOKENS,
        (2, 5, 6),
        expected_num_trainable_weights=1,
    )


@pytest.mark.parametrize("num_buckets", [7, 64, 2**19])
def test_matches_the_written_out_hash(num_buckets):
    layer = HashedBigramEmbedding(
        num_buckets, 3, embeddings_initializer="random_normal"
    )
    rng = np.random.default_rng(0)
    # Ids up to a million: the largest bucket times 4093 plus the id fits int32.
    tokens = rng.integers(1, 1_000_000, size=(4, 9)).astype("int32")
    tokens[1, 5:] = 0
    out = ops.convert_to_numpy(layer(tokens))
    table = ops.convert_to_numpy(layer.embedding.embeddings).astype("float64")
    np.testing.assert_allclose(out, reference(table, tokens), atol=1e-6)


def test_word_order_changes_the_embedding_and_padding_does_not():
    layer = HashedBigramEmbedding(1024, 4, embeddings_initializer="random_normal")
    forward = ops.convert_to_numpy(layer(np.array([[4, 8, 0]])))
    backward = ops.convert_to_numpy(layer(np.array([[8, 4, 0]])))
    assert not np.allclose(forward[0, 0], backward[0, 1])
    padded = ops.convert_to_numpy(layer(np.array([[4, 8, 0, 0, 0, 0]])))
    unpadded = ops.convert_to_numpy(layer(np.array([[4, 8]])))
    np.testing.assert_allclose(padded[:, :2], unpadded, atol=1e-7)
    np.testing.assert_array_equal(padded[:, 2:], 0.0)


def test_mask_zero():
    layer = HashedBigramEmbedding(16, 6, mask_zero=True)
    np.testing.assert_array_equal(keras_mask(layer(TOKENS)), TOKENS != 0)
    assert keras_mask(HashedBigramEmbedding(16, 6)(TOKENS)) is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_buckets": 0, "embedding_dim": 4}, "num_buckets=0"),
        ({"num_buckets": 2**19 + 1, "embedding_dim": 4}, "num_buckets=524289"),
        ({"num_buckets": 8, "embedding_dim": 0}, "embedding_dim=0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HashedBigramEmbedding(**kwargs)


def test_rank_3_input_raises():
    with pytest.raises(ValueError, match="inputs"):
        HashedBigramEmbedding(8, 4)(np.zeros((2, 3, 4), "int32"))
