"""Search space of the `cbam_cnn` family."""

from zoo.hypermodel import choice, optimizer_search_space


def search_space(hp, config, optimizer):
    """Maps `hp` to `cbam_cnn` and `build_optimizer` arguments.

    Tunes the base width (the stage widths keep their ratios), the blocks per
    stage, the CBAM reduction ratio and kernel size, batch normalization after
    every convolution, the dropout, and the optimizer (see
    `optimizer_search_space`). Defaults: `config`, `optimizer`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        config: the variant's builder arguments (with overrides).
        optimizer: the default `build_optimizer` arguments.

    Returns:
        `(model_args, optimizer_args)`.
    """
    widths = list(config["widths"])
    width = choice(hp, "width", [16, 24, 32, 48, 64], widths[0])
    args = dict(
        widths=tuple(w * width // widths[0] for w in widths),
        blocks_per_stage=hp.Int(
            "blocks_per_stage",
            1,
            max(3, config["blocks_per_stage"]),
            default=config["blocks_per_stage"],
        ),
        reduction_ratio=choice(
            hp, "reduction_ratio", [2, 4, 8, 16], config["reduction_ratio"]
        ),
        kernel_size=choice(hp, "kernel_size", [3, 5, 7], config["kernel_size"]),
        conv_batch_norm=hp.Boolean(
            "conv_batch_norm", default=bool(config["conv_batch_norm"])
        ),
        dropout=hp.Float(
            "dropout", 0.0, max(0.5, config["dropout"]), default=config["dropout"]
        ),
    )
    return args, optimizer_search_space(hp, optimizer)
