"""Residual CNN with a CBAM block after each stage."""

import keras

from layers._validation import check_positive_int, check_rate
from layers.convolutional_attention_module import ConvolutionalAttentionModule
from zoo._image import augment, image_input, logits


def _conv_bn(x, filters, strides, name, activation=True):
    x = keras.layers.Conv2D(
        filters,
        3,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def _residual_block(x, filters, strides, name):
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(
            filters,
            1,
            strides=strides,
            use_bias=False,
            kernel_initializer="he_normal",
            name=f"{name}_shortcut_conv",
        )(x)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    x = _conv_bn(x, filters, strides, f"{name}_1")
    x = _conv_bn(x, filters, 1, f"{name}_2", activation=False)
    x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def cbam_cnn(
    input_shape=(28, 28, 1),
    num_classes=10,
    widths=(32, 64, 128),
    blocks_per_stage=1,
    stem_strides=1,
    reduction_ratio=8,
    kernel_size=7,
    use_channel_attention=True,
    use_spatial_attention=True,
    dropout=0.1,
    augmentation=0.0,
    name="cbam_cnn",
):
    """Builds a residual CNN classifier with CBAM after each stage.

    Optional random shifts (training only), a stem (3x3 conv, BN, ReLU), then
    one stage per entry of `widths`: residual basic blocks (the first block of
    every stage after the first halves the resolution) followed by a
    `ConvolutionalAttentionModule` named
    `stage{i}_attention`; then global average pooling, dropout and a float32
    `Dense` named `"logits"`.

    Args:
        input_shape: `(height, width, channels)` of the float32 images in
            [0, 1].
        num_classes: number of classes.
        widths: channels of each stage.
        blocks_per_stage: residual blocks per stage.
        stem_strides: stride of the stem convolution (2 for large images).
        reduction_ratio: CBAM channel reduction.
        kernel_size: CBAM spatial-gate kernel size.
        use_channel_attention: CBAM channel gate on or off.
        use_spatial_attention: CBAM spatial gate on or off.
        dropout: dropout rate before the logits.
        augmentation: random shift during training, as a fraction of the
            image size (0 for none).
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `"image"` to logits.
    """
    num_classes = check_positive_int("num_classes", num_classes)
    blocks_per_stage = check_positive_int("blocks_per_stage", blocks_per_stage)
    stem_strides = check_positive_int("stem_strides", stem_strides)
    dropout = check_rate("dropout", dropout)
    augmentation = check_rate("augmentation", augmentation)
    if not widths:
        raise ValueError(
            f"Argument `widths` must be non-empty. Received: widths={widths!r}"
        )
    widths = [check_positive_int("widths", w) for w in widths]

    inputs = image_input(input_shape)
    x = augment(inputs, augmentation)
    x = _conv_bn(x, widths[0], stem_strides, "stem")
    for i, filters in enumerate(widths, start=1):
        for j in range(1, blocks_per_stage + 1):
            strides = 2 if i > 1 and j == 1 else 1
            x = _residual_block(x, filters, strides, f"stage{i}_block{j}")
        x = ConvolutionalAttentionModule(
            reduction_ratio=reduction_ratio,
            kernel_size=kernel_size,
            use_channel_attention=use_channel_attention,
            use_spatial_attention=use_spatial_attention,
            name=f"stage{i}_attention",
        )(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = logits(x, num_classes)
    return keras.Model(inputs, outputs, name=name)
