"""Argument checks of the layers, training and zoo: each raises naming the value.

Every check raises a `ValueError` of the form
"Argument `name` must be ... Received: name=value" and returns the value as the
type it checked (an `int`, a `float`).
"""

import math
import numbers


def check_positive_int(name, value, allow_none=False):
    """Raises unless `value` is a positive integer (or `None` when allowed)."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"Argument `{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return int(value)


def check_non_negative_int(name, value):
    """Raises unless `value` is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"Argument `{name}` must be a non-negative integer. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def check_int(name, value):
    """Raises unless `value` is an integer (a seed, for example)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"Argument `{name}` must be an integer. Received: {name}={value!r}"
        )
    return int(value)


def check_float(name, value, low=0.0, high=math.inf, low_open=True, allow_none=False):
    """Raises unless `value` is a finite real in `(low, high]`.

    The interval is `[low, high]` when `low_open` is False; `None` passes when
    `allow_none`.
    """
    if value is None and allow_none:
        return None
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and value <= high
    )
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(
            f"Argument `{name}` must be a number in {interval}. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def check_rate(name, value):
    """Raises unless `value` is a float in [0, 1)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"Argument `{name}` must be a float in [0, 1). Received: {name}={value!r}"
        )
    return float(value)


def check_choice(name, value, choices):
    """Raises unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"Argument `{name}` must be one of {sorted(choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_rank(name, shape, ranks):
    """Raises unless `shape` has one of the ranks in `ranks` (an int or a tuple)."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if shape is None or len(shape) not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ValueError(
            f"Input `{name}` must have rank {expected}. "
            f"Received: {name}.shape={tuple(shape) if shape is not None else None}"
        )


def check_last_dim(name, shape):
    """Raises unless the last dimension of `shape` is known."""
    if shape[-1] is None:
        raise ValueError(
            f"The last dimension of `{name}` must be known. Received: {name}.shape="
            f"{tuple(shape)}"
        )
    return shape[-1]


def check_mask_shape(name, mask_shape, expected_shape):
    """Raises unless `mask_shape` broadcasts to `expected_shape`.

    Unknown (None) dimensions on either side are accepted.
    """
    if mask_shape is None:
        return
    mask_shape = tuple(mask_shape)
    expected_shape = tuple(expected_shape)
    ok = len(mask_shape) <= len(expected_shape)
    if ok:
        for m, e in zip(reversed(mask_shape), reversed(expected_shape), strict=False):
            if m is None or e is None or m == 1 or m == e:
                continue
            ok = False
            break
    if not ok:
        raise ValueError(
            f"Argument `{name}` must broadcast to shape {expected_shape}. "
            f"Received: {name}.shape={mask_shape}"
        )
