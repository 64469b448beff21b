"""Where an image model looks: one attention map per image."""

import math

import keras
import numpy as np
from keras import ops

from layers.convolutional_attention_module import ConvolutionalAttentionModule
from layers.self_attention_2d import SelfAttention2D
from layers.transformer_encoder import TransformerEncoder

SUFFIX = "_attention"


def find_attention_layer(model):
    """The last layer of `model` whose name ends with `"_attention"`.

    The zoo's image builders name their attention layers so:
    `stage{i}_attention` (CBAM), `feature_attention` (`SelfAttention2D`),
    `encoder{i}_attention` (ViT blocks). A model without one at its top level
    (an ensemble, `zoo.build_ensemble`) is searched through its nested models
    in order: the first that has one (an ensemble's first member) gives it.

    Raises:
        ValueError: if neither `model` nor a nested model has such a layer.
    """
    return _attention_owner(model)[1]


def _attention_owner(model):
    """`(owner, layer)`: the attention layer and the (nested) model holding it."""
    found = [layer for layer in model.layers if layer.name.endswith(SUFFIX)]
    if found:
        return model, found[-1]
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            try:
                return _attention_owner(layer)
            except ValueError:
                continue
    raise ValueError(
        f"Model {model.name!r} has no layer whose name ends with {SUFFIX!r}."
    )


def _grid(model, num_tokens):
    try:
        height, width = model.get_layer("patch_embedding").output.shape[1:3]
        return int(height), int(width)
    except ValueError:
        side = math.isqrt(num_tokens)
        return side, num_tokens // side


def attention_maps(model, images, size=None):
    """Attention of `model` over each image, as `(N, h, w)` float32 maps.

    Uses the last layer named `*_attention` (see `find_attention_layer`; for
    an ensemble, its first member's):

    - `ConvolutionalAttentionModule`: its spatial gate, in (0, 1);
    - `SelfAttention2D`: the attention weights averaged over the queries
      (each map sums to 1);
    - `TransformerEncoder`: the self-attention weights averaged over heads and
      queries, on the patch grid (each map sums to 1).

    Args:
        model: a zoo image classifier (or any model following the naming).
        images: `(N, height, width, channels)` float32 images in [0, 1].
        size: optional `(height, width)` to resize the maps to (bilinear).

    Returns:
        A NumPy float32 array `(N, h, w)`: the layer's grid, or `size`.
    """
    # The images go straight into the owner: a nested model (an ensemble's
    # member) takes the ensemble's input as it is.
    owner, layer = _attention_owner(model)
    features = keras.Model(owner.input, layer.input)(images, training=False)
    if isinstance(layer, ConvolutionalAttentionModule):
        _, _, gate = layer(features, return_attention_maps=True)
        maps = gate[..., 0]
    elif isinstance(layer, SelfAttention2D):
        _, scores = layer(features, training=False, return_attention_scores=True)
        maps = ops.mean(ops.cast(scores, "float32"), axis=(1, 2))
    elif isinstance(layer, TransformerEncoder):
        _, weights = layer(features, training=False, return_attention_scores=True)
        received = ops.mean(ops.cast(weights, "float32"), axis=(1, 2))
        maps = ops.reshape(received, (-1, *_grid(owner, received.shape[-1])))
    else:
        raise ValueError(
            f"Cannot read an attention map from layer {layer.name!r} of type "
            f"{type(layer).__name__}."
        )
    maps = ops.cast(maps, "float32")
    if size is not None:
        maps = ops.image.resize(maps[..., None], tuple(size))[..., 0]
    return np.asarray(ops.convert_to_numpy(maps), dtype="float32")
