"""Search space of the `attention_detector` family."""

import math

from zoo.hypermodel import choice, optimizer_search_space


def search_space(hp, config, optimizer):
    """Maps `hp` to `attention_detector` and `build_optimizer` arguments.

    Tunes the base width (the stage widths keep their ratios and stay
    multiples of `groups`), the blocks per stage, the transformer blocks, the
    pyramid and head width, the CBAM reduction ratio, the dropout, and the
    optimizer (see `optimizer_search_space`). The input shape, the number of
    stages (they set the strides) and `num_heads` stay fixed. Defaults:
    `config`, `optimizer`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        config: the variant's builder arguments (with overrides).
        optimizer: the default `build_optimizer` arguments.

    Returns:
        `(model_args, optimizer_args)`.
    """
    widths = list(config["widths"])
    groups = config["groups"]
    # Every width a multiple of `groups`, the last also of `num_heads`.
    units = [groups] * (len(widths) - 1) + [math.lcm(groups, config["num_heads"])]
    width = choice(hp, "width", [16, 24, 32, 48], widths[0])
    head_width = choice(hp, "head_width", [16, 32, 48, 64], config["head_width"])
    args = dict(
        widths=tuple(
            _round_up(w * width / widths[0], unit)
            for w, unit in zip(widths, units, strict=True)
        ),
        blocks_per_stage=hp.Int(
            "blocks_per_stage",
            1,
            max(2, config["blocks_per_stage"]),
            default=config["blocks_per_stage"],
        ),
        encoder_layers=hp.Int(
            "encoder_layers",
            1,
            max(3, config["encoder_layers"]),
            default=config["encoder_layers"],
        ),
        head_width=_round_up(head_width, groups),
        reduction_ratio=choice(
            hp, "reduction_ratio", [4, 8, 16], config["reduction_ratio"]
        ),
        dropout=hp.Float(
            "dropout", 0.0, max(0.3, config["dropout"]), default=config["dropout"]
        ),
    )
    return args, optimizer_search_space(hp, optimizer)


def _round_up(value, unit):
    """The smallest multiple of `unit` that is at least `value` (and `unit`)."""
    return max(unit, int(-(-value // unit) * unit))
