"""Vision Transformer with mean pooling over the patch tokens."""

import keras

from layers.position_embedding import PositionEmbedding
from layers.quantizable_conv2d import QuantizableConv2D
from layers.transformer_encoder import TransformerEncoder
from layers.validation import check_positive_int, check_rate
from zoo._image import image_input, logits


def vit(
    input_shape=(28, 28, 1),
    num_classes=10,
    patch_size=4,
    hidden_dim=64,
    num_layers=4,
    num_heads=4,
    intermediate_dim=128,
    dropout=0.0,
    head_dropout=0.0,
    name="vit",
):
    """Builds a Vision Transformer (Dosovitskiy et al., 2021) classifier.

    Patch embedding (a `Conv2D` with kernel and stride `patch_size`); a
    learned `PositionEmbedding` added to the patch tokens; `num_layers`
    pre-norm `TransformerEncoder` blocks named `encoder{i}_attention`; layer
    normalization; mean pooling over the tokens (no class token); dropout and
    a float32 `Dense` named `"logits"`.

    Args:
        input_shape: `(height, width, channels)` of the float32 images in
            [0, 1]; `patch_size` must divide height and width.
        num_classes: number of classes.
        patch_size: side of the square patches.
        hidden_dim: token size.
        num_layers: number of encoder blocks.
        num_heads: attention heads (must divide `hidden_dim`).
        intermediate_dim: hidden size of the blocks' feed-forward networks.
        dropout: dropout inside the blocks and on the embedded tokens.
        head_dropout: dropout before the logits.
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `"image"` to logits.
    """
    num_classes = check_positive_int("num_classes", num_classes)
    patch_size = check_positive_int("patch_size", patch_size)
    hidden_dim = check_positive_int("hidden_dim", hidden_dim)
    num_layers = check_positive_int("num_layers", num_layers)
    num_heads = check_positive_int("num_heads", num_heads)
    dropout = check_rate("dropout", dropout)
    head_dropout = check_rate("head_dropout", head_dropout)
    inputs = image_input(input_shape)
    height, width = inputs.shape[1:3]
    if height % patch_size or width % patch_size:
        raise ValueError(
            "Argument `patch_size` must divide the image height and width. "
            f"Received: patch_size={patch_size}, input_shape={tuple(input_shape)}"
        )
    if hidden_dim % num_heads:
        raise ValueError(
            "Argument `num_heads` must divide `hidden_dim`. "
            f"Received: num_heads={num_heads}, hidden_dim={hidden_dim}"
        )
    num_patches = (height // patch_size) * (width // patch_size)

    x = QuantizableConv2D(
        hidden_dim, patch_size, strides=patch_size, name="patch_embedding"
    )(inputs)
    x = keras.layers.Reshape((num_patches, hidden_dim), name="patches")(x)
    positions = PositionEmbedding(num_patches, name="position_embedding")(x)
    x = keras.layers.Add(name="add_positions")([x, positions])
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for i in range(1, num_layers + 1):
        x = TransformerEncoder(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            activation="gelu",
            normalize_first=True,
            layer_norm_epsilon=1e-6,
            name=f"encoder{i}_attention",
        )(x)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = keras.layers.Dropout(head_dropout, name="dropout")(x)
    return keras.Model(inputs, logits(x, num_classes), name=name)
