"""Search space of the `actor_critic` family."""

from zoo.hypermodel import choice, optimizer_search_space


def search_space(hp, config, optimizer):
    """Maps `hp` to `actor_critic` and `build_optimizer` arguments.

    Tunes the width, depth, heads (attention), window and head layers, and the
    optimizer (see `optimizer_search_space`). The observation size, actions
    and encoder stay fixed (the environment and the variant decide them).
    Defaults: `config`, `optimizer`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        config: the variant's builder arguments (with overrides).
        optimizer: the default `build_optimizer` arguments.

    Returns:
        `(model_args, optimizer_args)`.
    """
    args = dict(
        hidden_dim=choice(hp, "hidden_dim", [16, 32, 64, 128], config["hidden_dim"]),
        num_layers=hp.Int(
            "num_layers", 1, max(3, config["num_layers"]), default=config["num_layers"]
        ),
        head_layers=hp.Int(
            "head_layers",
            1,
            max(2, config["head_layers"]),
            default=config["head_layers"],
        ),
    )
    if config["encoder"] == "attention":
        args.update(
            window=choice(hp, "window", [4, 8, 16], config["window"]),
            num_heads=choice(hp, "num_heads", [1, 2, 4], config["num_heads"]),
            intermediate_dim=choice(
                hp, "intermediate_dim", [32, 64, 128, 256], config["intermediate_dim"]
            ),
            pooling=hp.Choice(
                "pooling", ["last", "attention"], default=config["pooling"]
            ),
        )
    return args, optimizer_search_space(hp, optimizer)
