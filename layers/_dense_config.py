"""The config entries of the kernel and bias arguments that layers share."""

import keras


def dense_arguments_config(layer):
    """`get_config` entries of a layer's kernel and bias arguments.

    Args:
        layer: a layer with attributes `kernel_initializer`,
            `bias_initializer`, `kernel_regularizer`, `bias_regularizer`,
            `kernel_constraint` and `bias_constraint`.

    Returns:
        A dict of the six serialized arguments.
    """
    return {
        "kernel_initializer": keras.initializers.serialize(layer.kernel_initializer),
        "bias_initializer": keras.initializers.serialize(layer.bias_initializer),
        "kernel_regularizer": keras.regularizers.serialize(layer.kernel_regularizer),
        "bias_regularizer": keras.regularizers.serialize(layer.bias_regularizer),
        "kernel_constraint": keras.constraints.serialize(layer.kernel_constraint),
        "bias_constraint": keras.constraints.serialize(layer.bias_constraint),
    }
