"""Actor-critic policy networks over a window of observations."""

import keras
from keras import ops

from layers.attention_pooling import AttentionPooling
from layers.position_embedding import PositionEmbedding
from layers.transformer_encoder import TransformerEncoder
from layers.validation import check_choice, check_positive_int

ENCODERS = ("attention", "mlp")
POOLINGS = ("last", "attention")


def observation_input(window, observation_size):
    """`keras.Input` named `"observations"`: float32 `(batch, window, size)`."""
    return keras.Input((window, observation_size), name="observations")


def padding_mask(observations):
    """`(B, T)` boolean mask: `True` for real steps, `False` for all-zero rows."""
    return ops.any(ops.not_equal(observations, 0.0), axis=-1)


def actor_critic(
    observation_size=2,
    window=8,
    num_actions=2,
    encoder="attention",
    hidden_dim=64,
    num_layers=1,
    num_heads=4,
    intermediate_dim=128,
    pooling="last",
    head_layers=1,
    name="actor_critic",
):
    """Builds an actor-critic whose state encoder is self-attention or an MLP.

    The input is a window of the last `window` observations, the most recent
    last; steps before an episode's start are rows of zeros (padding: an
    observation whose every value is exactly 0 reads as padding too).

    - `encoder="attention"`: the window is read most recent first, each step
      embedded by a `Dense` (`"step_embedding"`) plus a learned position
      embedding counted back from the most recent step (so the amount of
      padding before the first real step never shifts a position), then
      `num_layers` pre-norm `TransformerEncoder` blocks named
      `encoder{i}_attention` that hide padded steps, a layer normalization,
      and pooling: the most recent step's vector (`"last"`) or
      `AttentionPooling` over the real steps (`"attention"`). Padding never
      changes the outputs, whatever the window size.
    - `encoder="mlp"`: the flattened window (padding is zeros) through
      `Dense(hidden_dim, tanh)` layers; with `window=1` it sees the single
      current observation.

    Then `head_layers` shared `Dense(hidden_dim, tanh)` layers and two float32
    heads: `"logits"` (orthogonal init, gain 0.01: a near-uniform first
    policy) and `"value"`. No random layers: the outputs are the same on
    every call.

    Args:
        observation_size: positive int, values per observation.
        window: positive int, observations per input (the most recent last).
        num_actions: positive int, number of discrete actions.
        encoder: `"attention"` or `"mlp"`.
        hidden_dim: positive int, width of the embeddings and dense layers.
        num_layers: positive int, encoder blocks (`"attention"`) or dense
            layers (`"mlp"`).
        num_heads: positive int, attention heads (must divide `hidden_dim`;
            attention only).
        intermediate_dim: positive int, feed-forward size of the encoder
            blocks (attention only).
        pooling: `"last"` or `"attention"` (attention only).
        head_layers: positive int, dense layers after the
            encoder, shared by both heads.
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `"observations"` (float32
        `(batch, window, observation_size)`) to a dict of `"logits"` (float32
        `(batch, num_actions)`) and `"value"` (float32 `(batch,)`).
    """
    observation_size = check_positive_int("observation_size", observation_size)
    window = check_positive_int("window", window)
    num_actions = check_positive_int("num_actions", num_actions)
    check_choice("encoder", encoder, ENCODERS)
    hidden_dim = check_positive_int("hidden_dim", hidden_dim)
    num_layers = check_positive_int("num_layers", num_layers)
    num_heads = check_positive_int("num_heads", num_heads)
    intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
    check_choice("pooling", pooling, POOLINGS)
    head_layers = check_positive_int("head_layers", head_layers)
    if encoder == "attention" and hidden_dim % num_heads:
        raise ValueError(
            "Argument `num_heads` must divide `hidden_dim`. "
            f"Received: num_heads={num_heads}, hidden_dim={hidden_dim}"
        )
    observations = observation_input(window, observation_size)
    if encoder == "attention":
        x = _attention_encoder(
            observations, hidden_dim, num_layers, num_heads, intermediate_dim, pooling
        )
    else:
        x = keras.layers.Flatten(name="flatten")(observations)
        for i in range(1, num_layers + 1):
            x = _dense(hidden_dim, f"mlp{i}")(x)
    for i in range(1, head_layers + 1):
        x = _dense(hidden_dim, f"head{i}")(x)
    logits = keras.layers.Dense(
        num_actions,
        kernel_initializer=keras.initializers.Orthogonal(0.01),
        dtype="float32",
        name="logits",
    )(x)
    value = keras.layers.Dense(
        1,
        kernel_initializer=keras.initializers.Orthogonal(1.0),
        dtype="float32",
        name="value_head",
    )(x)
    value = keras.layers.Reshape((), dtype="float32", name="value")(value)
    return keras.Model(observations, {"logits": logits, "value": value}, name=name)


def _dense(units, name):
    return keras.layers.Dense(
        units,
        activation="tanh",
        kernel_initializer=keras.initializers.Orthogonal(2**0.5),
        name=name,
    )


def _attention_encoder(
    observations, hidden_dim, num_layers, num_heads, intermediate_dim, pooling
):
    """The pooled `(B, hidden_dim)` self-attention encoding of the window."""
    recent_first = ops.flip(observations, axis=1)
    mask = padding_mask(recent_first)
    x = keras.layers.Dense(hidden_dim, name="step_embedding")(recent_first)
    window = observations.shape[1]
    x = x + PositionEmbedding(window, name="position_embedding")(x)
    for i in range(1, num_layers + 1):
        x = TransformerEncoder(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            activation="gelu",
            normalize_first=True,
            name=f"encoder{i}_attention",
        )(x, padding_mask=mask)
    x = keras.layers.LayerNormalization(name="encoder_norm")(x)
    if pooling == "last":
        return x[:, 0]
    return AttentionPooling(name="pool_attention")(x, mask=mask)
