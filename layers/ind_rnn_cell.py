"""IndRNN: a recurrent cell whose units each have one recurrent weight."""

import keras
from keras import ops

from layers._rnn import DropoutRNNCell
from layers.validation import (
    check_float,
    check_int,
    check_last_dim,
    check_positive_int,
    check_rank,
    check_rate,
)


@keras.saving.register_keras_serializable(package="attention_zoo")
class IndRNNCell(keras.layers.Layer, DropoutRNNCell):
    """The IndRNN cell: `h' = activation(W x + u * h + b)` with a vector `u`.

    From "Independently Recurrent Neural Network (IndRNN): Building A Longer
    and Deeper RNN" (Li et al., CVPR 2018, https://arxiv.org/abs/1803.04831).
    Each unit sees only its own previous value, through its own recurrent
    weight `u_n` (element-wise product, not a matrix), so over `T` steps the
    gradient of a ReLU unit scales like `u_n ** T` on its active path.

    The paper keeps that gradient bounded by constraining
    `|u_n| <= gamma ** (1 / T)`; with `gamma = 2` (the value its experiments'
    code uses, `2 ** (1 / T)` for ReLU) a gradient grows at most 2x over `T`
    steps. `recurrent_max_abs` defaults to `2 ** (1 / 100)`, the bound for
    `T = 100` steps; pass `recurrent_max_abs=2 ** (1 / T)` for sequences of
    length `T`. For layers that must remember over the whole sequence (the
    paper's last layer), it also keeps `|u_n| >= (1 / 2) ** (1 / T)` (a
    signal decays at most 2x over `T` steps): pass that as
    `recurrent_min_abs` (default 0, no lower bound). The bounds are applied
    as the paper's code does, by clipping `|u|` (sign kept; 0 counts as
    positive) after every optimizer update, through the weight's constraint,
    and to the initial values. By default `u` is initialised uniformly in
    `[recurrent_min_abs, recurrent_max_abs]` (positive, as in the reference
    implementations).

    A cell processes one step; wrap it in `keras.layers.RNN` (which handles
    masks, `return_sequences`, `go_backwards`) and, for example,
    `keras.layers.Bidirectional`. Masked steps keep the previous state.

    Args:
        units: positive int, size of the state and output.
        activation: activation (ReLU in the paper; the bound above is the
            paper's bound for ReLU).
        use_bias: whether there is the bias `b`.
        recurrent_min_abs: float >= 0, the lower bound of `|u|`.
        recurrent_max_abs: positive float or `None` (no upper bound), the
            upper bound of `|u|`; at least `recurrent_min_abs`.
        kernel_initializer: initializer of `kernel` (`W`, `(d, units)`).
        recurrent_initializer: initializer of `recurrent_kernel` (`u`,
            `(units,)`), or `None` for uniform in the bounds (in
            `[recurrent_min_abs, max(1, recurrent_min_abs)]` without an upper
            bound).
        bias_initializer: initializer of `bias` (`b`, `(units,)`).
        kernel_regularizer: regularizer of `kernel`.
        recurrent_regularizer: regularizer of `recurrent_kernel`.
        bias_regularizer: regularizer of `bias`.
        kernel_constraint: constraint of `kernel`.
        recurrent_constraint: constraint of `recurrent_kernel`, applied
            before the bounds.
        bias_constraint: constraint of `bias`.
        dropout: float in [0, 1), dropout rate of the inputs `x` (one mask per
            sequence).
        recurrent_dropout: float in [0, 1), dropout rate of the state `h`
            where it enters `u * h` (one mask per sequence).
        seed: optional int, seed of the dropout.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, d)` tensor, one step.
        states: the previous state, `(B, units)` or a list holding it.
        training: whether dropout is active.

    Returns:
        The tuple `(h', new_states)`: the `(B, units)` new state in the
        compute dtype (also the output), and `new_states` the same tensor,
        in a list when `states` is one.

    Example:

    >>> cell = IndRNNCell(8, recurrent_max_abs=2 ** (1 / 20))
    >>> outputs = keras.layers.RNN(cell)(np.ones((2, 20, 3)))
    >>> tuple(outputs.shape)
    (2, 8)
    """

    def __init__(
        self,
        units,
        activation="relu",
        use_bias=True,
        recurrent_min_abs=0.0,
        recurrent_max_abs=2.0 ** (1 / 100),
        kernel_initializer="glorot_uniform",
        recurrent_initializer=None,
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.recurrent_max_abs = check_float(
            "recurrent_max_abs", recurrent_max_abs, allow_none=True
        )
        self.recurrent_min_abs = check_float(
            "recurrent_min_abs",
            recurrent_min_abs,
            high=float("inf") if recurrent_max_abs is None else recurrent_max_abs,
            low_open=False,
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = None if seed is None else check_int("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed=self.seed)
        self.state_size = self.units
        self.output_size = self.units

    def _bound(self, u):
        """`u` after `recurrent_constraint`, with `|u|` clipped to the bounds."""
        if self.recurrent_constraint is not None:
            u = self.recurrent_constraint(u)
        magnitude = ops.maximum(ops.abs(u), self.recurrent_min_abs)
        if self.recurrent_max_abs is not None:
            magnitude = ops.minimum(magnitude, self.recurrent_max_abs)
        return ops.where(u < 0, -magnitude, magnitude)

    def _recurrent_init(self, shape, dtype=None):
        initializer = self.recurrent_initializer
        if initializer is None:
            high = self.recurrent_max_abs
            if high is None:
                high = max(1.0, self.recurrent_min_abs)
            initializer = keras.initializers.RandomUniform(self.recurrent_min_abs, high)
        return self._bound(initializer(shape, dtype=dtype))

    def build(self, input_shape):
        check_rank("inputs", input_shape, 2)
        dim = check_last_dim("inputs", input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.units,),
            initializer=self._recurrent_init,
            regularizer=self.recurrent_regularizer,
            constraint=self._bound,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    def call(self, inputs, states, training=False):
        nested = isinstance(states, (list, tuple))
        previous = states[0] if nested else states
        dropout_mask = self.get_dropout_mask(inputs)
        recurrent_mask = self.get_recurrent_dropout_mask(previous)
        if training and dropout_mask is not None:
            inputs = inputs * dropout_mask
        if training and recurrent_mask is not None:
            previous = previous * recurrent_mask
        z = ops.matmul(inputs, self.kernel) + previous * self.recurrent_kernel
        if self.bias is not None:
            z = z + self.bias
        state = self.activation(z)
        return state, [state] if nested else state

    def get_initial_state(self, batch_size=None):
        """The zero state, `[(batch_size, units)]` in the compute dtype."""
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "recurrent_min_abs": self.recurrent_min_abs,
                "recurrent_max_abs": self.recurrent_max_abs,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "recurrent_initializer": keras.initializers.serialize(
                    self.recurrent_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
                "recurrent_regularizer": keras.regularizers.serialize(
                    self.recurrent_regularizer
                ),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(
                    self.kernel_constraint
                ),
                "recurrent_constraint": keras.constraints.serialize(
                    self.recurrent_constraint
                ),
                "bias_constraint": keras.constraints.serialize(self.bias_constraint),
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed,
            }
        )
        return config
