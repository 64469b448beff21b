"""Argument checks of `training` beyond those in `layers._validation`."""

import math
import numbers


def check_non_negative_int(name, value):
    """Raises unless `value` is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"Argument `{name}` must be a non-negative integer. "
            f"Received: {name}={value!r}"
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
