"""Search space of the `rnn_classifier` family."""

from zoo.hypermodel import choice, optimizer_search_space
from zoo.rnn_classifier.model import CELLS


def search_space(hp, config, optimizer):
    """Maps `hp` to `rnn_classifier` and `build_optimizer` arguments.

    Tunes the embedding and state sizes, the depth, the recurrent cell, the
    dropout, the pooling, and the optimizer (see `optimizer_search_space`).
    Defaults: `config`, `optimizer`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        config: the variant's builder arguments (with overrides).
        optimizer: the default `build_optimizer` arguments.

    Returns:
        `(model_args, optimizer_args)`.
    """
    args = dict(
        embedding_dim=choice(
            hp, "embedding_dim", [64, 128, 256], config["embedding_dim"]
        ),
        units=choice(hp, "units", [32, 64, 128, 256], config["units"]),
        num_layers=hp.Int(
            "num_layers", 1, max(2, config["num_layers"]), default=config["num_layers"]
        ),
        cell=hp.Choice("cell", sorted(CELLS), default=config["cell"]),
        dropout=hp.Float(
            "dropout", 0.0, max(0.5, config["dropout"]), default=config["dropout"]
        ),
        pooling=hp.Choice("pooling", ["attention", "mean"], default=config["pooling"]),
    )
    return args, optimizer_search_space(hp, optimizer)
