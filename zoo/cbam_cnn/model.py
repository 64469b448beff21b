"""Residual CNN with a CBAM block after each stage."""

import keras

from layers.convolutional_attention_module import ConvolutionalAttentionModule
from layers.quantizable_conv2d import QuantizableConv2D
from layers.validation import check_positive_int, check_rate
from zoo._image import image_input, logits

# Only the convolutions follow a mixed-precision policy: on CPU, bfloat16
# elementwise ops are emulated and slower than float32 ones.
FLOAT32 = dict(dtype="float32")


def _conv(x, filters, kernel_size, strides, name, relu, batch_norm):
    x = QuantizableConv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=not batch_norm,
        activation="relu" if relu and not batch_norm else None,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn", **FLOAT32)(x)
        if relu:
            x = keras.layers.ReLU(name=f"{name}_relu", **FLOAT32)(x)
    return x


def _residual_block(x, filters, strides, name, batch_norm):
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(x, filters, 1, strides, f"{name}_shortcut", False, batch_norm)
    x = _conv(x, filters, 3, strides, f"{name}_1", True, batch_norm)
    x = _conv(x, filters, 3, 1, f"{name}_2", False, batch_norm)
    x = keras.layers.Add(name=f"{name}_add", **FLOAT32)([x, shortcut])
    return keras.layers.ReLU(name=f"{name}_out", **FLOAT32)(x)


def cbam_cnn(
    input_shape=(28, 28, 1),
    num_classes=10,
    widths=(32, 64, 128),
    blocks_per_stage=1,
    stem_strides=2,
    reduction_ratio=8,
    kernel_size=7,
    use_channel_attention=True,
    use_spatial_attention=True,
    conv_batch_norm=False,
    dropout=0.1,
    name="cbam_cnn",
):
    """Builds a residual CNN classifier with CBAM after each stage.

    A stem (3x3 conv, ReLU); one stage per entry of `widths`, each of
    `blocks_per_stage` residual basic blocks (3x3 conv, ReLU, 3x3 conv, add
    the shortcut, ReLU; the first block of every stage after the first halves
    the resolution) followed by a `ConvolutionalAttentionModule` named
    `stage{i}_attention`; then batch normalization, global average pooling,
    dropout and a float32 `Dense` named `"logits"`. The convolutions follow
    the dtype policy; the other layers run in float32 (under `mixed_bfloat16`
    only the convolutions run in bfloat16: on CPU that trains fastest).

    Args:
        input_shape: `(height, width, channels)` of the float32 images in
            [0, 1].
        num_classes: number of classes.
        widths: channels of each stage.
        blocks_per_stage: residual blocks per stage.
        stem_strides: stride of the stem convolution.
        reduction_ratio: CBAM channel reduction.
        kernel_size: CBAM spatial-gate kernel size.
        use_channel_attention: CBAM channel gate on or off.
        use_spatial_attention: CBAM spatial gate on or off.
        conv_batch_norm: also batch-normalize after every convolution
            (ResNet style; slower, and slower still under `mixed_bfloat16`).
        dropout: dropout rate before the logits.
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `"image"` to logits.
    """
    num_classes = check_positive_int("num_classes", num_classes)
    blocks_per_stage = check_positive_int("blocks_per_stage", blocks_per_stage)
    stem_strides = check_positive_int("stem_strides", stem_strides)
    dropout = check_rate("dropout", dropout)
    if not widths:
        raise ValueError(
            f"Argument `widths` must be non-empty. Received: widths={widths!r}"
        )
    widths = [check_positive_int("widths", w) for w in widths]
    batch_norm = bool(conv_batch_norm)

    inputs = image_input(input_shape)
    x = _conv(inputs, widths[0], 3, stem_strides, "stem", True, batch_norm)
    for i, filters in enumerate(widths, start=1):
        for j in range(1, blocks_per_stage + 1):
            strides = 2 if i > 1 and j == 1 else 1
            x = _residual_block(x, filters, strides, f"stage{i}_block{j}", batch_norm)
        x = ConvolutionalAttentionModule(
            reduction_ratio=reduction_ratio,
            kernel_size=kernel_size,
            use_channel_attention=use_channel_attention,
            use_spatial_attention=use_spatial_attention,
            name=f"stage{i}_attention",
            **FLOAT32,
        )(x)
    x = keras.layers.BatchNormalization(name="head_bn", **FLOAT32)(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool", **FLOAT32)(x)
    x = keras.layers.Dropout(dropout, name="dropout", **FLOAT32)(x)
    return keras.Model(inputs, logits(x, num_classes), name=name)
