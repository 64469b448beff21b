"""Search space of the `ensemble` family."""

from zoo.hypermodel import optimizer_search_space


def search_space(hp, config, optimizer):
    """Maps `hp` to `ensemble` and `build_optimizer` arguments.

    An ensemble has no architecture hyperparameters of its own (its members
    keep their registered arguments, and its weights are fitted, not
    searched): only the optimizer is tuned (see `optimizer_search_space`).
    Defaults: `config`, `optimizer`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        config: the variant's builder arguments (with overrides).
        optimizer: the default `build_optimizer` arguments.

    Returns:
        `(model_args, optimizer_args)`: the members and weights of `config`,
        and the tuned optimizer arguments.
    """
    args = dict(members=tuple(config["members"]), weights=config["weights"])
    return args, optimizer_search_space(hp, optimizer)
