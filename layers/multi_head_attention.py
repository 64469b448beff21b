"""Multi-head scaled dot-product attention, a faster drop-in for Keras' layer."""

import functools
import math

import keras
from keras import ops

from layers._masking import any_key_visible, causal_mask, masked_softmax, merge_masks
from layers.validation import (
    check_choice,
    check_last_dim,
    check_mask_shape,
    check_positive_int,
    check_rank,
    check_rate,
)

_IMPLEMENTATIONS = ("auto", "fused", "explicit")
# Keras arguments this layer drops, with the values that mean "not used".
_UNSUPPORTED = {
    "attention_axes": (None, 1, -2, (1,), [1], (-2,), [-2]),
    "sliding_window": (None,),
    "flash_attention": (None, False),
    "use_gate": (False,),
}
_NEG_INF = -1e30
# Query blocks of the explicit path: at most QUERY_BLOCKS, of at least
# QUERY_BLOCK_MIN queries; without a causal mask only from BLOCKED_PAIRS
# query-key pairs on.
QUERY_BLOCKS = 8
QUERY_BLOCK_MIN = 128
BLOCKED_PAIRS = 2048 * 2048


@keras.saving.register_keras_serializable(package="attention_zoo")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention (Vaswani et al., 2017) over rank-3 inputs.

    A drop-in for `keras.layers.MultiHeadAttention` with the same constructor
    and call arguments, weights (`query`, `key`, `value` kernels of shape
    `(dim, num_heads, key_dim)`, `attention_output` kernel of shape
    `(num_heads, value_dim, output_dim)`, in the same order, so
    `set_weights(keras_mha.get_weights())` works) and Keras-mask handling.

    Differences from Keras: a query row whose keys are all masked (for example
    a padded query position) attends to nothing, so its context vector is zero
    and its output is the output-projection bias (Keras averages the values
    instead); the softmax always runs in float32; and the output does not
    depend on `return_attention_scores`. `attention_axes`, `sliding_window`,
    `flash_attention` and `use_gate` are not supported (only their default
    values are accepted).

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; defaults to `key_dim`.
        dropout: dropout rate on the attention weights, in [0, 1).
        use_bias: whether the projections use biases.
        output_shape: last dimension(s) of the output (an int or a tuple);
            defaults to the query's last dimension.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        kernel_regularizer: regularizer of the projection kernels.
        bias_regularizer: regularizer of the projection biases.
        activity_regularizer: regularizer of the projected query, key and value
            and of the layer's outputs.
        kernel_constraint: constraint of the projection kernels.
        bias_constraint: constraint of the projection biases.
        seed: optional integer seed of the attention dropout.
        implementation: `"fused"` (`keras.ops.dot_product_attention`),
            `"explicit"` (batched matmuls and a float32 softmax, by blocks of
            queries for long or causal inputs: a causal mask skips the key
            blocks above the diagonal, and the `(B, H, T, S)` temporaries
            shrink to one block's) or `"auto"`:
            explicit on TensorFlow and on CPU, where it is faster, fused
            elsewhere. Attention dropout in training always runs the explicit
            computation.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        query: query tensor of shape `(B, T, dim)`.
        value: value tensor of shape `(B, S, dim)`.
        key: optional key tensor of shape `(B, S, dim)`; defaults to `value`.
        query_mask: optional boolean `(B, T)` mask; taken from `query`'s Keras
            mask when not given. Masked query rows attend to nothing.
        value_mask: optional boolean `(B, S)` mask; taken from `value`'s Keras
            mask when not given.
        key_mask: optional boolean `(B, S)` mask; taken from `key`'s Keras
            mask when not given.
        attention_mask: optional boolean mask broadcastable to `(B, T, S)`,
            `True` where a query may attend to a key.
        return_attention_scores: whether to also return the attention weights.
        training: whether to apply attention dropout.
        use_causal_mask: whether query `i` may only attend to keys `j <= i`.

    Returns:
        The output of shape `(B, T) + output_shape` (`(B, T, dim)` by default)
        in the compute dtype, carrying `query`'s Keras mask; with
        `return_attention_scores=True`, also the attention weights of shape
        `(B, num_heads, T, S)` (zero for masked keys and for fully masked
        query rows).
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed=None,
        implementation="auto",
        **kwargs,
    ):
        for name, accepted in _UNSUPPORTED.items():
            if name in kwargs:
                value = kwargs.pop(name)
                if value not in accepted:
                    raise ValueError(
                        f"Argument `{name}` is not supported by this "
                        f"MultiHeadAttention. Received: {name}={value!r}"
                    )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.supports_masking = True
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.key_dim = check_positive_int("key_dim", key_dim)
        value_dim = check_positive_int("value_dim", value_dim, allow_none=True)
        self.value_dim = value_dim or self.key_dim
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        # Stored privately like Keras: a public `output_shape` attribute breaks
        # `summary()` of subclassed models.
        self._output_shape = _normalize_output_shape(output_shape)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.seed = seed
        self.implementation = check_choice(
            "implementation", implementation, _IMPLEMENTATIONS
        )
        self._scale = 1.0 / math.sqrt(float(self.key_dim))
        self._dropout_layer = keras.layers.Dropout(
            self.dropout, seed=seed, dtype=self.dtype_policy
        )

    def _dense(self, equation, output_shape, bias_axes, name):
        def fresh(initializer):
            return initializer.__class__.from_config(initializer.get_config())

        return keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=fresh(self.kernel_initializer),
            bias_initializer=fresh(self.bias_initializer),
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            kernel_constraint=self.kernel_constraint,
            bias_constraint=self.bias_constraint,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        self._check_shapes(query_shape, value_shape, key_shape)
        heads, k_dim, v_dim = self.num_heads, self.key_dim, self.value_dim
        out = self._output_shape or (query_shape[-1],)
        out_letters = "efgh"[: len(out)]
        proj = "abc,cde->abde"
        self._query_dense = self._dense(proj, (None, heads, k_dim), "de", "query")
        self._query_dense.build(query_shape)
        self._key_dense = self._dense(proj, (None, heads, k_dim), "de", "key")
        self._key_dense.build(key_shape)
        self._value_dense = self._dense(proj, (None, heads, v_dim), "de", "value")
        self._value_dense.build(value_shape)
        self._output_dense = self._dense(
            f"abcd,cd{out_letters}->ab{out_letters}",
            (None, *out),
            out_letters,
            "attention_output",
        )
        self._output_dense.build((query_shape[0], query_shape[1], heads, v_dim))

    @property
    def query_dense(self):
        return self._query_dense

    @property
    def key_dense(self):
        return self._key_dense

    @property
    def value_dense(self):
        return self._value_dense

    @property
    def output_dense(self):
        return self._output_dense

    def _check_shapes(self, query_shape, value_shape, key_shape):
        for name, shape in (("query", query_shape), ("value", value_shape)):
            check_rank(name, shape, 3)
            check_last_dim(name, shape)
        check_rank("key", key_shape, 3)
        check_last_dim("key", key_shape)
        shapes = {"query": query_shape, "value": value_shape, "key": key_shape}
        batches = {n: s[0] for n, s in shapes.items() if s[0] is not None}
        if len(set(batches.values())) > 1:
            received = ", ".join(f"{n}.shape[0]={b}" for n, b in batches.items())
            raise ValueError(
                f"Inputs `query`, `value` and `key` must have the same batch "
                f"size. Received: {received}"
            )
        if None not in (key_shape[1], value_shape[1]) and (
            key_shape[1] != value_shape[1]
        ):
            raise ValueError(
                "Inputs `key` and `value` must have the same length. Received: "
                f"key.shape={tuple(key_shape)}, value.shape={tuple(value_shape)}"
            )

    def _validate(self, query, value, key, masks):
        self._check_shapes(query.shape, value.shape, key.shape)
        batch = query.shape[0] if query.shape[0] is not None else value.shape[0]
        t_len, s_len = query.shape[1], value.shape[1]
        expected = {
            "query_mask": (batch, t_len),
            "value_mask": (batch, s_len),
            "key_mask": (batch, s_len),
            "attention_mask": (batch, t_len, s_len),
        }
        for name, mask in masks.items():
            if mask is not None:
                check_mask_shape(name, tuple(mask.shape), expected[name])

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        key = value if key is None else key
        masks = {
            "query_mask": query_mask,
            "value_mask": value_mask,
            "key_mask": key_mask,
            "attention_mask": attention_mask,
        }
        self._validate(query, value, key, masks)
        mask = _merge_padding_masks(**masks)
        # The path never depends on `return_attention_scores`, so neither does
        # the output.
        explicit = bool(training) and self.dropout > 0.0
        explicit = explicit or self._resolve_implementation() == "explicit"
        attend = self._explicit_attention if explicit else self._fused_attention
        q, k, v = self._projections(query, key, value)
        output, scores = attend(
            q, k, v, mask, use_causal_mask, training, return_attention_scores
        )
        output = self._project_output(output, query)
        if return_attention_scores:
            return output, ops.cast(scores, self.compute_dtype)
        return output

    def _resolve_implementation(self):
        if self.implementation != "auto":
            return self.implementation
        return _auto_implementation()

    def _project(self, x, dense, head_dim, scale=None):
        """`x @ kernel + bias` as `(B, L, num_heads, head_dim)`, times `scale`."""
        kernel = dense.kernel
        width = self.num_heads * head_dim
        # One 2-D matmul: cheaper than a batched one, in both directions.
        flat = ops.reshape(x, (-1, x.shape[-1]))
        y = ops.matmul(flat, ops.reshape(kernel, (-1, width)))
        if self.use_bias:
            y = ops.add(y, ops.reshape(dense.bias, (width,)))
        if self.activity_regularizer is not None:
            loss = self.activity_regularizer(y)
            self.add_loss(loss / ops.cast(ops.shape(x)[0], loss.dtype))
        if scale is not None:
            y = ops.multiply(y, ops.cast(scale, y.dtype))
        # Explicit sizes, not -1: a reshape cannot infer one next to a zero.
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(y, (batch, length, self.num_heads, head_dim))

    def _projections(self, query, key, value):
        """Scaled query, key and value, each `(B, length, num_heads, dim)`."""
        q = self._project(query, self._query_dense, self.key_dim, self._scale)
        k = self._project(key, self._key_dense, self.key_dim)
        v = self._project(value, self._value_dense, self.value_dim)
        return q, k, v

    def _explicit_attention(self, q, k, v, mask, causal, training, return_scores):
        t_len, s_len = q.shape[1], k.shape[1]
        blocks = None
        if mask is None or None not in mask.shape[1:]:
            blocks = _query_blocks(t_len, s_len, causal)
        if blocks is None:
            full_mask = _with_causal(mask, q, k, causal, axis=1)
            return self._attend(
                q, k, v, full_mask, mask is not None, training, return_scores
            )
        # Query block [start, stop) only sees keys [0, stop) when causal, so
        # the blocks above the diagonal are never computed. `ops.split` and
        # `ops.slice` (not indexing) keep TensorFlow's gradients cheap.
        batch = ops.shape(k)[0]
        q_blocks = ops.split(q, [stop for _, stop in blocks[:-1]], axis=1)
        contexts, all_weights = [], []
        for q_block, (start, stop) in zip(q_blocks, blocks, strict=True):
            width = min(stop, s_len) if causal else s_len
            block_mask = None
            if causal:
                rows = ops.arange(start, stop, dtype="int32")[:, None]
                block_mask = ops.greater_equal(rows, ops.arange(width, dtype="int32"))
                block_mask = block_mask[None]
            if mask is not None:
                block_rows = mask if mask.shape[1] == 1 else mask[:, start:stop]
                block_rows = block_rows[:, :, :width]
                block_mask = merge_masks(block_mask, block_rows)
            k_block, v_block = k, v
            if width < s_len:
                k_shape = (batch, width, self.num_heads, self.key_dim)
                v_shape = (batch, width, self.num_heads, self.value_dim)
                k_block = ops.slice(k, (0, 0, 0, 0), k_shape)
                v_block = ops.slice(v, (0, 0, 0, 0), v_shape)
            context, weights = self._attend(
                q_block,
                k_block,
                v_block,
                block_mask,
                mask is not None,
                training,
                return_scores,
            )
            contexts.append(context)
            if return_scores:
                if width < s_len:
                    pad = [(0, 0), (0, 0), (0, 0), (0, s_len - width)]
                    weights = ops.pad(weights, pad)
                all_weights.append(weights)
        context = ops.concatenate(contexts, axis=1)
        weights = ops.concatenate(all_weights, axis=2) if return_scores else None
        return context, weights

    def _attend(self, q, k, v, mask, zero_masked_rows, training, return_scores):
        """`(B, T, H, d)` context and `(B, H, T, S)` weights (or `None`)."""
        logits = ops.einsum("bthd,bshd->bhts", q, k)
        if keras.backend.standardize_dtype(logits.dtype) != "float32":
            logits = ops.cast(logits, "float32")
        if mask is not None:
            # `where`, not adding a `(B, 1, T, S)` bias: TensorFlow's `ops.add`
            # turns that into a `BiasAdd`, which fails when B or T is 0.
            logits = ops.where(ops.expand_dims(mask, 1), logits, _NEG_INF)
        weights = ops.softmax(logits, axis=-1)
        probs = ops.cast(weights, self.compute_dtype)
        if training and self.dropout > 0.0:
            probs = self._dropout_layer(probs, training=True)
        context = ops.einsum("bhts,bshd->bthd", probs, v)
        if zero_masked_rows:
            visible = any_key_visible(mask)
            row_visible = ops.cast(ops.expand_dims(visible, -1), context.dtype)
            context = ops.multiply(context, row_visible)
            if return_scores:
                weights = ops.multiply(weights, ops.expand_dims(visible, 1))
        return context, weights if return_scores else None

    def _fused_attention(self, q, k, v, mask, causal, training, return_scores):
        mask4 = None if mask is None else ops.expand_dims(mask, 1)
        context = ops.dot_product_attention(
            q, k, v, mask=mask4, scale=1.0, is_causal=causal
        )
        scores = None
        if mask is not None:
            # The backends average the values over a fully masked row.
            visible = any_key_visible(_with_causal(mask, q, k, causal, axis=1))
            visible = ops.expand_dims(visible, -1)
            context = ops.multiply(context, ops.cast(visible, context.dtype))
        if return_scores:
            logits = ops.einsum("bthd,bshd->bhts", q, k)
            full_mask = _with_causal(mask, q, k, causal, axis=1)
            if full_mask is not None:
                full_mask = ops.expand_dims(full_mask, 1)
            scores = masked_softmax(logits, full_mask, axis=-1)
        return context, scores

    def _project_output(self, context, query):
        """Maps `(B, T, num_heads, value_dim)` to `(B, T) + output_shape`."""
        kernel = self._output_dense.kernel
        out = self._output_shape or (query.shape[-1],)
        width = math.prod(out)
        context = ops.reshape(context, (-1, self.num_heads * self.value_dim))
        y = ops.matmul(context, ops.reshape(kernel, (-1, width)))
        if self.use_bias:
            y = ops.add(y, ops.reshape(self._output_dense.bias, (width,)))
        batch, length = ops.shape(query)[0], ops.shape(query)[1]
        return ops.reshape(y, (batch, length, *out))

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        out = self._output_shape or (query_shape[-1],)
        return (query_shape[0], query_shape[1], *out)

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        key = value if key is None else key
        masks = {
            "query_mask": query_mask,
            "value_mask": value_mask,
            "key_mask": key_mask,
            "attention_mask": attention_mask,
        }
        self._validate(query, value, key, masks)
        shape = self.compute_output_shape(query.shape, value.shape, key.shape)
        output = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        scores_shape = (query.shape[0], self.num_heads, query.shape[1], value.shape[1])
        return output, keras.KerasTensor(scores_shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            key_dim=self.key_dim,
            value_dim=self.value_dim,
            dropout=self.dropout,
            use_bias=self.use_bias,
            output_shape=self._output_shape,
            seed=self.seed,
            implementation=self.implementation,
        )
        for kind, module in (
            ("initializer", keras.initializers),
            ("regularizer", keras.regularizers),
            ("constraint", keras.constraints),
        ):
            for part in ("kernel", "bias"):
                name = f"{part}_{kind}"
                config[name] = module.serialize(getattr(self, name))
        config["activity_regularizer"] = keras.regularizers.serialize(
            self.activity_regularizer
        )
        return config


