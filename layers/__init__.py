"""Attention layers for Keras 3 (TensorFlow and JAX backends).

Every layer is registered under the package name `attention_zoo`, so models
that use them load with `keras.saving.load_model(path, safe_mode=True)`.
"""

from layers.additive_attention import AdditiveAttention
from layers.attention_pooling import AttentionPooling
from layers.convolutional_attention_module import ConvolutionalAttentionModule
from layers.hashed_bigram_embedding import HashedBigramEmbedding
from layers.ind_rnn_cell import IndRNNCell
from layers.janet_cell import JANETCell
from layers.local_attention import LocalAttention
from layers.multi_head_attention import MultiHeadAttention
from layers.pointer_generator import PointerGenerator
from layers.position_embedding import PositionEmbedding
from layers.positional_encoding import PositionalEncoding
from layers.prediction_average import PredictionAverage
from layers.quantizable_conv2d import QuantizableConv2D
from layers.self_attention import SelfAttention
from layers.self_attention_2d import SelfAttention2D
from layers.token_and_position_embedding import TokenAndPositionEmbedding
from layers.transformer_decoder import TransformerDecoder
from layers.transformer_encoder import TransformerEncoder

__all__ = [
    "AdditiveAttention",
    "AttentionPooling",
    "ConvolutionalAttentionModule",
    "HashedBigramEmbedding",
    "IndRNNCell",
    "JANETCell",
    "LocalAttention",
    "MultiHeadAttention",
    "PointerGenerator",
    "PositionEmbedding",
    "PositionalEncoding",
    "PredictionAverage",
    "QuantizableConv2D",
    "SelfAttention",
    "SelfAttention2D",
    "TokenAndPositionEmbedding",
    "TransformerDecoder",
    "TransformerEncoder",
]
