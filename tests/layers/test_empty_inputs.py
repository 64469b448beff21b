"""Every layer of `layers` on a batch of 0 and on a sequence (or map) of length 0."""

import keras
import numpy as np
import pytest

import layers

D = 8


def _floats(*shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def _mask(*shape):
    return np.ones(shape, bool)


def _recurrent(cell, b, t):
    """`cell` in `keras.layers.RNN`, which cannot run 0 steps."""
    if t == 0:
        pytest.skip("keras.layers.RNN reads step 0 (RNN.call slices sequences[:, 0])")
    return (
        keras.layers.RNN(cell),
        (_floats(b, t, D),),
        {"mask": _mask(b, t)},
        [(b, 4)],
    )


# Per layer: (batch, length) -> (layer, positional inputs, keyword inputs,
# expected output shapes).
CASES = {
    "AdditiveAttention": lambda b, t: (
        layers.AdditiveAttention(4),
        (_floats(b, t, D), _floats(b, t, D)),
        {"return_attention_scores": True},
        [(b, t, D), (b, t, t)],
    ),
    "AttentionPooling": lambda b, t: (
        layers.AttentionPooling(4),
        (_floats(b, t, D),),
        {"mask": _mask(b, t), "return_attention_scores": True},
        [(b, D), (b, t)],
    ),
    "ConvolutionalAttentionModule": lambda b, t: (
        layers.ConvolutionalAttentionModule(reduction_ratio=2, kernel_size=3),
        (_floats(b, t, 5, D),),
        {"return_attention_maps": True},
        [(b, t, 5, D), (b, 1, 1, D), (b, t, 5, 1)],
    ),
    "HashedBigramEmbedding": lambda b, t: (
        layers.HashedBigramEmbedding(7, D, mask_zero=True),
        (np.ones((b, t), "int32"),),
        {},
        [(b, t, D)],
    ),
    "IndRNNCell": lambda b, t: _recurrent(layers.IndRNNCell(4), b, t),
    "JANETCell": lambda b, t: _recurrent(layers.JANETCell(4), b, t),
    "LocalAttention": lambda b, t: (
        layers.LocalAttention(2, 3, window_size=2),
        (_floats(b, t, D),),
        {"mask": _mask(b, t)},
        [(b, t, D)],
    ),
    "MultiHeadAttention": lambda b, t: (
        layers.MultiHeadAttention(2, 3),
        (_floats(b, t, D), _floats(b, t, 6)),
        {"query_mask": _mask(b, t), "return_attention_scores": True},
        [(b, t, D), (b, 2, t, t)],
    ),
    "PositionEmbedding": lambda b, t: (
        layers.PositionEmbedding(6),
        (_floats(b, t, D),),
        {},
        [(b, t, D)],
    ),
    "PositionalEncoding": lambda b, t: (
        layers.PositionalEncoding(),
        (_floats(b, t, D),),
        {},
        [(b, t, D)],
    ),
    "PointerGenerator": lambda b, t: (
        layers.PointerGenerator(9, 7, key_dim=4),
        (_floats(b, t, 7), _floats(b, t, D), _floats(b, t, 6)),
        {"source_ids": np.ones((b, t), "int32"), "return_attention_scores": True},
        [(b, t, 7), (b, t, t)],
    ),
    "PredictionAverage": lambda b, t: (
        layers.PredictionAverage(member_weights=[1, 3]),
        ([_floats(b, t), _floats(b, t)],),
        {},
        [(b, t)],
    ),
    "QuantizableConv2D": lambda b, t: (
        layers.QuantizableConv2D(4, 3, padding="same"),
        (_floats(b, t, 5, D),),
        {},
        [(b, t, 5, 4)],
    ),
    "SelfAttention": lambda b, t: (
        layers.SelfAttention(4, top_k=2, causal=True),
        (_floats(b, t, D),),
        {"mask": _mask(b, t), "return_attention_scores": True},
        [(b, t, 4), (b, t, t)],
    ),
    "SelfAttention2D": lambda b, t: (
        layers.SelfAttention2D(),
        (_floats(b, t, 5, D),),
        {"mask": _mask(b, t, 5), "return_attention_scores": True},
        [(b, t, 5, D), (b, t, 5, t, 5)],
    ),
    "TokenAndPositionEmbedding": lambda b, t: (
        layers.TokenAndPositionEmbedding(10, 6, D, mask_zero=True),
        (np.ones((b, t), "int32"),),
        {},
        [(b, t, D)],
    ),
    "TransformerDecoder": lambda b, t: (
        layers.TransformerDecoder(2, 12),
        (_floats(b, t, D), _floats(b, t, 6)),
        {"decoder_padding_mask": _mask(b, t), "encoder_padding_mask": _mask(b, t)},
        [(b, t, D)],
    ),
    "TransformerEncoder": lambda b, t: (
        layers.TransformerEncoder(2, 12),
        (_floats(b, t, D),),
        {"padding_mask": _mask(b, t), "return_attention_scores": True},
        [(b, t, D), (b, 2, t, t)],
    ),
}


@pytest.mark.parametrize("batch, length", [(0, 5), (2, 0)], ids=["batch", "length"])
@pytest.mark.parametrize("name", layers.__all__)
def test_empty_inputs_give_empty_outputs(name, batch, length):
    layer, args, kwargs, expected = CASES[name](batch, length)
    outputs = layer(*args, **kwargs)
    outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    assert [tuple(o.shape) for o in outputs] == expected
