"""Where `MultiHeadAttention` attends: Keras' einsum layout, and sequences.

Keras' layer attends over `attention_axes` of inputs of any rank >= 3: the
projected query is `(B, d_1, ..., d_n, heads, key_dim)`, the axes `1..n` not in
`attention_axes` act as further batch axes, and the scores are laid out as
`(B, <batch-like axes>, heads, <query attention axes>, <key attention axes>)`
("the scores layout"). `Layout` maps that to the rank-4 sequences the
attention paths compute on: `(B', T', heads, dim)`, with the batch-like axes
folded into `B'` and the attention axes flattened into `T'` (row-major), and
back. Rank-3 inputs with the default axes are the identity case: no reshape.
"""

import string

from keras import ops


def projection_equation(free_dims, bound_dims, output_dims):
    """Keras' projection einsum: `(equation, bias_axes)`.

    `free_dims` input axes are kept, `bound_dims` are contracted with the
    kernel and `output_dims` come from the kernel (the bias covers them).
    """
    letters = string.ascii_lowercase
    free = letters[:free_dims]
    bound = letters[free_dims : free_dims + bound_dims]
    out = letters[free_dims + bound_dims : free_dims + bound_dims + output_dims]
    return f"{free}{bound},{bound}{out}->{free}{out}", out


def normalize_attention_axes(attention_axes, rank):
    """`attention_axes` of a rank-`rank` input as a tuple of axes in `[1, rank-2]`.

    `None` means every axis but the batch and feature axes; negative axes count
    from the end of the input (`-2` is the last one before the features), as
    in Keras.
    """
    if attention_axes is None:
        return tuple(range(1, rank - 1))
    axes = tuple(axis + rank if axis < 0 else axis for axis in attention_axes)
    if len(set(axes)) != len(axes) or not all(1 <= a <= rank - 2 for a in axes):
        raise ValueError(
            f"Argument `attention_axes` must name distinct axes of rank-{rank} "
            f"inputs in [1, {rank - 2}] (or [{2 - rank}, -1] from the end), not "
            "the batch or the feature axis. "
            f"Received: attention_axes={attention_axes}"
        )
    return axes


def prod_dims(dims):
    """Product of dimensions that may be Python ints or scalar tensors."""
    total = 1
    for dim in dims:
        total = total * dim
    return total


