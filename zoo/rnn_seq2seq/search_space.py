"""Search space of the `rnn_seq2seq` family."""

from zoo.hypermodel import choice, optimizer_search_space


def search_space(hp, config, optimizer):
    """Maps `hp` to `rnn_seq2seq` and `build_optimizer` arguments.

    Tunes the embedding size, the recurrent state size (the attention's
    hidden size follows it unless the config fixes `attention_units`), the
    dropout and the optimizer (see `optimizer_search_space`). Vocabularies
    and maximum lengths stay fixed (the data decide them). Defaults:
    `config`, `optimizer`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        config: the variant's builder arguments (with overrides).
        optimizer: the default `build_optimizer` arguments.

    Returns:
        `(model_args, optimizer_args)`.
    """
    args = dict(
        embedding_dim=choice(
            hp, "embedding_dim", [32, 64, 128, 256], config["embedding_dim"]
        ),
        units=choice(hp, "units", [32, 64, 128, 256, 512], config["units"]),
        dropout=hp.Float(
            "dropout", 0.0, max(0.3, config["dropout"]), default=config["dropout"]
        ),
    )
    return args, optimizer_search_space(hp, optimizer)
