"""Names of what `training` offers, free of Keras.

The `zoo` command lists them in its help without loading TensorFlow.
"""

SCHEDULES = ("constant", "step", "exponential", "cosine")
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
# `"auto"`: see `training.precision.resolve_precision`.
PRECISIONS = ("auto", *POLICIES)