class Layout:
    """The attention layout of rank-`rank` inputs with `attention_axes`.

    Attributes:
        rank: rank of the inputs (`query`, `key`, `value`).
        attention: the attention axes, in the given order.
        batch_like: the other axes between batch and features, in order.
        identity: whether the sequences are the projections themselves
            (rank-3 inputs attending over axis 1).
    """

    def __init__(self, rank, attention_axes=None):
        self.rank = rank
        self.attention = normalize_attention_axes(attention_axes, rank)
        self.batch_like = tuple(
            a for a in range(1, rank - 1) if a not in self.attention
        )
        self.identity = rank == 3
        # Projected tensors have rank `rank + 1`: (..., heads, dim).
        self._perm = (0, *self.batch_like, *self.attention, rank - 1, rank)
        self._transposed = self._perm != tuple(range(rank + 1))

    @property
    def scores_rank(self):
        return 2 + len(self.batch_like) + 2 * len(self.attention)

    def scores_shape(self, query_shape, key_shape, num_heads):
        """Keras' scores shape for inputs of these (static) shapes."""
        return (
            query_shape[0],
            *(query_shape[a] for a in self.batch_like),
            num_heads,
            *(query_shape[a] for a in self.attention),
            *(key_shape[a] for a in self.attention),
        )

    def expanded_mask_shape(self, mask_shape):
        """`mask_shape` with Keras' ones before the query axes, or `None`.

        Keras expands a mask of lower rank than the scores before the query
        attention axes (the heads axis first, then batch-like axes); `None`
        when the mask has too high or too low a rank for that.
        """
        mask_shape = tuple(mask_shape)
        missing = self.scores_rank - len(mask_shape)
        split = len(mask_shape) - 2 * len(self.attention)
        if missing < 0 or split < 0:
            return None
        return mask_shape[:split] + (1,) * missing + mask_shape[split:]

    def expand_mask(self, mask):
        """A boolean mask in the scores layout, of the scores' rank."""
        mask = ops.cast(mask, "bool")
        axis = -2 * len(self.attention) - 1
        while len(mask.shape) < self.scores_rank:
            mask = ops.expand_dims(mask, axis)
        return mask

    def query_mask(self, mask):
        """A `query.shape[:-1]` mask in the scores layout."""
        return self._padding_mask(mask, query=True)

    def key_mask(self, mask):
        """A `value.shape[:-1]` (or key) mask in the scores layout."""
        return self._padding_mask(mask, query=False)

    def _padding_mask(self, mask, query):
        mask = ops.cast(mask, "bool")
        if self.identity:
            mask = ops.expand_dims(mask, -1 if query else -2)
            return ops.expand_dims(mask, -3)
        # Missing leading axes broadcast, as in any mask.
        while len(mask.shape) < self.rank - 1:
            mask = ops.expand_dims(mask, 0)
        perm = self._perm[: self.rank - 1]
        if self._transposed:
            mask = ops.transpose(mask, perm)
        dims = list(ops.shape(mask))
        n_batch = 1 + len(self.batch_like)
        attention = dims[n_batch:]
        ones = [1] * len(self.attention)
        positions = attention + ones if query else ones + attention
        return ops.reshape(mask, (*dims[:n_batch], 1, *positions))

    def sequences(self, x):
        """`(B, d_1..d_n, heads, dim)` to `(B', T', heads, dim)`."""
        if self.identity:
            return x
        if self._transposed:
            x = ops.transpose(x, self._perm)
        dims = list(ops.shape(x))
        n_batch = 1 + len(self.batch_like)
        return ops.reshape(
            x, (prod_dims(dims[:n_batch]), prod_dims(dims[n_batch:-2]), *dims[-2:])
        )

    def unsequence(self, x, like):
        """`(B', T', heads, dim)` back to the layout of `like`'s leading axes."""
        if self.identity:
            return x
        like_dims = ops.shape(like)
        dims = [like_dims[a] for a in self._perm[: self.rank - 1]]
        x = ops.reshape(x, (*dims, *ops.shape(x)[-2:]))
        if self._transposed:
            inverse = sorted(range(len(self._perm)), key=self._perm.__getitem__)
            x = ops.transpose(x, inverse)
        return x

    def unsequence_scores(self, scores, query, key):
        """`(B', heads, T', S')` scores to Keras' scores layout."""
        if self.identity:
            return scores
        q_dims, k_dims = ops.shape(query), ops.shape(key)
        shape = (
            q_dims[0],
            *(q_dims[a] for a in self.batch_like),
            ops.shape(scores)[1],
            *(q_dims[a] for a in self.attention),
            *(k_dims[a] for a in self.attention),
        )
        return ops.reshape(scores, shape)

    def sequence_mask(self, mask, query, key):
        """A scores-layout mask (any rank Keras expands) as `(B', H, T', S')`.

        Each of its batch, heads, query and key groups of axes stays of size
        1 when all its axes are 1, so the mask is only as large as it must be.
        """
        mask = self.expand_mask(mask)
        if self.identity:
            return mask
        q_dims, k_dims = ops.shape(query), ops.shape(key)
        n_batch = 1 + len(self.batch_like)
        n_att = len(self.attention)
        groups = [
            (list(range(n_batch)), [q_dims[0], *(q_dims[a] for a in self.batch_like)]),
            ([n_batch], [ops.shape(mask)[n_batch]]),
            (
                list(range(n_batch + 1, n_batch + 1 + n_att)),
                [q_dims[a] for a in self.attention],
            ),
            (
                list(range(n_batch + 1 + n_att, n_batch + 1 + 2 * n_att)),
                [k_dims[a] for a in self.attention],
            ),
        ]
        target, flat = [], []
        for axes, dims in groups:
            if all(mask.shape[a] == 1 for a in axes):
                target += [1] * len(axes)
                flat.append(1)
            else:
                target += dims
                flat.append(prod_dims(dims))
        mask = ops.broadcast_to(mask, target)
        return ops.reshape(mask, flat)

    def scores_mask(self, mask, query, key):
        """A `(1, 1, T', S')` sequence mask in Keras' scores layout."""
        if self.identity:
            return mask
        q_dims, k_dims = ops.shape(query), ops.shape(key)
        shape = (
            *([1] * (2 + len(self.batch_like))),
            *(q_dims[a] for a in self.attention),
            *(k_dims[a] for a in self.attention),
        )
        return ops.reshape(mask, shape)
