"""Multi-head scaled dot-product attention, a faster drop-in for Keras' layer."""

import functools
import math
import numbers

import keras
from keras import ops

from layers._masking import any_key_visible, causal_mask, masked_softmax, merge_masks
from layers._mha_layout import Layout, prod_dims, projection_equation
from layers.validation import check_choice, check_mask_shape, check_rate

_IMPLEMENTATIONS = ("auto", "fused", "explicit")
_NEG_INF = -1e30
# Query blocks of the explicit path: at most QUERY_BLOCKS, of at least
# QUERY_BLOCK_MIN queries; without a causal mask only from BLOCKED_PAIRS
# query-key pairs on (twice as many for 16-bit compute dtypes).
QUERY_BLOCKS = 8
QUERY_BLOCK_MIN = 128
BLOCKED_PAIRS = 2048 * 2048


@keras.saving.register_keras_serializable(package="attention_zoo")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention (Vaswani et al., 2017).

    A drop-in for `keras.layers.MultiHeadAttention` (Keras 3.15): the same
    constructor and call arguments, the same sublayers and weights (`query`,
    `key`, `gate` with `use_gate`, `value` and `attention_output`
    `EinsumDense` layers, in that order, with Keras' einsum equations and
    kernel shapes, so `set_weights(keras_mha.get_weights())` works), Keras-mask
    handling, `attention_axes` over inputs of any rank >= 3, `sliding_window`
    and the gated output of `use_gate`.

    Quantization and LoRA: `model.quantize(mode)` quantizes the sublayers as it
    does Keras' (any mode `EinsumDense` supports), and `enable_lora(rank)` on
    a sublayer works as on Keras'; a quantized or LoRA sublayer computes its
    own projection (`sublayer(x)`), a plain float one is read as a matmul
    (faster). Beyond Keras, `layer.quantize(mode)` and `layer.enable_lora(rank)`
    apply to every projection sublayer, and a `.keras` file of a model with a
    quantized layer loads back quantized (Keras' own layer fails to load one).

    Overridable steps, as in Keras: `_compute_attention(query, key, value,
    attention_mask, training, return_attention_scores, use_causal_mask)` on
    the projected (unscaled) tensors, and `_masked_softmax(scores, mask)` of
    the explicit path. A subclass that overrides `_compute_attention` gets the
    causal and sliding-window masks folded into `attention_mask` and is called
    with the first six arguments only, as Keras does. The mask-building steps
    (`_compute_attention_mask`, `_compute_causal_mask`) are not hooks here:
    the causal and sliding-window masks are applied inside
    `_compute_attention`, so that the explicit path can skip the key blocks a
    causal mask hides.

    Differences from Keras: a query row whose keys are all masked (for example
    a padded query position) attends to nothing, so its context vector is zero
    and its output is the output-projection bias (Keras averages the values
    instead); the softmax always runs in float32; the output does not depend
    on `return_attention_scores`; masks of shape `(B, num_heads, T, S)` combine
    correctly with Keras masks; and for inputs of rank > 3 the Keras masks of
    `query` and `value` (of shape `input.shape[:-1]`) are applied per
    position, and `use_causal_mask` and `sliding_window` act on the attention
    positions in row-major order (Keras builds them from axis 1 only, which
    agrees when the only attention axis is axis 1). `flash_attention=None`
    leaves the choice to the backend's `dot_product_attention` on the fused
    path, whatever `keras.config.enable_flash_attention()` says.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; defaults to `key_dim`.
        dropout: dropout rate on the attention weights, in [0, 1).
        use_bias: whether the projections use biases.
        output_shape: last dimension(s) of the output (an int or a tuple);
            defaults to the query's last dimension.
        attention_axes: the axes attention runs over (an int or a tuple, not
            the batch or the feature axis); `None` (the default) means every
            axis between them.
        sliding_window: optional positive integer: query `i` only sees keys
            `j` with `|i - j| < sliding_window` (with `use_causal_mask`, the
            `sliding_window` keys up to `i`).
        flash_attention: `True` to always run the fused path with the
            backend's flash attention (which the backend and device must
            support); then `dropout` must be 0 and attention scores cannot be
            returned, as in Keras. `None` or `False`: `implementation` chooses.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        kernel_regularizer: regularizer of the projection kernels.
        bias_regularizer: regularizer of the projection biases.
        activity_regularizer: regularizer of the projected query, key, value
            (and gate) and of the layer's outputs.
        kernel_constraint: constraint of the projection kernels.
        bias_constraint: constraint of the projection biases.
        use_gate: whether to gate the attention output per head and channel
            with `sigmoid(query projection)` before the output projection
            (Qiu et al., 2025, "Gated Attention for Large Language Models"),
            as Keras does.
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
        query: query tensor of shape `(B, T, dim)` (or `(B, ..., dim)` of any
            rank >= 3).
        value: value tensor of shape `(B, S, dim)` (same rank as `query`).
        key: optional key tensor of shape `(B, S, dim)`; defaults to `value`.
        query_mask: optional boolean mask of shape `query.shape[:-1]`; taken
            from `query`'s Keras mask when not given. Masked query rows attend
            to nothing.
        value_mask: optional boolean mask of shape `value.shape[:-1]`; taken
            from `value`'s Keras mask when not given.
        key_mask: optional boolean mask of shape `key.shape[:-1]`; taken from
            `key`'s Keras mask when not given.
        attention_mask: optional boolean mask broadcastable to the attention
            scores `(B, num_heads, T, S)`, `True` where a query may attend to a
            key; as in Keras, a mask of lower rank (`(B, T, S)`, `(T, S)`) gets
            its missing axes before the query axis.
        return_attention_scores: whether to also return the attention weights.
        training: whether to apply attention dropout.
        use_causal_mask: whether query `i` may only attend to keys `j <= i`.

    Returns:
        The output of shape `query.shape[:-1] + output_shape`
        (`query.shape` by default) in the compute dtype, carrying `query`'s
        Keras mask; with `return_attention_scores=True`, also the attention
        weights, of shape `(B, num_heads, T, S)` for rank-3 inputs (Keras'
        layout otherwise: `(B, <other axes>, num_heads, <query attention
        axes>, <key attention axes>)`), zero for masked keys and for fully
        masked query rows.

    Example:

    >>> import numpy as np
    >>> layer = MultiHeadAttention(num_heads=2, key_dim=4)
    >>> x = np.ones((1, 3, 8), "float32")
    >>> out, scores = layer(x, x, return_attention_scores=True)
    >>> tuple(out.shape), tuple(scores.shape)
    ((1, 3, 8), (1, 2, 3, 3))
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        attention_axes=None,
        sliding_window=None,
        flash_attention=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        use_gate=False,
        seed=None,
        implementation="auto",
        **kwargs,
    ):
        if flash_attention not in (None, False, True):
            raise ValueError(
                "Argument `flash_attention` must be `None`, `False` or `True`. "
                f"Received: flash_attention={flash_attention!r}"
            )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.supports_masking = True
        # ----------------------------------------------------------- sizes --
        self.num_heads = _check_size("num_heads", num_heads)
        self.key_dim = _check_size("key_dim", key_dim)
        value_dim = _check_size("value_dim", value_dim, allow_none=True)
        self.value_dim = value_dim or self.key_dim
        # Stored privately like Keras: a public `output_shape` attribute breaks
        # `summary()` of subclassed models.
        self._output_shape = _normalize_output_shape(output_shape)
        # ------------------------------------------------------- attention --
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.use_gate = bool(use_gate)
        self.attention_axes = _normalize_attention_axes(attention_axes)
        self.sliding_window = _check_sliding_window(sliding_window)
        self.flash_attention = flash_attention
        self.seed = seed
        self.implementation = check_choice(
            "implementation", implementation, _IMPLEMENTATIONS
        )
        if flash_attention and self.dropout > 0.0:
            raise ValueError(
                "Dropout is not supported when flash attention is enabled. "
                "Please set dropout to 0.0 to use flash attention. "
                f"Received: dropout={dropout!r}, flash_attention=True"
            )
        if flash_attention and implementation == "explicit":
            raise ValueError(
                "Flash attention runs the fused path only. Received: "
                "implementation='explicit', flash_attention=True"
            )
        # ---------------------------------------------------- sublayer args --
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self._scale = 1.0 / math.sqrt(float(self.key_dim))
        self._dropout_layer = keras.layers.Dropout(
            self.dropout, seed=seed, dtype=self.dtype_policy
        )
        self._layout = None
        if self.compute_dtype == "bfloat16":
            _accurate_bfloat16_softmax()  # Checked now, while eager.
        # Dtype policies of quantized sublayers, set by `build_from_config`.
        self._sublayer_dtypes = {}

    # Keras' names for these settings, read by code written for its layer.
    @property
    def _sliding_window(self):
        return self.sliding_window

    @property
    def _flash_attention(self):
        return self.flash_attention

    # ------------------------------------------------------------------ build

    def _dense(self, equation, output_shape, bias_axes, name, activation=None):
        """A projection sublayer; like Keras', with fresh initializers."""

        def fresh(initializer):
            return initializer.__class__.from_config(initializer.get_config())

        return keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            activation=activation,
            kernel_initializer=fresh(self.kernel_initializer),
            bias_initializer=fresh(self.bias_initializer),
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            kernel_constraint=self.kernel_constraint,
            bias_constraint=self.bias_constraint,
            dtype=self._sublayer_dtypes.get(name, self.dtype_policy),
            name=name,
        )

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        self._layout = self._check_shapes(query_shape, value_shape, key_shape)
        rank = len(query_shape)
        heads, k_dim, v_dim = self.num_heads, self.key_dim, self.value_dim
        proj, proj_bias = projection_equation(rank - 1, 1, 2)
        free = [None] * (rank - 2)
        self._query_dense = self._dense(proj, (*free, heads, k_dim), proj_bias, "query")
        self._query_dense.build(query_shape)
        self._key_dense = self._dense(proj, (*free, heads, k_dim), proj_bias, "key")
        self._key_dense.build(key_shape)
        if self.use_gate:
            self._gate_dense = self._dense(
                proj, (*free, heads, v_dim), proj_bias, "gate", activation="sigmoid"
            )
            self._gate_dense.build(query_shape)
        self._value_dense = self._dense(proj, (*free, heads, v_dim), proj_bias, "value")
        self._value_dense.build(value_shape)
        out = self._output_shape or (query_shape[-1],)
        out_eq, out_bias = projection_equation(rank - 1, 2, len(out))
        self._output_dense = self._dense(
            out_eq, (*free, *out), out_bias, "attention_output"
        )
        self._output_dense.build((*query_shape[:-1], heads, v_dim))

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

    @property
    def gate_dense(self):
        """The gate projection (`None` without `use_gate`)."""
        return getattr(self, "_gate_dense", None)

    def _projection_layers(self):
        """The `EinsumDense` sublayers, in weight order."""
        names = ["_query_dense", "_key_dense", "_gate_dense", "_value_dense"]
        names.append("_output_dense")
        return [getattr(self, n) for n in names if hasattr(self, n)]

    # -------------------------------------------------- quantization, LoRA --

    def quantize(self, mode=None, type_check=True, config=None):
        """Quantizes every projection sublayer with `mode` (and `config`).

        `model.quantize(mode)` reaches the sublayers itself; this is for a
        layer used on its own (Keras' layer has no `quantize`).
        """
        for layer in self._projection_layers():
            layer.quantize(mode, type_check=type_check, config=config)

    def enable_lora(
        self, rank, lora_alpha=None, a_initializer="he_uniform", b_initializer="zeros"
    ):
        """Enables LoRA of rank `rank` on every projection sublayer.

        Arguments as `keras.layers.EinsumDense.enable_lora`. To adapt some
        projections only, call it on those (`layer.query_dense.enable_lora`).
        """
        if not self.built:
            raise ValueError(
                "Cannot enable lora on a layer that isn't yet built. "
                f"Layer '{self.name}' is not built yet."
            )
        for layer in self._projection_layers():
            layer.enable_lora(
                rank,
                lora_alpha=lora_alpha,
                a_initializer=a_initializer,
                b_initializer=b_initializer,
            )

    def get_build_config(self):
        """The build shapes, and the dtype policies of quantized sublayers.

        The policies let a loaded layer build its sublayers quantized, so a
        quantized model's `.keras` file loads.
        """
        config = super().get_build_config()
        if config is None or not self.built:
            return config
        dtypes = {
            layer.name: keras.dtype_policies.serialize(layer.dtype_policy)
            for layer in self._projection_layers()
            if layer.quantization_mode is not None
            and not isinstance(layer.dtype_policy, keras.dtype_policies.DTypePolicyMap)
        }
        if dtypes:
            config = {**config, "sublayer_dtypes": dtypes}
        return config

    def build_from_config(self, config):
        dtypes = dict((config or {}).get("sublayer_dtypes", {}))
        self._sublayer_dtypes = {
            name: policy
            if isinstance(policy, keras.dtype_policies.DTypePolicy)
            else keras.dtype_policies.deserialize(policy)
            for name, policy in dtypes.items()
        }
        super().build_from_config(config)

    # ----------------------------------------------------------- checks --

    def _check_shapes(self, query_shape, value_shape, key_shape):
        """Raises on inconsistent input shapes; returns their `Layout`."""
        shapes = {
            "query": tuple(query_shape),
            "value": tuple(value_shape),
            "key": tuple(key_shape),
        }
        q, v, k = shapes["query"], shapes["value"], shapes["key"]
        if not _compatible(v[1:-1], k[1:-1]):
            raise ValueError(
                "All dimensions of `value` and `key`, except the last one, "
                f"must be equal. Received: value_shape={v} and key_shape={k}"
            )
        for name, shape in shapes.items():
            if len(shape) < 3:
                raise ValueError(
                    f"Input `{name}` must have rank 3 or more. "
                    f"Received: {name}.shape={shape}"
                )
            if shape[-1] is None:
                raise ValueError(
                    f"The last dimension of `{name}` must be known. "
                    f"Received: {name}.shape={shape}"
                )
        if len(q) != len(v):
            raise ValueError(
                "The ranks of `query` and `value` must be equal. "
                f"Received: query.shape={q}, value.shape={v}"
            )
        batches = {n: s[0] for n, s in shapes.items() if s[0] is not None}
        if len(set(batches.values())) > 1:
            received = ", ".join(f"{n}.shape[0]={b}" for n, b in batches.items())
            raise ValueError(
                "The batch sizes of `query`, `value` and `key` must be equal. "
                f"Received: {received}"
            )
        built = self._layout
        if built is not None and built.rank != len(q):
            raise ValueError(
                f"This layer was built for inputs of rank {built.rank}. "
                f"Received: query.shape={q}"
            )
        layout = built or Layout(len(q), self.attention_axes)
        for axis in layout.batch_like:
            if not _compatible((q[axis],), (v[axis],)):
                raise ValueError(
                    f"Axis {axis} of `query` and `value` (not an attention axis) "
                    f"must be equal. Received: query.shape={q}, value.shape={v}"
                )
        return layout

    def _validate(self, query, value, key, masks):
        layout = self._check_shapes(query.shape, value.shape, key.shape)
        expected = {
            "query_mask": tuple(query.shape[:-1]),
            "value_mask": tuple(value.shape[:-1]),
            "key_mask": tuple(key.shape[:-1]),
        }
        for name, mask in masks.items():
            if mask is None:
                continue
            if name != "attention_mask":
                check_mask_shape(name, tuple(mask.shape), expected[name])
                continue
            scores = layout.scores_shape(query.shape, key.shape, self.num_heads)
            expanded = layout.expanded_mask_shape(mask.shape)
            if expanded is None or not _broadcasts(expanded, scores):
                raise ValueError(
                    "Argument `attention_mask` must broadcast to the attention "
                    f"scores, of shape {scores} (with Keras' axes added before "
                    "the query axes when it has fewer). "
                    f"Received: attention_mask.shape={tuple(mask.shape)}"
                )
        return layout

    # ------------------------------------------------------------- call --

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
        layout = self._validate(query, value, key, masks)
        mask = _merge_scores_masks(layout, **masks)
        gate = None
        if self.use_gate:
            gate = self._project(query, self._gate_dense, self.value_dim, ops.sigmoid)
        q = self._project(query, self._query_dense, self.key_dim)
        k = self._project(key, self._key_dense, self.key_dim)
        v = self._project(value, self._value_dense, self.value_dim)
        if type(self)._compute_attention is MultiHeadAttention._compute_attention:
            output, scores = self._compute_attention(
                q, k, v, mask, training, return_attention_scores, use_causal_mask
            )
        else:
            # Keras' contract with an override: every mask in `attention_mask`,
            # the first six arguments only.
            band = self._band_mask(layout, q, k, use_causal_mask)
            if band is not None:
                mask = merge_masks(mask, layout.scores_mask(band, q, k))
            output, scores = self._compute_attention(
                q, k, v, mask, training, return_attention_scores
            )
        if gate is not None:
            output = ops.multiply(output, gate)
        output = self._project_output(output)
        if return_attention_scores:
            if scores is not None:  # An override may compute none.
                scores = ops.cast(scores, self.compute_dtype)
            return output, scores
        return output

    # ----------------------------------------------- incremental decoding --

    def compute_cache(self, value, key=None):
        """Projected keys and values of `value`, for `cached_call`.

        Cross-attention computes them once from the encoder output; a
        self-attention cache starts as zeros of the same shapes, `S` being the
        longest sequence decoded.

        Args:
            value: `(B, S, dim)` value sequence.
            key: optional `(B, S, dim)` key sequence; defaults to `value`.

        Returns:
            `(keys, values)`: `(B, S, num_heads, key_dim)` and
            `(B, S, num_heads, value_dim)` in the compute dtype.
        """
        self._check_cacheable()
        key = value if key is None else key
        k = self._project(
            ops.cast(key, self.compute_dtype), self._key_dense, self.key_dim
        )
        v = self._project(
            ops.cast(value, self.compute_dtype), self._value_dense, self.value_dim
        )
        return k, v

    def cached_call(
        self,
        query,
        cache,
        value=None,
        key=None,
        cache_update_index=None,
        attention_mask=None,
        return_attention_scores=False,
    ):
        """Attention of `query` to a key/value cache (incremental decoding).

        With `cache_update_index=None` the cache is read as it is (the
        encoder's keys and values, from `compute_cache`). Otherwise the keys
        and values of the new steps (`value`, `key`) are written into the
        cache at `cache_update_index` first, and query step `t` sees the
        cached steps `<= cache_update_index + t` (causal). Step `i` of a
        cached decoding gives the output of `call` on the first `i + 1`
        steps, at a cost proportional to the cache length rather than a
        re-run of the prefix. Inference only (no dropout); rank-3 inputs, no
        sliding window.

        Args:
            query: `(B, T, dim)` new query steps.
            cache: `(keys, values)` of shapes `(B, L, num_heads, key_dim)` and
                `(B, L, num_heads, value_dim)`.
            value: `(B, T, dim)` new value steps (with `cache_update_index`).
            key: optional new key steps; defaults to `value`.
            cache_update_index: `None`, or an int or scalar int tensor, the
                position of the first new step (`index + T <= L`).
            attention_mask: optional boolean mask broadcastable to
                `(B, num_heads, T, L)` (for example the encoder padding), `True`
                where a query may attend.
            return_attention_scores: whether to return the attention weights.

        Returns:
            `(output, cache)`, or `(output, scores, cache)`: the `(B, T, dim)`
            output, the `(B, num_heads, T, L)` float32 weights and the updated
            cache.
        """
        self._check_cacheable()
        query = ops.cast(query, self.compute_dtype)
        cached_k, cached_v = cache
        if cache_update_index is not None:
            if value is None:
                raise ValueError(
                    "Argument `value` (the new steps) is needed with "
                    f"`cache_update_index`. Received: value=None, "
                    f"cache_update_index={cache_update_index}"
                )
            new_k, new_v = self.compute_cache(value, key)
            start = (0, cache_update_index, 0, 0)
            cached_k = ops.slice_update(
                cached_k, start, ops.cast(new_k, cached_k.dtype)
            )
            cached_v = ops.slice_update(
                cached_v, start, ops.cast(new_v, cached_v.dtype)
            )
            steps = ops.arange(ops.shape(query)[1], dtype="int32") + cache_update_index
            positions = ops.arange(ops.shape(cached_k)[1], dtype="int32")
            causal = ops.less_equal(positions[None, :], steps[:, None])
            attention_mask = merge_masks(attention_mask, causal[None, None])
        elif attention_mask is not None and len(attention_mask.shape) == 3:
            attention_mask = attention_mask[:, None]
        q = self._project(query, self._query_dense, self.key_dim)
        output, scores = self._compute_attention(
            q, cached_k, cached_v, attention_mask, False, return_attention_scores
        )
        if self.use_gate:
            gate = self._project(query, self._gate_dense, self.value_dim, ops.sigmoid)
            output = ops.multiply(output, gate)
        output = self._project_output(output)
        if return_attention_scores:
            return output, scores, (cached_k, cached_v)
        return output, (cached_k, cached_v)

    def _check_cacheable(self):
        if not self.built:
            raise ValueError(
                "This `MultiHeadAttention` must be built (called once) before "
                "its cache is used."
            )
        if self._layout is not None and self._layout.rank != 3:
            raise ValueError(
                "A key/value cache needs rank-3 inputs `(B, T, dim)`. This layer "
                f"was built for rank {self._layout.rank}."
            )
        if self.sliding_window is not None:
            raise ValueError(
                "A key/value cache does not support `sliding_window`. "
                f"Received: sliding_window={self.sliding_window}"
            )

    def _project(self, x, dense, head_dim, activation=None):
        """`dense(x)` as `x.shape[:-1] + (num_heads, head_dim)`.

        A plain float sublayer is read as one 2-D matmul, cheaper than its
        einsum in both directions; a quantized or LoRA one is called.
        """
        if _calls_sublayer(dense):
            # A copy carries no Keras mask, which the sublayer would warn of.
            y = dense(ops.copy(x))
        else:
            width = self.num_heads * head_dim
            flat = ops.reshape(x, (-1, x.shape[-1]))
            y = ops.matmul(flat, ops.reshape(dense.kernel, (-1, width)))
            if self.use_bias:
                y = _add_bias(y, ops.reshape(dense.bias, (width,)))
            if activation is not None:
                y = activation(y)
            # Explicit sizes, not -1: a reshape cannot infer one next to a zero.
            y = ops.reshape(y, (*ops.shape(x)[:-1], self.num_heads, head_dim))
        if self.activity_regularizer is not None:
            loss = self.activity_regularizer(y)
            self.add_loss(loss / ops.cast(ops.shape(x)[0], loss.dtype))
        return y

    def _project_output(self, context):
        """Maps `(..., num_heads, value_dim)` to `(...) + output_shape`."""
        dense = self._output_dense
        if _calls_sublayer(dense):
            return dense(ops.copy(context))
        out = dense.kernel.shape[2:]
        width = math.prod(out)
        flat = ops.reshape(context, (-1, self.num_heads * self.value_dim))
        y = ops.matmul(flat, ops.reshape(dense.kernel, (-1, width)))
        if self.use_bias:
            y = _add_bias(y, ops.reshape(dense.bias, (width,)))
        return ops.reshape(y, (*ops.shape(context)[:-2], *out))

    def _band_mask(self, layout, query, key, causal):
        """The causal and sliding-window mask `(1, 1, T', S')`, or `None`."""
        q_len = prod_dims(ops.shape(query)[a] for a in layout.attention)
        k_len = prod_dims(ops.shape(key)[a] for a in layout.attention)
        band = None
        if causal:
            band = causal_mask(q_len, k_len)
        if self.sliding_window is not None:
            rows = ops.expand_dims(ops.arange(q_len, dtype="int32"), -1)
            cols = ops.expand_dims(ops.arange(k_len, dtype="int32"), 0)
            window = ops.less(ops.abs(rows - cols), self.sliding_window)
            band = merge_masks(band, window)
        return None if band is None else band[None, None]

    # -------------------------------------------------------- attention --

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        """Scaled dot-product attention of projected query, key and value.

        As Keras' step of the same name, which a subclass may override.

        Args:
            query: projected query `(B, T, num_heads, key_dim)` (Keras'
                layout for other ranks), not yet scaled.
            key: projected key `(B, S, num_heads, key_dim)`.
            value: projected value `(B, S, num_heads, value_dim)`.
            attention_mask: optional boolean mask broadcastable to the scores
                `(B, num_heads, T, S)`, expanded as Keras does when of lower
                rank.
            training: whether to apply attention dropout.
            return_attention_scores: whether to compute the weights.
            use_causal_mask: whether to add the causal mask. The sliding
                window, if any, is always applied.

        Returns:
            `(output, scores)`: the `(B, T, num_heads, value_dim)` context and
            the attention weights in float32 (`None` unless asked for).
        """
        if self.flash_attention and return_attention_scores:
            raise ValueError(
                "Returning attention scores is not supported when flash "
                "attention is enabled. Please disable flash attention to access"
                " attention scores."
            )
        layout = self._layout or Layout(len(query.shape) - 1, self.attention_axes)
        q, k, v = (layout.sequences(x) for x in (query, key, value))
        mask = None
        if attention_mask is not None:
            mask = layout.sequence_mask(attention_mask, query, key)
        if self.sliding_window is not None:
            mask = merge_masks(mask, self._band_mask(layout, query, key, False))
        explicit = bool(training) and self.dropout > 0.0
        explicit = explicit or self._resolve_implementation() == "explicit"
        if explicit:
            q = ops.multiply(q, ops.cast(self._scale, q.dtype))
            output, scores = self._explicit_attention(
                q, k, v, mask, use_causal_mask, training, return_attention_scores
            )
        else:
            output, scores = self._fused_attention(
                q, k, v, mask, use_causal_mask, return_attention_scores
            )
        output = layout.unsequence(output, query)
        if scores is not None:
            scores = layout.unsequence_scores(scores, query, key)
        return output, scores

    def _softmax_in_compute_dtype(self):
        """Whether the explicit path may run its softmax in bfloat16.

        Only where the backend's bfloat16 softmax equals the float32 one
        rounded to bfloat16 (`_accurate_bfloat16_softmax`), and only when
        `_masked_softmax` is not overridden.
        """
        return (
            self.compute_dtype == "bfloat16"
            and type(self)._masked_softmax is MultiHeadAttention._masked_softmax
            and _accurate_bfloat16_softmax()
        )

    def _resolve_implementation(self):
        if self.flash_attention:
            return "fused"
        if self.implementation != "auto":
            return self.implementation
        return _auto_implementation()

    def _masked_softmax(self, attention_scores, attention_mask=None):
        """Float32 softmax over the keys, masked keys at `-1e30` before it.

        As Keras' step of the same name (used by the explicit path only):
        `attention_mask` broadcasts to `(B, num_heads, T, S)`.
        """
        scores = attention_scores
        if keras.backend.standardize_dtype(scores.dtype) != "float32":
            scores = ops.cast(scores, "float32")
        if attention_mask is not None:
            mask = ops.cast(attention_mask, "bool")
            while len(mask.shape) < len(scores.shape):
                mask = ops.expand_dims(mask, -3)
            # `where`, not adding a `(B, 1, T, S)` bias: TensorFlow's `ops.add`
            # turns that into a `BiasAdd`, which fails when B or T is 0.
            scores = ops.where(mask, scores, _NEG_INF)
        return ops.softmax(scores, axis=-1)

    def _explicit_attention(self, q, k, v, mask, causal, training, return_scores):
        """Attention of `(B, T, H, d)` sequences, by query blocks when long."""
        t_len, s_len = q.shape[1], k.shape[1]
        blocks = None
        if mask is None or None not in mask.shape[1:]:
            half = keras.backend.standardize_dtype(q.dtype) in ("bfloat16", "float16")
            blocks = _query_blocks(t_len, s_len, causal, 2 if half else 1)
        if blocks is None:
            full_mask = _with_causal(mask, q, k, causal)
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
                block_mask = block_mask[None, None]
            if mask is not None:
                block_rows = mask if mask.shape[2] == 1 else mask[:, :, start:stop]
                block_rows = block_rows[:, :, :, :width]
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
        if not return_scores and self._softmax_in_compute_dtype():
            # The same probabilities as the float32 softmax rounded to
            # bfloat16 (see `_accurate_bfloat16_softmax`), without the two
            # float32 copies of the scores.
            if mask is not None:
                while len(mask.shape) < len(logits.shape):
                    mask = ops.expand_dims(mask, -3)
                logits = ops.where(mask, logits, ops.cast(_NEG_INF, logits.dtype))
            probs = ops.softmax(logits, axis=-1)
            weights = None
        else:
            weights = self._masked_softmax(logits, mask)
            probs = ops.cast(weights, self.compute_dtype)
        if training and self.dropout > 0.0:
            probs = self._dropout_layer(probs, training=True)
        context = ops.einsum("bhts,bshd->bthd", probs, v)
        if zero_masked_rows:
            visible = any_key_visible(mask)
            context = ops.multiply(context, _rows_to_context(visible, context.dtype))
            if return_scores:
                weights = ops.multiply(weights, visible)
        return context, weights if return_scores else None

    def _fused_attention(self, q, k, v, mask, causal, return_scores):
        """`keras.ops.dot_product_attention` of unscaled `(B, T, H, d)` inputs."""
        context = ops.dot_product_attention(
            q,
            k,
            v,
            mask=mask,
            scale=self._scale,
            is_causal=causal,
            flash_attention=True if self.flash_attention else None,
        )
        full_mask = _with_causal(mask, q, k, causal)
        if mask is not None:
            # The backends average the values over a fully masked row.
            visible = any_key_visible(full_mask)
            context = ops.multiply(context, _rows_to_context(visible, context.dtype))
        scores = None
        if return_scores:
            logits = ops.einsum("bthd,bshd->bhts", q, k)
            logits = ops.multiply(ops.cast(logits, "float32"), self._scale)
            scores = masked_softmax(logits, full_mask, axis=-1)
        return context, scores

    # ----------------------------------------------------------- shapes --

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        self._check_shapes(query_shape, value_shape, key_shape)
        out = self._output_shape or (query_shape[-1],)
        return (*tuple(query_shape)[:-1], *out)

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
        layout = self._validate(query, value, key, masks)
        shape = self.compute_output_shape(query.shape, value.shape, key.shape)
        output = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        scores_shape = layout.scores_shape(query.shape, key.shape, self.num_heads)
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
            attention_axes=self.attention_axes,
            sliding_window=self.sliding_window,
            flash_attention=self.flash_attention,
            use_gate=self.use_gate,
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


