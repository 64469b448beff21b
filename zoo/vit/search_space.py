"""Search space of the `vit` family."""

from zoo.hypermodel import choice, optimizer_search_space


def search_space(hp, config, optimizer):
    """Maps `hp` to `vit` and `build_optimizer` arguments.

    Tunes the token size, depth, heads, feed-forward size, dropout rates, and
    the optimizer (see `optimizer_search_space`). The patch size stays fixed
    (it must divide the input size). Defaults: `config`, `optimizer`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        config: the variant's builder arguments (with overrides).
        optimizer: the default `build_optimizer` arguments.

    Returns:
        `(model_args, optimizer_args)`.
    """
    args = dict(
        hidden_dim=choice(hp, "hidden_dim", [32, 64, 96, 128], config["hidden_dim"]),
        num_layers=hp.Int(
            "num_layers", 1, max(8, config["num_layers"]), default=config["num_layers"]
        ),
        num_heads=choice(hp, "num_heads", [1, 2, 4, 8], config["num_heads"]),
        intermediate_dim=choice(
            hp, "intermediate_dim", [64, 128, 256], config["intermediate_dim"]
        ),
        dropout=hp.Float(
            "dropout", 0.0, max(0.3, config["dropout"]), default=config["dropout"]
        ),
        head_dropout=hp.Float(
            "head_dropout",
            0.0,
            max(0.5, config["head_dropout"]),
            default=config["head_dropout"],
        ),
    )
    return args, optimizer_search_space(hp, optimizer)