@functools.cache
def _auto_implementation():
    """The faster path for this backend and device.

    TensorFlow's `dot_product_attention` is an unfused einsum-softmax-einsum on
    every device, and JAX's is not fused on CPU: there the explicit path wins
    (measured with `benchmarks/attention.py`), more so with a causal mask,
    where it skips the blocks above the diagonal. Torch, and JAX on GPU or
    TPU, have fused kernels.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return "explicit"
    if backend == "jax":
        devices = keras.distribution.list_devices()
        on_cpu = not devices or devices[0].lower().startswith("cpu")
        return "explicit" if on_cpu else "fused"
    return "fused"


def _normalize_output_shape(output_shape):
    if output_shape is None:
        return None
    dims = (output_shape,) if isinstance(output_shape, int) else output_shape
    try:
        dims = tuple(dims)
    except TypeError:
        dims = None
    if not dims or len(dims) > 4:
        dims = None
    else:
        for dim in dims:
            try:
                check_positive_int("output_shape", dim)
            except ValueError:
                dims = None
                break
    if dims is None:
        raise ValueError(
            "Argument `output_shape` must be a positive integer or a tuple of 1 "
            f"to 4 positive integers. Received: output_shape={output_shape!r}"
        )
    return tuple(int(d) for d in dims)


def _merge_padding_masks(query_mask, value_mask, key_mask, attention_mask):
    """Merges the masks into one boolean mask broadcastable to `(B, T, S)`."""
    parts = []
    if query_mask is not None:
        parts.append(ops.expand_dims(ops.cast(query_mask, "bool"), -1))
    for mask in (value_mask, key_mask):
        if mask is not None:
            parts.append(ops.expand_dims(ops.cast(mask, "bool"), -2))
    if attention_mask is not None:
        attention_mask = ops.cast(attention_mask, "bool")
        while len(attention_mask.shape) < 3:
            attention_mask = ops.expand_dims(attention_mask, 0)
        parts.append(attention_mask)
    return merge_masks(*parts)


def _query_blocks(t_len, s_len, causal):
    """Query blocks `(start, stop)` of the explicit path, or `None` for one."""
    if t_len is None or s_len is None or t_len < 2 * QUERY_BLOCK_MIN:
        return None
    if not causal and t_len * s_len < BLOCKED_PAIRS:
        return None
    count = min(QUERY_BLOCKS, t_len // QUERY_BLOCK_MIN)
    bounds = [round(i * t_len / count) for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _with_causal(mask, q, k, causal, axis=2):
    """Adds the causal mask; `axis` is the sequence axis of `q` and `k`."""
    if not causal:
        return mask
    causal = ops.expand_dims(causal_mask(ops.shape(q)[axis], ops.shape(k)[axis]), 0)
    return causal if mask is None else ops.logical_and(mask, causal)
