"""The gradient check of `run_layer_test` fails where it should."""

import keras
import numpy as np
import pytest

from layers.multi_head_attention import MultiHeadAttention
from layers.self_attention_2d import SelfAttention2D
from tests.layers.layer_checks import check_gradients, gradients, perturb


class Scale(keras.layers.Layer):
    """`x * used`; the weight `unused` never reaches the output."""

    def build(self, input_shape):
        self.used = self.add_weight(name="used", shape=(), initializer="ones")
        self.unused = self.add_weight(name="unused", shape=(), initializer="ones")

    def call(self, inputs):
        return inputs * self.used


def _model(layer, *shapes):
    inputs = [keras.Input(shape) for shape in shapes]
    outputs = layer(*inputs)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs)


X = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")


def test_gradients_match_the_linear_loss():
    # loss = sum(R * x * used): d loss / d used = sum(R * x).
    model = _model(Scale(name="scale"), (5, 4))
    grads = gradients(model, X, seed=3)
    weights = np.random.default_rng(3).normal(size=X.shape).astype("float32")
    np.testing.assert_allclose(grads["scale/used"], np.sum(weights * X), rtol=1e-5)
    np.testing.assert_array_equal(grads["scale/unused"], 0.0)


def test_weight_without_gradient_fails_by_name():
    model = _model(Scale(name="scale"), (5, 4))
    with pytest.raises(AssertionError, match=r"\['scale/unused'\]"):
        check_gradients(model, X)
    check_gradients(model, X, zero_gradient_weights=("unused",))


def test_declared_weights_must_exist_and_get_no_gradient():
    model = _model(Scale(name="scale"), (5, 4))
    with pytest.raises(AssertionError, match="match no weight"):
        check_gradients(model, X, zero_gradient_weights=("unused", "typo"))
    with pytest.raises(AssertionError, match=r"get a gradient: \['scale/used'\]"):
        check_gradients(model, X, zero_gradient_weights=("scale/",))


def test_key_bias_of_attention_gets_no_gradient():
    layer = MultiHeadAttention(2, 3, bias_initializer="random_normal", name="mha")
    model = _model(layer, (5, 4), (5, 4))
    with pytest.raises(AssertionError, match=r"\['mha/key/bias'\]"):
        check_gradients(model, [X, X])
    check_gradients(model, [X, X], zero_gradient_weights=("key/bias",))


def test_zero_residual_scale_needs_perturbed_weights():
    layer = SelfAttention2D()
    model = _model(layer, (3, 3, 8))
    images = np.random.default_rng(1).normal(size=(2, 3, 3, 8)).astype("float32")
    # `gamma = 0`: only `gamma` and nothing behind it gets a gradient.
    with pytest.raises(AssertionError, match="query/kernel"):
        check_gradients(model, images, zero_gradient_weights=("key/bias",))
    perturb(layer)
    check_gradients(model, images, zero_gradient_weights=("key/bias",))
