"""Floating-point operations of one forward pass (TensorFlow graph count)."""

import json

import keras
import tensorflow as tf

# Recurrent models are counted unrolled at these lengths and extrapolated: the
# count of a loop body inside a `While` op is not seen by the profiler.
_UNROLLED_LENGTHS = (2, 3, 4)


def _graph_flops(model, shape, dtype):
    function = tf.function(lambda x: model(x, training=False), autograph=False)
    if isinstance(shape, dict):
        spec = {k: tf.TensorSpec(v, dtype, name=k) for k, v in shape.items()}
    else:
        spec = tf.TensorSpec(shape, dtype)
    graph = function.get_concrete_function(spec).graph
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
    """A copy of a functional model with its RNNs unrolled over `length`
    steps at batch 1 (random weights: the count needs none); `length` is an
    int, or a dict of lengths by input name."""
    config = model.get_config()
    inputs = [
        layer for layer in config["layers"] if layer["class_name"] == "InputLayer"
    ]
    for input_layer in inputs:
        n = length[input_layer["name"]] if isinstance(length, dict) else length
        input_layer["config"]["batch_shape"] = [1, n]
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
        model: a functional `keras.Model`.
        input_shape: the input shape of one example, without the batch axis
            (e.g. `(28, 28, 1)`, or `(max_length,)` for token ids); for a
            model of several token inputs, a dict of `(length,)` by input name
            (a seq2seq model's `source` and `target`: counted with its
            recurrent layers unrolled at those lengths).
        dtype: the input dtype.

    Returns:
        The count, an int.

    Raises:
        ValueError: `input_shape` is not positive ints, or a recurrent model
            whose count is not linear in the length.
    """
    if isinstance(input_shape, dict):
        return _named_inputs_flops(model, input_shape, dtype)
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


def _named_inputs_flops(model, input_shapes, dtype):
    lengths = {}
    for name, shape in input_shapes.items():
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else ()
        if len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 1:
            raise ValueError(
                "Argument `input_shape` must map each input to a (length,) of "
                f"token ids. Received: input_shape={input_shapes!r}"
            )
        lengths[name] = shape[0]
    if _has_rnn(model):
        model = _unrolled(model, lengths)
    shapes = {name: (1, n) for name, n in lengths.items()}
    return _graph_flops(model, shapes, tf.as_dtype(dtype))
