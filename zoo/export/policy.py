"""Serving signatures of actor-critic policies: observation windows in, actions out."""

import numpy as np
import tensorflow as tf

from zoo.export.image_classification import batch_shape_check, reference_outputs
from zoo.export.serving_signature import ServingSignature


def policy_signatures(model):
    """Signatures of an actor-critic (`zoo.actor_critic`) for TF Serving.

    - `serving_default`: `observations` float32 `(None, window,
      observation_size)`, the last `window` observations with the most recent
      last and rows of zeros before an episode's first step -> `probabilities`
      (float32 `(None, num_actions)`, the softmax of the logits), `action`
      (int64 `(None,)`, the most probable action: the greedy policy) and
      `value` (float32 `(None,)`, the critic's estimate).
    - `serving_xla`: the same, with the model in a `jit_compile=True`
      function.

    Requests are checked inside the graph: a wrong shape, an empty batch and
    non-finite values fail with a message naming `observations`.

    Args:
        model: a `keras.Model` from `"observations"` `(None, window, size)` to
            a dict of `"logits"` and `"value"`, on the TensorFlow backend.

    Returns:
        A list of `ServingSignature`.
    """
    shape = _window_shape(model)

    @tf.function(autograph=False)
    def act(observations):
        outputs = model(observations, training=False)
        logits = tf.cast(outputs["logits"], tf.float32)
        return {
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "action": tf.argmax(logits, axis=-1, output_type=tf.int64),
            "value": tf.cast(outputs["value"], tf.float32),
        }

    @tf.function(autograph=False, jit_compile=True)
    def act_xla(observations):
        return act(observations)

    spec = tf.TensorSpec((None, *shape), tf.float32, name="observations")

    @tf.function(input_signature=[spec], autograph=False)
    def serving_default(observations):
        return act(_checked_observations(observations, shape))

    @tf.function(input_signature=[spec], autograph=False)
    def serving_xla(observations):
        return act_xla(_checked_observations(observations, shape))

    def make_windows(batch_size, seed):
        return {"observations": example_windows(shape, batch_size, seed)}

    def reference(inputs):
        outputs = model(inputs["observations"], training=False)
        logits = np.asarray(outputs["logits"], np.float32)
        expected = reference_outputs(logits)
        return {
            "probabilities": expected["probabilities"],
            "action": expected["classes"],
            "value": np.asarray(outputs["value"], np.float32),
        }

    kwargs = dict(
        make_example=make_windows,
        reference=reference,
        bad_requests=_bad_requests(shape),
    )
    return [
        ServingSignature("serving_default", serving_default, **kwargs),
        ServingSignature(
            "serving_xla", serving_xla, atol=1e-4, jit_compile=True, **kwargs
        ),
    ]


def example_windows(shape, batch_size, seed):
    """Float32 observation windows, row `i` starting with `i % window` zero rows.

    Args:
        shape: `(window, observation_size)`.
        batch_size: number of windows.
        seed: NumPy seed.

    Returns:
        A `(batch_size, window, observation_size)` array: the padding of an
        episode's first steps, then random observations.
    """
    window = shape[0]
    rng = np.random.default_rng(seed)
    windows = rng.normal(0.0, 0.1, (batch_size, *shape)).astype(np.float32)
    for i, row in enumerate(windows):
        row[: i % window] = 0.0
    return windows


def _window_shape(model):
    if len(model.inputs) != 1 or sorted(model.output_names) != ["logits", "value"]:
        raise ValueError(
            "A policy must have one input and the outputs 'logits' and 'value'. "
            f"Received: {len(model.inputs)} inputs, outputs {model.output_names}"
        )
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 3 or any(d is None for d in shape[1:]):
        raise ValueError(
            "The input of a policy must have shape (None, window, observation_size) "
            f"with known sizes. Received: input_shape={shape}"
        )
    return tuple(int(d) for d in shape[1:])


def _checked_observations(observations, shape):
    check_shape = batch_shape_check(
        observations,
        "observations",
        shape,
        " (the last observations, most recent last)",
    )
    with tf.control_dependencies([check_shape]):
        finite = tf.reduce_all(tf.math.is_finite(observations))
        check_finite = tf.debugging.Assert(
            finite, ["Input `observations` must hold finite values (no NaN or inf)."]
        )
    with tf.control_dependencies([check_finite]):
        return tf.identity(observations)


def _bad_requests(shape):
    window, size = shape
    good = np.full((1, *shape), 0.1, np.float32)
    wrong_shape = "Input `observations` must have shape"
    return (
        ("float64", {"observations": good.astype(np.float64)}, "float.*double"),
        ("int32", {"observations": good.astype(np.int32)}, "float.*int32"),
        (
            "longer window",
            {"observations": np.zeros((1, window + 1, size), np.float32)},
            wrong_shape,
        ),
        (
            "other observation size",
            {"observations": np.zeros((1, window, size + 1), np.float32)},
            wrong_shape,
        ),
        (
            "no window axis",
            {"observations": np.zeros((1, size), np.float32)},
            wrong_shape,
        ),
        (
            "empty batch",
            {"observations": np.zeros((0, *shape), np.float32)},
            wrong_shape,
        ),
        (
            "NaN",
            {"observations": np.where(good > 0, np.nan, good)},
            "must hold finite values",
        ),
        ("no input", {}, "observations"),
    )
