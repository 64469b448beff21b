"""Pictures of a decoder's cross-attention: source words against output words."""

import os

import numpy as np


def attention_grid(translator, source, tokens, weights):
    """Per sentence, `(source words, output words, weights)` without padding.

    Args:
        translator: the `Translator` that decoded.
        source: int32 `(B, S)` source tokens.
        tokens: int32 `(B, L)` generated tokens (end token included).
        weights: float32 `(B, L, S)` cross-attention weights.

    Returns:
        A list of `(source_words, output_words, weights)`, `weights` of shape
        `(len(output_words), len(source_words))`, each row summing to 1.
    """
    source_words = translator.source_vectorizer.get_vocabulary()
    target_words = translator.target_vectorizer.get_vocabulary()
    grids = []
    for src, out, w in zip(source, tokens, weights, strict=True):
        s_len = int(np.sum(src != 0))
        t_len = int(np.sum(out != 0))
        grids.append(
            (
                [source_words[i] for i in src[:s_len]],
                [target_words[i] for i in out[:t_len]],
                np.asarray(w[:t_len, :s_len], np.float32),
            )
        )
    return grids


def plot_seq2seq_attention(translator, source, tokens, weights, path):
    """Draws each sentence's cross-attention as a heat map into a PNG.

    Args:
        translator: the `Translator` that decoded.
        source: int32 `(B, S)` source tokens.
        tokens: int32 `(B, L)` generated tokens.
        weights: float32 `(B, L, S)` cross-attention weights.
        path: the PNG file to write (its folder is created).

    Returns:
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = attention_grid(translator, source, tokens, weights)
    width = max(4.0, 0.5 * max(len(g[0]) for g in grids))
    height = sum(max(2.0, 0.4 * len(g[1])) for g in grids)
    fig, axes = plt.subplots(len(grids), 1, figsize=(width, height + 1), squeeze=False)
    for ax, (words, outputs, grid) in zip(axes[:, 0], grids, strict=True):
        if not words or not outputs:
            ax.axis("off")
            ax.text(0.5, 0.5, "(empty source or output)", ha="center", va="center")
            continue
        ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(words)), words, rotation=45, ha="right")
        ax.set_yticks(range(len(outputs)), outputs)
        ax.set_xlabel("source")
        ax.set_ylabel("output")
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
