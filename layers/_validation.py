"""Argument checks shared by the layers: each raises a `ValueError` naming the value."""

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
