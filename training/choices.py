"""Names of what `training` and the zoo offer, free of Keras.

The `zoo` command lists them in its help without loading TensorFlow.
"""

SCHEDULES = ("constant", "step", "exponential", "cosine")
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
# `"auto"`: see `training.precision.resolve_precision`.
PRECISIONS = ("auto", *POLICIES)
# Columns of `zoo list --details` (`zoo.model_details.summary_row`).
DETAIL_COLUMNS = (
    "model",
    "task",
    "params",
    "gflops",
    "accuracy",
    "dataset",
    "examples_per_s_b64",
    "latency_ms_b1",
)