_BFLOAT16_SOFTMAX = {}


def _accurate_bfloat16_softmax():
    """Whether TensorFlow's bfloat16 softmax accumulates in float32.

    With oneDNN (TensorFlow's default on x86 CPUs with AVX-512 or AMX) it
    computes in float32 and rounds once, bit for bit the float32 softmax
    rounded to bfloat16, at half the memory traffic of the casts around a
    float32 one (`benchmarks/attention.py --policy mixed_bfloat16`). Eigen's
    kernel (`TF_ENABLE_ONEDNN_OPTS=0`) computes in bfloat16, with relative
    errors of about 8% rather than 0.4%. The check compares the two on one
    row of 4,096 scores; the other backends
    keep the float32 softmax (XLA fuses its casts). Checked once per process,
    eagerly (a layer of a bfloat16 policy checks when it is created); inside
    a graph, before any eager check, the answer is `False`.
    """
    if keras.backend.backend() != "tensorflow":
        return False
    if "accurate" not in _BFLOAT16_SOFTMAX:
        try:
            scores = ops.cast(ops.sin(ops.arange(4096, dtype="float32")), "bfloat16")
            weights = ops.softmax(scores, axis=-1)
            reference = ops.softmax(ops.cast(scores, "float32"), axis=-1)
            same = ops.all(ops.equal(weights, ops.cast(reference, "bfloat16")))
            accurate = bool(ops.convert_to_numpy(same))
        except Exception:  # noqa: BLE001  (symbolic tensors inside a graph)
            return False
        _BFLOAT16_SOFTMAX["accurate"] = accurate
    return _BFLOAT16_SOFTMAX["accurate"]


