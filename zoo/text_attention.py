"""Where a text classifier looks: one attention weight per token of each text."""

import keras
import numpy as np
from keras import ops

from layers.attention_pooling import AttentionPooling
from layers.transformer_encoder import TransformerEncoder


def _last_attention_layer(classifier):
    pools = [lay for lay in classifier.layers if isinstance(lay, AttentionPooling)]
    if pools:
        return pools[-1]
    encoders = [lay for lay in classifier.layers if isinstance(lay, TransformerEncoder)]
    if encoders:
        return encoders[-1]
    raise ValueError(
        f"Model {classifier.name!r} has no AttentionPooling or TransformerEncoder "
        "layer to read attention from."
    )


def text_attention(model, texts):
    """Attention of a `TextClassifier` over the tokens of each text.

    Reads the last `AttentionPooling` layer of the token model (its pooling
    weights), else the last `TransformerEncoder` (its self-attention weights
    averaged over heads and over the real query tokens: how much attention
    each token receives).

    Args:
        model: a `zoo.TextClassifier`.
        texts: a list of strings.

    Returns:
        A list of `(words, weights)` per text: the tokens as the model reads
        them (lower-cased, `[UNK]` for unknown ones) and a NumPy float32 array
        of their weights, which sums to 1.
    """
    import tensorflow as tf

    tokens = model.tokenize(tf.constant(list(texts), tf.string))
    mask = ops.not_equal(tokens, 0)
    classifier = model.classifier
    layer = _last_attention_layer(classifier)
    # The layer's inputs in the graph are its sequence and the mask tensor
    # Keras passed along with it: the sequence is the first.
    inputs = layer.input[0] if isinstance(layer.input, list) else layer.input
    features = keras.Model(classifier.input, inputs)(tokens, training=False)
    if isinstance(layer, AttentionPooling):
        _, weights = layer(features, mask=mask, return_attention_scores=True)
    else:
        _, scores = layer(
            features, padding_mask=mask, return_attention_scores=True, training=False
        )
        queries = ops.cast(mask, "float32")[:, None, :, None]
        received = ops.sum(ops.cast(scores, "float32") * queries, axis=(1, 2))
        weights = received / ops.sum(received, axis=-1, keepdims=True)
    weights = np.asarray(ops.convert_to_numpy(ops.cast(weights, "float32")))
    tokens = np.asarray(tokens)
    vocabulary = model.vectorizer.get_vocabulary()
    result = []
    for row, row_weights in zip(tokens, weights, strict=True):
        real = row != 0
        words = [str(vocabulary[t]) for t in row[real]]
        result.append((words, row_weights[real].astype(np.float32)))
    return result


def plot_text_attention(pairs, labels, path):
    """Writes a PNG: each text's words shaded by their attention weight.

    Args:
        pairs: `text_attention`'s result.
        labels: one caption per text (e.g. the predicted label).
        path: the PNG to write.

    Returns:
        `path`.
    """
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(len(" ".join(words)) for words, _ in pairs)
    fig, ax = plt.subplots(figsize=(min(24, 2 + 0.12 * width), 0.6 + 0.5 * len(pairs)))
    ax.axis("off")
    for i, ((words, weights), label) in enumerate(zip(pairs, labels, strict=True)):
        y = 1 - (i + 0.5) / len(pairs)
        ax.text(0, y, f"{label}:", fontsize=9, ha="right", va="center")
        top = float(weights.max()) if len(weights) else 1.0
        x = 0.01
        for word, weight in zip(words, weights, strict=True):
            alpha = 0.1 + 0.8 * float(weight) / top
            box = dict(facecolor="red", alpha=alpha, edgecolor="none", pad=1)
            ax.text(x, y, word, fontsize=9, va="center", bbox=box)
            x += (len(word) + 1) / max(width, 1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
