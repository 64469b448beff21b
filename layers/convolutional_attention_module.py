"""Convolutional Block Attention Module (CBAM)."""

import math

import keras
from keras import ops

from layers._quantized_sublayers import QuantizedSublayers
from layers.validation import check_last_dim, check_positive_int, check_rank


@keras.saving.register_keras_serializable(package="attention_zoo")
class ConvolutionalAttentionModule(QuantizedSublayers, keras.layers.Layer):
    """Convolutional Block Attention Module (Woo et al., ECCV 2018).

    Refines a `(batch, height, width, channels)` feature map with a channel
    gate followed by a spatial gate:

    - channel gate: `sigmoid(mlp(avg_pool(x)) + mlp(max_pool(x)))` of shape
      `(batch, 1, 1, channels)`, where `mlp` is a shared two-layer MLP
      `channels -> max(1, channels // reduction_ratio) -> channels`;
    - spatial gate: `sigmoid(conv([mean_c(x'), max_c(x')]))` of shape
      `(batch, height, width, 1)`, a `kernel_size x kernel_size` convolution
      with 'same' padding over the channel-wise mean and max (in that order)
      of the channel-refined map `x'`.

    The output is `x * channel_gate * spatial_gate` and has the input's shape.
    With only the channel gate it is a squeeze-and-excitation style block.
    The gates are computed in float32 and applied in the compute dtype.

    Args:
        reduction_ratio: positive int, channel reduction of the MLP's hidden
            layer.
        kernel_size: positive odd int, size of the spatial gate's convolution.
        use_channel_attention: whether to apply the channel gate.
        use_spatial_attention: whether to apply the spatial gate. At least one
            of the two gates must be on.
        activation: activation of the MLP's hidden layer.
        use_bias: whether the MLP and the convolution use biases.
        kernel_initializer: initializer of the MLP and convolution kernels.
        bias_initializer: initializer of the biases.
        kernel_regularizer: regularizer of the kernels.
        bias_regularizer: regularizer of the biases.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a `(batch, height, width, channels)` tensor, channels last,
            with a known number of channels.
        return_attention_maps: if `True`, also return the gates.

    Returns:
        The refined map, shaped like `inputs`; or, with
        `return_attention_maps=True`, a tuple `(outputs, channel_gate,
        spatial_gate)` with gates of shapes `(batch, 1, 1, channels)` and
        `(batch, height, width, 1)` (all ones for a gate that is switched
        off).
    """

    def __init__(
        self,
        reduction_ratio=16,
        kernel_size=7,
        use_channel_attention=True,
        use_spatial_attention=True,
        activation="relu",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.reduction_ratio = check_positive_int("reduction_ratio", reduction_ratio)
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        if self.kernel_size % 2 == 0:
            raise ValueError(
                "Argument `kernel_size` must be an odd positive integer. "
                f"Received: kernel_size={kernel_size!r}"
            )
        if not (use_channel_attention or use_spatial_attention):
            raise ValueError(
                "At least one of `use_channel_attention` and `use_spatial_attention` "
                "must be True. Received: use_channel_attention="
                f"{use_channel_attention!r}, use_spatial_attention="
                f"{use_spatial_attention!r}"
            )
        self.use_channel_attention = bool(use_channel_attention)
        self.use_spatial_attention = bool(use_spatial_attention)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)

    def _common(self):
        return dict(
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        check_rank("inputs", input_shape, 4)
        channels = check_last_dim("inputs", input_shape)
        if self.use_channel_attention:
            hidden = max(1, channels // self.reduction_ratio)
            self.mlp_hidden = keras.layers.Dense(
                hidden, activation=self.activation, name="mlp_hidden", **self._common()
            )
            self.mlp_output = keras.layers.Dense(
                channels, name="mlp_output", **self._common()
            )
            self.mlp_hidden.build((None, channels))
            self.mlp_output.build((None, hidden))
        if self.use_spatial_attention:
            self.spatial_conv = keras.layers.Conv2D(
                1,
                self.kernel_size,
                padding="same",
                name="spatial_conv",
                **self._common(),
            )
            self.spatial_conv.build(tuple(input_shape[:3]) + (2,))

    def _channel_gate(self, x):
        avg = ops.mean(x, axis=(1, 2), keepdims=True)
        peak = _max(x, axis=(1, 2))
        logits = [self.mlp_output(self.mlp_hidden(p)) for p in (avg, peak)]
        logits = ops.cast(logits[0], "float32") + ops.cast(logits[1], "float32")
        return ops.cast(ops.sigmoid(logits), self.compute_dtype)

    def _spatial_gate(self, x):
        pooled = ops.concatenate(
            [ops.mean(x, axis=-1, keepdims=True), _max(x, axis=-1)],
            axis=-1,
        )
        logits = self.spatial_conv(pooled)
        # TensorFlow's oneDNN convolution gives a batch of 0 the input's 2
        # channels; the reshape restores `(B, H, W, 1)` (a no-op otherwise).
        logits = ops.reshape(logits, (*ops.shape(x)[:3], 1))
        logits = ops.cast(logits, "float32")
        return ops.cast(ops.sigmoid(logits), self.compute_dtype)

    def call(self, inputs, return_attention_maps=False):
        x = ops.cast(inputs, self.compute_dtype)
        # A gate that is switched off is the identity gate: all ones.
        channel_gate = ops.ones_like(x[:, :1, :1, :])
        if self.use_channel_attention:
            channel_gate = self._channel_gate(x)
            x = x * channel_gate
        spatial_gate = ops.ones_like(x[..., :1])
        if self.use_spatial_attention:
            spatial_gate = self._spatial_gate(x)
            x = x * spatial_gate
        if return_attention_maps:
            return x, channel_gate, spatial_gate
        return x

    def get_config(self):
        config = super().get_config()
        config.update(
            reduction_ratio=self.reduction_ratio,
            kernel_size=self.kernel_size,
            use_channel_attention=self.use_channel_attention,
            use_spatial_attention=self.use_spatial_attention,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
        )
        return config


def _max(x, axis):
    """`ops.max(x, axis, keepdims=True)` that also takes an empty `x`.

    TensorFlow's `ops.max` refuses an empty tensor (a batch of 0), even when
    the reduced axes are not empty; an `initial` of -inf changes no result.
    """
    return ops.max(x, axis=axis, keepdims=True, initial=-math.inf)
