"""Weighted mean of the class probabilities of several classifiers, as logits."""

import math
import numbers

import keras
from keras import ops


def check_member_weights(value):
    """Raises unless `value` is `None` or non-negative numbers with a positive sum.

    Returns:
        `None`, or the numbers as a tuple of Python floats (not normalized).
    """
    if value is None:
        return None
    try:
        numbers_ = list(value)
    except TypeError:
        numbers_ = None
    ok = (
        numbers_ is not None
        and len(numbers_) > 0
        and all(
            not isinstance(w, bool)
            and isinstance(w, numbers.Real)
            and math.isfinite(w)
            and w >= 0
            for w in numbers_
        )
        and sum(numbers_) > 0
    )
    if not ok:
        raise ValueError(
            "Argument `weights` (`member_weights`) must be None or a non-empty "
            "list of finite non-negative numbers with a positive sum. "
            f"Received: weights={value!r}"
        )
    return tuple(float(w) for w in numbers_)


@keras.saving.register_keras_serializable(package="attention_zoo")
class PredictionAverage(keras.layers.Layer):
    """Weighted mean of K classifiers' probabilities, returned as float32 logits.

    For member logits `z_1, ..., z_K` and weights `w_i` (normalized to sum to
    1) the output is `log(sum_i w_i softmax(z_i))`, computed stably as the
    `logsumexp` over the members of `log w_i + log_softmax(z_i)`. The output
    is a log-probability, so `softmax(output)` is exactly the weighted mean of
    the members' probabilities, and it can be used wherever the zoo expects
    logits (`from_logits=True` losses, `argmax`). Members of weight 0 are left
    out of the computation. The layer has no weights and always computes in
    float32: its default dtype policy is `"float32"`, and under another one
    the inputs are not autocast but cast to float32, so the output is float32
    logits under `mixed_bfloat16` too.

    The constructor argument is `member_weights` rather than `weights`:
    `Layer.weights` is the Keras list of a layer's variables.

    Args:
        member_weights: `None` (equal weights) or K non-negative numbers with a
            positive sum (normalized by their sum), one per input, in order.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a list of K logits tensors of the same shape `(B, ..., C)`
            (classes on the last axis).

    Returns:
        A float32 tensor `(B, ..., C)` of log-probabilities.

    Example:

    >>> import numpy as np
    >>> average = PredictionAverage(member_weights=[3, 1])
    >>> z1 = np.log(np.array([[0.5, 0.5]], "float32"))
    >>> z2 = np.log(np.array([[0.9, 0.1]], "float32"))
    >>> probabilities = keras.ops.softmax(average([z1, z2]))
    >>> [round(float(p), 3) for p in keras.ops.convert_to_numpy(probabilities)[0]]
    [0.6, 0.4]
    """

    def __init__(self, member_weights=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        # No variables to autocast; the inputs are cast to float32 in `call`
        # (autocasting would first round them to the compute dtype).
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.member_weights = check_member_weights(member_weights)

    def _log_weights(self, num_members):
        """`log w_i` of the normalized weights (`None` for a weight of 0)."""
        if self.member_weights is None:
            return [-math.log(num_members)] * num_members
        total = math.fsum(self.member_weights)
        return [math.log(w / total) if w > 0 else None for w in self.member_weights]

    def _check_inputs(self, shapes):
        if not isinstance(shapes, (list, tuple)) or not shapes:
            raise ValueError(
                "Input `inputs` of PredictionAverage must be a non-empty list of "
                f"logits tensors. Received: inputs={shapes!r}"
            )
        shapes = [tuple(s) for s in shapes]
        if len(shapes[0]) < 2 or any(s != shapes[0] for s in shapes):
            raise ValueError(
                "Input `inputs` of PredictionAverage must be logits tensors of the "
                f"same shape (B, ..., C). Received: shapes {shapes}"
            )
        if self.member_weights is not None and len(self.member_weights) != len(shapes):
            raise ValueError(
                "Argument `weights` (`member_weights`) must have one weight per "
                f"input ({len(shapes)} inputs). "
                f"Received: weights={self.member_weights!r}"
            )

    def build(self, input_shape):
        self._check_inputs(input_shape)

    def call(self, inputs):
        self._check_inputs([x.shape for x in inputs])
        terms = [
            ops.log_softmax(ops.cast(x, "float32"), axis=-1) + log_w
            for x, log_w in zip(inputs, self._log_weights(len(inputs)), strict=True)
            if log_w is not None
        ]
        if len(terms) == 1:
            return terms[0]
        return ops.logsumexp(ops.stack(terms, axis=0), axis=0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(tuple(inputs[0].shape), dtype="float32")

    def get_config(self):
        config = super().get_config()
        weights = self.member_weights
        config.update({"member_weights": None if weights is None else list(weights)})
        return config
