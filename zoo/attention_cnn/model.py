"""The design's classifier: conv, pool, conv, pool, dense, self-attention, dense."""

import keras

from layers.quantizable_conv2d import QuantizableConv2D
from layers.self_attention_2d import SelfAttention2D
from layers.validation import check_positive_int, check_rate
from zoo._image import image_input, logits


def attention_cnn(
    input_shape=(28, 28, 1),
    num_classes=10,
    filters=(32, 64),
    hidden_dim=64,
    key_dim=None,
    attention_dropout=0.0,
    dropout=0.1,
    name="attention_cnn",
):
    """Builds a small CNN with self-attention over its feature map.

    One `Conv2D` (3x3, same padding,
    ReLU) and 2x2 max pooling per entry of `filters`; a pointwise `Dense`
    (ReLU) to `hidden_dim` channels; a `SelfAttention2D` named
    `"feature_attention"` over the pooled map's positions; flattening (which
    keeps where each feature is), dropout and a float32 `Dense` named
    `"logits"`.

    Args:
        input_shape: `(height, width, channels)` of the float32 images in
            [0, 1].
        num_classes: number of classes.
        filters: channels of each conv + pool stage.
        hidden_dim: channels of the pointwise dense layer (the attention's
            input and output size).
        key_dim: query/key size of the attention (`None`: `hidden_dim // 8`).
        attention_dropout: dropout on the attention weights.
        dropout: dropout rate before the logits.
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `"image"` to logits.
    """
    num_classes = check_positive_int("num_classes", num_classes)
    hidden_dim = check_positive_int("hidden_dim", hidden_dim)
    dropout = check_rate("dropout", dropout)
    if not filters:
        raise ValueError(
            f"Argument `filters` must be non-empty. Received: filters={filters!r}"
        )
    filters = [check_positive_int("filters", f) for f in filters]

    inputs = image_input(input_shape)
    x = inputs
    for i, units in enumerate(filters, start=1):
        x = QuantizableConv2D(
            units, 3, padding="same", activation="relu", name=f"conv{i}"
        )(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i}")(x)
    x = keras.layers.Dense(hidden_dim, activation="relu", name="dense")(x)
    x = SelfAttention2D(
        key_dim=key_dim, dropout=attention_dropout, name="feature_attention"
    )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, logits(x, num_classes), name=name)