def _add_bias(y, bias):
    """`y + bias` whose bias gradient sums in float32.

    Keras' TensorFlow `ops.add(y, bias)` of a vector bias becomes a `BiasAdd`,
    whose gradient kernel sums bfloat16 in bfloat16: over a few thousand rows
    the sum stalls (4,096 ones sum to 512). With the bias first it stays an
    `AddV2`, whose gradient is a `Sum` that accumulates in float32. Float32
    keeps the `BiasAdd`, which oneDNN fuses into the matmul.
    """
    if keras.backend.standardize_dtype(y.dtype) == "float32":
        return ops.add(y, bias)
    return ops.add(bias, y)


def _calls_sublayer(dense):
    """Whether a projection must be computed by calling its sublayer.

    A quantized kernel holds integers and scales, and a LoRA kernel is the
    sum of the frozen kernel and an update: the sublayer knows how to apply
    them. Only a plain float sublayer can be read as a matmul.
    """
    return dense.quantization_mode is not None or bool(
        getattr(dense, "lora_enabled", False)
    )


def _check_size(name, value, allow_none=False):
    """Keras' check (and wording) of `num_heads`, `key_dim` and `value_dim`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        expected = (
            "a positive integer or `None`" if allow_none else "a positive integer"
        )
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected "
            f"{expected}. Received: {name}={value!r}"
        )
    return int(value)


def _normalize_output_shape(output_shape):
    if output_shape is None:
        return None
    dims = (
        (output_shape,) if isinstance(output_shape, numbers.Integral) else output_shape
    )
    try:
        dims = tuple(dims)
    except TypeError:
        dims = ()
    valid = 0 < len(dims) <= 4 and all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0
        for d in dims
    )
    if not valid:
        raise ValueError(
            f"Invalid `output_shape`: {output_shape!r}. When specified, it must "
            "be a positive integer or a tuple of 1 to 4 positive integers. "
            f"Received: output_shape={output_shape!r}"
        )
    return tuple(int(d) for d in dims)


def _normalize_attention_axes(attention_axes):
    """`None` or a tuple of ints (range-checked at build, knowing the rank)."""
    if attention_axes is None:
        return None
    axes = (attention_axes,) if isinstance(attention_axes, numbers.Integral) else None
    if isinstance(attention_axes, (list, tuple)):
        axes = tuple(attention_axes)
    if (
        not axes
        or isinstance(attention_axes, bool)
        or not all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes
        )
    ):
        raise ValueError(
            "`attention_axes` must be an int, list, or tuple of ints. "
            f"Received: attention_axes={attention_axes!r}"
        )
    return tuple(int(a) for a in axes)


def _check_sliding_window(sliding_window):
    if sliding_window is None:
        return None
    if (
        isinstance(sliding_window, bool)
        or not isinstance(sliding_window, numbers.Integral)
        or sliding_window <= 0
    ):
        raise ValueError(
            "`sliding_window` must be `None` or a positive integer. "
            f"Received: sliding_window={sliding_window!r}"
        )
    return int(sliding_window)


def _compatible(shape_a, shape_b):
    """Equal lengths, and equal dimensions where both are known."""
    return len(shape_a) == len(shape_b) and all(
        a is None or b is None or a == b for a, b in zip(shape_a, shape_b, strict=True)
    )


def _broadcasts(shape, target):
    """Whether `shape` (of `target`'s rank) broadcasts to `target`."""
    return len(shape) == len(target) and all(
        m is None or t is None or m == 1 or m == t
        for m, t in zip(shape, target, strict=True)
    )


def _merge_scores_masks(layout, query_mask, value_mask, key_mask, attention_mask):
    """The masks as one boolean mask in the scores layout, or `None`."""
    parts = []
    if query_mask is not None:
        parts.append(layout.query_mask(query_mask))
    for mask in (value_mask, key_mask):
        if mask is not None:
            parts.append(layout.key_mask(mask))
    if attention_mask is not None:
        parts.append(layout.expand_mask(attention_mask))
    return merge_masks(*parts)


def _rows_to_context(visible, dtype):
    """A `(B, H, T, 1)` row factor as one for a `(B, T, H, d)` context."""
    return ops.cast(ops.transpose(visible, (0, 2, 1, 3)), dtype)


def _query_blocks(t_len, s_len, causal, pairs_factor=1):
    """Query blocks `(start, stop)` of the explicit path, or `None` for one.

    Without a causal mask, from `BLOCKED_PAIRS * pairs_factor` query-key pairs
    on (factor 2 for 16-bit scores, whose temporaries take half the memory:
    unblocked, 2,048 tokens in bfloat16 train 1.2x faster).
    """
    if t_len is None or s_len is None or t_len < 2 * QUERY_BLOCK_MIN:
        return None
    if not causal and t_len * s_len < BLOCKED_PAIRS * pairs_factor:
        return None
    count = min(QUERY_BLOCKS, t_len // QUERY_BLOCK_MIN)
    bounds = [round(i * t_len / count) for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _with_causal(mask, q, k, causal):
    """Adds the causal mask to a `(B, H, T, S)` mask of `(B, T, H, d)` inputs."""
    if not causal:
        return mask
    causal = causal_mask(ops.shape(q)[1], ops.shape(k)[1])[None, None]
    return causal if mask is None else ops.logical_and(mask, causal)
