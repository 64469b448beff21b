"""A `keras.layers.Conv2D` that `quantize("int8")` stores in int8."""

import keras
import numpy as np
from keras import ops

INT8_MAX = 127


def int8_per_channel(kernel):
    """Symmetric abs-max int8 values and scales, one scale per output channel.

    Args:
        kernel: float array `(..., out_channels)`.

    Returns:
        `(values, scales)`: int8 `kernel.shape` and float32 `(out_channels,)`
        with `values * scales ~= kernel`; a channel of zeros gets scale 1.
    """
    kernel = np.asarray(kernel, "float32")
    amax = np.max(np.abs(kernel), axis=tuple(range(kernel.ndim - 1)))
    scales = np.where(amax > 0, amax / INT8_MAX, 1.0).astype("float32")
    values = np.clip(np.round(kernel / scales), -INT8_MAX, INT8_MAX)
    return values.astype("int8"), scales


def _output_size(size, kernel, stride, dilation, padding):
    """A convolution's output length along one axis, for static or dynamic sizes."""
    if padding == "same":
        return (size + stride - 1) // stride
    return (size - dilation * (kernel - 1) - 1) // stride + 1


@keras.saving.register_keras_serializable(package="attention_zoo")
class QuantizableConv2D(keras.layers.Conv2D):
    """A `keras.layers.Conv2D` whose kernel `quantize("int8")` stores in int8.

    Keras 3 quantizes `Dense`, `EinsumDense` and `Embedding` and warns that
    `Conv2D` "does not have a `quantize` method": `model.quantize("int8")`
    leaves a CNN float and its export as large as before. This layer is a
    `Conv2D` in every other respect (arguments, config, variables, speed);
    `quantize("int8")` replaces its kernel with int8 values and one float32
    scale per output channel (symmetric abs-max, `scale = max|w| / 127`), the
    layout of Keras's `Dense` int8 kernels, and the call convolves with the
    dequantized kernel `values * scale` in the compute dtype. This is
    weight-only quantization: core TensorFlow has no int8 convolution on CPU
    (and stock TF Serving no custom op), so the layer is 4x smaller, not
    faster. A quantized layer saves to and loads from `.keras` as int8.

    Args:
        *args, **kwargs: `keras.layers.Conv2D`'s arguments.

    Call arguments:
        inputs: as `keras.layers.Conv2D`.

    Returns:
        As `keras.layers.Conv2D`.
    """

    def build(self, input_shape):
        super().build(input_shape)
        if self.quantization_mode is not None:
            # Loading a quantized layer: its saved int8 variables follow.
            self._quantize_kernel(self.quantization_mode)

    @property
    def kernel(self):
        if not getattr(self, "_is_quantized", False):
            return super().kernel
        values = ops.cast(self._kernel, "float32")
        return ops.cast(values * self.kernel_scale, self.compute_dtype)

    def convolution_op(self, inputs, kernel):
        outputs = super().convolution_op(inputs, kernel)
        # TensorFlow's oneDNN convolution gives a batch of 0 the input's
        # shape; the reshape restores the output's (a no-op otherwise).
        shape = ops.shape(inputs)
        last = self.data_format == "channels_last"
        sizes = shape[1:3] if last else shape[2:4]
        spatial = [
            _output_size(n, k, s, d, self.padding)
            for n, k, s, d in zip(
                sizes, self.kernel_size, self.strides, self.dilation_rate, strict=True
            )
        ]
        if last:
            return ops.reshape(outputs, (shape[0], *spatial, self.filters))
        return ops.reshape(outputs, (shape[0], self.filters, *spatial))

    def quantize(self, mode=None, type_check=True, config=None):
        if type_check and type(self) is not QuantizableConv2D:
            raise NotImplementedError(
                f"Layer {self.__class__.__name__} does not have a `quantize` "
                "method implemented."
            )
        self._quantize_kernel(mode)
        if self.dtype_policy.quantization_mode is None:
            self.dtype_policy = keras.dtype_policies.get(
                f"{mode}_from_{self.dtype_policy.name}"
            )

    def _quantize_kernel(self, mode):
        if mode != "int8":
            raise ValueError(
                "`QuantizableConv2D` supports quantization mode 'int8' only. "
                f"Received: mode={mode!r}"
            )
        if self.lora_enabled:
            raise ValueError(
                f"Layer {self.name!r} has LoRA enabled; merge or drop it before "
                "quantizing. Received: mode='int8'"
            )
        values, scales = int8_per_channel(ops.convert_to_numpy(self._kernel))
        del self._kernel
        self._kernel = self.add_weight(
            name="kernel",
            shape=values.shape,
            initializer="zeros",
            dtype="int8",
            trainable=False,
        )
        self.kernel_scale = self.add_weight(
            name="kernel_scale",
            shape=scales.shape,
            initializer="ones",
            dtype="float32",
            trainable=False,
        )
        self._kernel.assign(values)
        self.kernel_scale.assign(scales)
        self._is_quantized = True

    def _int8_call(self, inputs):
        return self.call(inputs)

    def _quantized_variables(self):
        bias = [self.bias] if self.use_bias else []
        return [self._kernel, self.kernel_scale, *bias]

    def save_own_variables(self, store):
        if not getattr(self, "_is_quantized", False):
            return super().save_own_variables(store)
        for i, variable in enumerate(self._quantized_variables()):
            store[str(i)] = variable

    def load_own_variables(self, store):
        if not getattr(self, "_is_quantized", False):
            return super().load_own_variables(store)
        variables = self._quantized_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Layer {self.name!r} expects {len(variables)} saved variables "
                f"(int8 kernel, scale, bias); received {len(store.keys())}."
            )
        for i, variable in enumerate(variables):
            variable.assign(store[str(i)])
