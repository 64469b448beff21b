"""Global floating-point policy: float32, mixed precision, or the best for this CPU."""

import keras

from layers.validation import check_choice
from training.choices import POLICIES
from training.choices import PRECISIONS as CHOICES

__all__ = [
    "CHOICES",
    "POLICIES",
    "cpu_has_bfloat16",
    "resolve_precision",
    "set_precision",
]

# CPU flags of native bfloat16 arithmetic (AVX-512 BF16, AMX).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether the CPU reports native bfloat16 arithmetic (Linux only).

    Args:
        cpuinfo: path of the `/proc/cpuinfo`-style file to read.

    Returns:
        `True` if a `flags` line names one of `BF16_CPU_FLAGS`; `False` when it
        does not or the file cannot be read (other systems).
    """
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(flag in flags for flag in BF16_CPU_FLAGS)
    except OSError:
        pass
    return False


def resolve_precision(policy="auto"):
    """The policy `set_precision(policy)` would set.

    `"auto"` is `"mixed_bfloat16"` on a CPU with native bfloat16 arithmetic
    (see `cpu_has_bfloat16`) and `"float32"` elsewhere, GPUs included. Where
    bfloat16 is emulated, it trains slower than float32.

    Args:
        policy: `"auto"` or one of `POLICIES`.

    Returns:
        One of `POLICIES`.
    """
    check_choice("policy", policy, CHOICES)
    if policy != "auto":
        return policy
    return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"


def set_precision(policy="float32"):
    """Sets the global Keras dtype policy for models built afterwards.

    `"mixed_bfloat16"` computes in bfloat16 with float32 variables: on the
    project's CPU (AVX-512 BF16) the CBAM CNN trained 1.1-1.8x faster to the
    same MNIST accuracy (whole-fit time and alternating throughput over four
    runs, `benchmarks/RESULTS.md`); vit_small's throughput did not improve
    (0.92x). `"mixed_float16"` suits GPUs; `compile` then wraps the optimizer
    in a `LossScaleOptimizer`. Zoo models end in a float32 layer, and the
    attention softmax runs in float32 either way.

    Args:
        policy: one of `POLICIES`, or `"auto"` (see `resolve_precision`).

    Returns:
        The new global `keras.DTypePolicy`.
    """
    keras.config.set_dtype_policy(resolve_precision(policy))
    return keras.config.dtype_policy()
