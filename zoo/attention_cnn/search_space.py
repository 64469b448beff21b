"""Search space of the `attention_cnn` family."""

from zoo.hypermodel import choice, optimizer_search_space


def search_space(hp, config, optimizer):
    """Maps `hp` to `attention_cnn` and `build_optimizer` arguments.

    Tunes the conv width (later stages keep their ratios), the dense width
    before the attention, the dropout rates, and the optimizer (see
    `optimizer_search_space`). Defaults: `config`, `optimizer`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        config: the variant's builder arguments (with overrides).
        optimizer: the default `build_optimizer` arguments.

    Returns:
        `(model_args, optimizer_args)`.
    """
    filters = list(config["filters"])
    width = choice(hp, "filters", [16, 32, 64], filters[0])
    args = dict(
        filters=tuple(f * width // filters[0] for f in filters),
        hidden_dim=choice(hp, "hidden_dim", [32, 64, 128], config["hidden_dim"]),
        attention_dropout=hp.Float(
            "attention_dropout",
            0.0,
            max(0.3, config["attention_dropout"]),
            default=config["attention_dropout"],
        ),
        dropout=hp.Float(
            "dropout", 0.0, max(0.5, config["dropout"]), default=config["dropout"]
        ),
    )
    return args, optimizer_search_space(hp, optimizer)
