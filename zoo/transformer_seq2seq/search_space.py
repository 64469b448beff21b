"""Search space of the `transformer_seq2seq` family."""

from zoo.hypermodel import choice, optimizer_search_space


def search_space(hp, config, optimizer):
    """Maps `hp` to `transformer_seq2seq` and `build_optimizer` arguments.

    Tunes the token size, the encoder and decoder depths, heads, the
    feed-forward size, dropout, pre- or post-norm, copying (the
    pointer-generator) and the optimizer (see
    `optimizer_search_space`). Vocabularies and maximum lengths stay fixed
    (the data decide them). Defaults: `config`, `optimizer`.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        config: the variant's builder arguments (with overrides).
        optimizer: the default `build_optimizer` arguments.

    Returns:
        `(model_args, optimizer_args)`.
    """
    args = dict(
        hidden_dim=choice(hp, "hidden_dim", [32, 64, 128, 256], config["hidden_dim"]),
        num_encoder_layers=hp.Int(
            "num_encoder_layers",
            1,
            max(4, config["num_encoder_layers"]),
            default=config["num_encoder_layers"],
        ),
        num_decoder_layers=hp.Int(
            "num_decoder_layers",
            1,
            max(4, config["num_decoder_layers"]),
            default=config["num_decoder_layers"],
        ),
        num_heads=choice(hp, "num_heads", [1, 2, 4, 8], config["num_heads"]),
        intermediate_dim=choice(
            hp, "intermediate_dim", [64, 256, 512, 1024], config["intermediate_dim"]
        ),
        dropout=hp.Float(
            "dropout", 0.0, max(0.3, config["dropout"]), default=config["dropout"]
        ),
        normalize_first=hp.Boolean(
            "normalize_first", default=config["normalize_first"]
        ),
        copy_source=hp.Boolean("copy_source", default=config["copy_source"]),
    )
    return args, optimizer_search_space(hp, optimizer)
