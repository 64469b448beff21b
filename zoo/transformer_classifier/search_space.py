"""Search space of the `transformer_classifier` family."""

from zoo.hypermodel import choice, optimizer_search_space


def search_space(hp, config, optimizer):
    """Maps `hp` to `transformer_classifier` and `build_optimizer` arguments.

    Tunes the token size, depth, heads, feed-forward size, dropout, the
    pooling, and the optimizer (see `optimizer_search_space`). The vocabulary
    and maximum length stay fixed (the data decide them). Defaults: `config`,
    `optimizer`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        config: the variant's builder arguments (with overrides).
        optimizer: the default `build_optimizer` arguments.

    Returns:
        `(model_args, optimizer_args)`.
    """
    args = dict(
        hidden_dim=choice(hp, "hidden_dim", [64, 128, 256], config["hidden_dim"]),
        num_layers=hp.Int(
            "num_layers", 1, max(4, config["num_layers"]), default=config["num_layers"]
        ),
        num_heads=choice(hp, "num_heads", [1, 2, 4, 8], config["num_heads"]),
        intermediate_dim=choice(
            hp, "intermediate_dim", [128, 256, 512], config["intermediate_dim"]
        ),
        dropout=hp.Float(
            "dropout", 0.0, max(0.3, config["dropout"]), default=config["dropout"]
        ),
        pooling=hp.Choice("pooling", ["mean", "attention"], default=config["pooling"]),
    )
    return args, optimizer_search_space(hp, optimizer)
