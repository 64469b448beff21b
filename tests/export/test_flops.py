import keras
import pytest

from zoo import build_model
from zoo.export.flops import _graph_flops, _unrolled, count_flops

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="counted on a TensorFlow graph"
)


def test_dense_and_conv_counts_are_two_per_multiply_add():
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, use_bias=False)])
    assert count_flops(dense, (3,)) == 2 * 3 * 4
    conv = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(5, 3, padding="same", use_bias=False),
        ]
    )
    assert count_flops(conv, (8, 8, 2)) == 2 * 8 * 8 * 3 * 3 * 2 * 5


def test_recurrent_models_count_every_step():
    import tensorflow as tf

    model = build_model("rnn_classifier_tiny")
    for length in (5, 9):
        full = _graph_flops(_unrolled(model, length), (1, length), tf.int32)
        assert count_flops(model, (length,), "int32") == full
    # Each step costs at least the two directions' recurrent matmuls.
    step = count_flops(model, (9,), "int32") - count_flops(model, (8,), "int32")
    units, embedding = model.get_layer("recurrent1").forward_layer.cell.units, 64
    assert step >= 2 * 2 * (units + embedding) * units


def test_attention_cost_grows_faster_than_the_length():
    model = build_model("transformer_classifier_tiny")
    short, long = (count_flops(model, (n,), "int32") for n in (32, 64))
    assert long > 2 * short


@pytest.mark.parametrize("shape", [(), (0, 3), (2.5,), None])
def test_bad_shapes_are_refused(shape):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    with pytest.raises((ValueError, TypeError), match="input_shape"):
        count_flops(model, shape)
