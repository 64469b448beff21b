"""Floating-point operations of one forward pass (TensorFlow graph count)."""

import json

import keras
import tensorflow as tf

# Recurrent models are counted unrolled at these lengths and extrapolated: the
# count of a loop body inside a `While` op is not seen by the profiler.
_UNROLLED_LENGTHS = (2, 3, 4)


def _graph_flops(model, shape, dtype):
    function = tf.function(lambda x: model(x, training=False), autograph=False)
    graph = function.get_concrete_function(tf.TensorSpec(shape, dtype)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the v1 profiler's deprecation notices
    try:
        profile = tf.compat.v1.profiler.profile(
            graph=graph,
            run_meta=tf.compat.v1.RunMetadata(),
            cmd="op",
            options=options,
        )
    finally:
        logger.setLevel(level)
    return int(profile.total_float_ops)


def _unrolled(model, length):
    """A copy of a one-input functional model with its RNNs unrolled over
    `length` steps at batch 1 (random weights: the count needs none)."""
    config = model.get_config()
    (input_layer,) = [
        layer for layer in config["layers"] if layer["class_name"] == "InputLayer"
    ]
    input_layer["config"]["batch_shape"] = [1, length]
    text = json.dumps(config).replace('"unroll": false', '"unroll": true')
    return keras.Model.from_config(json.loads(text))


def _has_rnn(model):
    return '"unroll": false' in json.dumps(model.get_config())


def count_flops(model, input_shape, dtype="float32"):
    """Floating-point operations of `model` on one example.

    Counted by TensorFlow's graph profiler (`float_operation`: a
    multiply-add counts 2) on the forward graph at batch 1. A model with
    recurrent layers (a token model of shape `(1, length)`) is counted
    unrolled at lengths 2, 3 and 4 and extrapolated to `length`; the count
    must grow by the same amount per step (checked), as it does for models
    whose cost is linear in the length.

    Args:
        model: a functional `keras.Model` with one input.
        input_shape: the input shape of one example, without the batch axis
            (e.g. `(28, 28, 1)`, or `(max_length,)` for token ids).
        dtype: the input dtype.

    Returns:
        The count, an int.

    Raises:
        ValueError: `input_shape` is not positive ints, or a recurrent model
            whose count is not linear in the length.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(
            "Argument `input_shape` must be positive ints (one example). "
            f"Received: input_shape={input_shape!r}"
        )
    if not _has_rnn(model):
        return _graph_flops(model, (1, *shape), tf.as_dtype(dtype))
    if len(shape) != 1:
        raise ValueError(
            "A recurrent model is counted over token ids of shape (length,). "
            f"Received: input_shape={input_shape!r}"
        )
    counts = [
        _graph_flops(_unrolled(model, n), (1, n), tf.as_dtype(dtype))
        for n in _UNROLLED_LENGTHS
    ]
    step = counts[1] - counts[0]
    if counts[2] - counts[1] != step:
        raise ValueError(
            f"The operations of {model.name!r} do not grow linearly with the "
            f"length (counts {counts} at lengths {_UNROLLED_LENGTHS}); it "
            "cannot be counted by extrapolation."
        )
    return counts[0] + step * (shape[0] - _UNROLLED_LENGTHS[0])
