"""A CenterNet-style one-stage, anchor-free detector with CBAM and a transformer."""

import math
import numbers

import keras

from layers.convolutional_attention_module import ConvolutionalAttentionModule
from layers.quantizable_conv2d import QuantizableConv2D
from layers.validation import check_positive_int, check_rate
from zoo.attention_detector.feature_map_encoder import FeatureMapEncoder

# Stride of the outputs: one output cell per 4x4 pixels (CenterNet's R = 4).
OUTPUT_STRIDE = 4
# CenterNet's prior: every heatmap score starts at sigmoid(bias) = 0.1.
HEATMAP_PRIOR = 0.1
# Only the convolutions follow a mixed-precision policy (as in `cbam_cnn`):
# on CPU, bfloat16 elementwise ops are emulated and slower than float32 ones.
FLOAT32 = dict(dtype="float32")


def _conv(x, filters, kernel_size, strides, name, **kwargs):
    return QuantizableConv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        kernel_initializer="he_normal",
        name=name,
        **kwargs,
    )(x)


def _conv_norm(x, filters, kernel_size, strides, groups, name, relu=True, **norm):
    """Convolution (no bias), `GroupNormalization`, optional ReLU."""
    x = _conv(x, filters, kernel_size, strides, f"{name}_conv", use_bias=False)
    x = keras.layers.GroupNormalization(groups, name=f"{name}_gn", **norm, **FLOAT32)(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu", **FLOAT32)(x)
    return x


def _residual_block(x, filters, strides, groups, reduction_ratio, name):
    """Basic block with CBAM on the residual branch (Woo et al., 2018, Fig. 3).

    The branch's last `GroupNormalization` starts with zero scale, so a new
    block is the identity (plus the shortcut's projection): from-scratch
    training starts from a shallow network.
    """
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_norm(
            x, filters, 1, strides, groups, f"{name}_shortcut", relu=False
        )
    x = _conv_norm(x, filters, 3, strides, groups, f"{name}_1")
    x = _conv_norm(
        x, filters, 3, 1, groups, f"{name}_2", relu=False, gamma_initializer="zeros"
    )
    x = ConvolutionalAttentionModule(
        reduction_ratio=reduction_ratio, name=f"{name}_attention", **FLOAT32
    )(x)
    x = keras.layers.Add(name=f"{name}_add", **FLOAT32)([x, shortcut])
    return keras.layers.ReLU(name=f"{name}_out", **FLOAT32)(x)


def _head(x, channels, width, name, bias_initializer="zeros"):
    """CenterNet head: 3x3 conv + ReLU, then a float32 1x1 conv to `channels`.

    The 1x1 kernel starts small (normal, standard deviation 0.01, as in
    RetinaNet), so the outputs start at their biases: the heatmap at its
    prior everywhere.
    """
    x = _conv(x, width, 3, 1, f"{name}_head_conv", activation="relu")
    return QuantizableConv2D(
        channels,
        1,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        bias_initializer=bias_initializer,
        name=f"{name}_logits",
        **FLOAT32,
    )(x)


def _check_widths(widths, groups):
    if isinstance(widths, (str, bytes)) or not isinstance(widths, (tuple, list)):
        raise ValueError(
            f"Argument `widths` must be a tuple of positive integers. "
            f"Received: widths={widths!r}"
        )
    if len(widths) < 2:
        raise ValueError(
            "Argument `widths` needs at least 2 stages (the outputs have stride 4, "
            f"the coarsest level a stride of at least 8). Received: widths={widths!r}"
        )
    widths = [check_positive_int("widths", w) for w in widths]
    if any(w % groups for w in widths):
        raise ValueError(
            "Every entry of `widths` must be divisible by `groups`. "
            f"Received: widths={tuple(widths)!r}, groups={groups}"
        )
    return widths


def _check_input_shape(input_shape, max_stride):
    """`input_shape` as a tuple: `(H, W, C)`, H and W `None` or multiples of
    `max_stride`, C a positive int."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None

    def ok(d, allow_none):
        if d is None:
            return allow_none
        return not isinstance(d, bool) and isinstance(d, numbers.Integral) and d > 0

    if (
        shape is None
        or len(shape) != 3
        or not all(ok(d, True) for d in shape[:2])
        or not ok(shape[2], False)
    ):
        raise ValueError(
            "Argument `input_shape` must be (height, width, channels): positive "
            "integers, or None for height and width. "
            f"Received: input_shape={input_shape!r}"
        )
    if any(d is not None and d % max_stride for d in shape[:2]):
        raise ValueError(
            "The height and width in `input_shape` must be multiples of the "
            f"largest stride, {max_stride} (2 ** (len(widths) + 1)). "
            f"Received: input_shape={input_shape!r}"
        )
    return tuple(None if d is None else int(d) for d in shape)


def attention_detector(
    input_shape=(256, 256, 3),
    num_classes=80,
    widths=(32, 64, 96, 128),
    blocks_per_stage=1,
    encoder_layers=1,
    num_heads=4,
    head_width=64,
    groups=8,
    reduction_ratio=8,
    dropout=0.0,
    name="attention_detector",
):
    """Builds a one-stage, anchor-free detector ("Objects as Points").

    CenterNet (Zhou et al., 2019) on a small backbone meant to learn from
    scratch on a CPU:

    - rescaling of the `[0, 255]` pixels to `[-1, 1]`;
    - a stem (3x3 conv, stride 2, `GroupNormalization`, ReLU) and one stage
      per entry of `widths`, each halving the resolution (stage `i` has
      stride `2 ** (i + 1)`) with `blocks_per_stage` residual blocks: 3x3
      conv, GN, ReLU, 3x3 conv, GN, `ConvolutionalAttentionModule` (CBAM),
      add the shortcut, ReLU. Group normalization, not batch normalization,
      as it does not depend on the batch size (Wu and He, 2018) and trains
      from scratch (He et al., 2019);
    - `encoder_layers` pre-norm transformer encoder blocks with 2-D sine
      position encoding over the coarsest stage (`FeatureMapEncoder`, named
      `"encoder"`): global context before the top-down path;
    - a feature pyramid: a 1x1 lateral convolution of every stage to
      `head_width` channels, nearest 2x upsampling from the coarsest level
      down, adding the lateral, then a 3x3 conv + GN + ReLU, down to the
      first stage (stride 4);
    - three heads, each a 3x3 conv (ReLU) and a float32 1x1 conv with a
      small initial kernel: the class heatmap (bias `log(0.1 / 0.9)`, so
      every score starts close to 0.1), the box size (through `exp`, so it
      is positive; it starts close to 1 cell) and the centre offset.

    Output conventions (for `zoo.detection.targets`, `losses` and
    `decoding`): the outputs are on a grid of `H / 4 x W / 4` cells; a box
    centred at grid coordinates `(cy, cx)` (its normalised centre times the
    grid size) is predicted at cell `(floor(cy), floor(cx))` by the heatmap
    of its class, `offset = (cy - floor(cy), cx - floor(cx))` and
    `size = (box height, box width)` in grid cells (pixels / 4). The size
    head predicts log sizes and ends with `exp`, so `size` is positive and in
    cells; `centernet_losses` compares it with its target in log space.

    Args:
        input_shape: `(height, width, channels)` of the images, float32 pixel
            values in `[0, 255]`; height and width must be multiples of the
            largest stride `2 ** (len(widths) + 1)` (32 with 4 stages), or
            `None` for a model that takes any such size.
        num_classes: number of object classes.
        widths: channels of each stage (at least 2 stages); each divisible by
            `groups`, the last by `num_heads`.
        blocks_per_stage: residual blocks per stage.
        encoder_layers: transformer blocks over the coarsest stage.
        num_heads: attention heads of the transformer blocks.
        head_width: channels of the pyramid and of the heads' hidden layers
            (divisible by `groups`).
        groups: groups of every `GroupNormalization`.
        reduction_ratio: channel reduction of the CBAM blocks.
        dropout: dropout rate inside the transformer blocks.
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `"image"` (float32
        `(batch, H, W, channels)`) to a dict of float32 outputs:
        `"heatmap"`: `(batch, H / 4, W / 4, num_classes)` logits;
        `"size"`: `(batch, H / 4, W / 4, 2)` box (height, width) in grid
        cells, positive; `"offset"`: `(batch, H / 4, W / 4, 2)` (dy, dx) of
        the box centre inside its cell.
    """
    num_classes = check_positive_int("num_classes", num_classes)
    groups = check_positive_int("groups", groups)
    widths = _check_widths(widths, groups)
    blocks_per_stage = check_positive_int("blocks_per_stage", blocks_per_stage)
    encoder_layers = check_positive_int("encoder_layers", encoder_layers)
    num_heads = check_positive_int("num_heads", num_heads)
    head_width = check_positive_int("head_width", head_width)
    reduction_ratio = check_positive_int("reduction_ratio", reduction_ratio)
    dropout = check_rate("dropout", dropout)
    if head_width % groups:
        raise ValueError(
            "Argument `head_width` must be divisible by `groups`. "
            f"Received: head_width={head_width}, groups={groups}"
        )
    if widths[-1] % num_heads:
        raise ValueError(
            "Argument `num_heads` must divide the last entry of `widths`. "
            f"Received: num_heads={num_heads}, widths={tuple(widths)!r}"
        )
    max_stride = 2 ** (len(widths) + 1)
    input_shape = _check_input_shape(input_shape, max_stride)

    # Backbone.
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale", **FLOAT32)(
        inputs
    )
    x = _conv_norm(x, widths[0], 3, 2, groups, "stem")
    stages = []
    for i, filters in enumerate(widths, start=1):
        for j in range(1, blocks_per_stage + 1):
            x = _residual_block(
                x,
                filters,
                2 if j == 1 else 1,
                groups,
                reduction_ratio,
                f"stage{i}_block{j}",
            )
        stages.append(x)

    # Global context over the coarsest level.
    stages[-1] = FeatureMapEncoder(
        num_layers=encoder_layers,
        num_heads=num_heads,
        intermediate_dim=2 * widths[-1],
        dropout=dropout,
        name="encoder",
        **FLOAT32,
    )(stages[-1])

    # Top-down feature pyramid to stride 4.
    x = _conv(stages[-1], head_width, 1, 1, f"lateral{len(widths)}")
    for i in range(len(widths) - 1, 0, -1):
        x = keras.layers.UpSampling2D(2, name=f"upsample{i}", **FLOAT32)(x)
        lateral = _conv(stages[i - 1], head_width, 1, 1, f"lateral{i}")
        x = keras.layers.Add(name=f"merge{i}", **FLOAT32)([x, lateral])
        x = _conv_norm(x, head_width, 3, 1, groups, f"pyramid{i}")

    # Heads.
    prior = math.log(HEATMAP_PRIOR / (1.0 - HEATMAP_PRIOR))
    heatmap = _head(
        x, num_classes, head_width, "heatmap", keras.initializers.Constant(prior)
    )
    size = _head(x, 2, head_width, "size")
    size = keras.layers.Activation("exponential", name="size", **FLOAT32)(size)
    offset = _head(x, 2, head_width, "offset")
    outputs = {
        "heatmap": keras.layers.Identity(name="heatmap", **FLOAT32)(heatmap),
        "size": size,
        "offset": keras.layers.Identity(name="offset", **FLOAT32)(offset),
    }
    return keras.Model(inputs, outputs, name=name)
