"""JANET: the LSTM cell with only a forget gate, for `keras.layers.RNN`."""

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


def _check_t_max(t_max):
    if isinstance(t_max, bool) or not isinstance(t_max, int) or t_max < 2:
        raise ValueError(
            f"Argument `t_max` must be an integer >= 2. Received: t_max={t_max!r}"
        )
    return int(t_max)


@keras.saving.register_keras_serializable(package="attention_zoo")
class JANETCell(keras.layers.Layer, DropoutRNNCell):
    """The JANET cell: an LSTM with only a forget gate and chrono initialisation.

    From "The unreasonable effectiveness of the forget gate" (van der
    Westhuizen and Lasenby, 2018, https://arxiv.org/abs/1804.04849). With the
    previous state `h` (the cell state: `h = c`):

        s  = W_f x + U_f h + b_f
        c~ = activation(W_c x + U_c h + b_c)
        c  = sigmoid(s) * h + (1 - sigmoid(s - beta)) * c~
        h' = c

    The input gate is tied to the forget gate, shifted by `beta` so that a
    little new information still enters when the forget gate is saturated
    open (`1 - sigmoid(s - beta) = sigmoid(beta - s)`). The forget bias `b_f`
    has the chrono initialisation of Tallec and Ollivier (2018) the paper
    uses: `b_f = log(u)`, `u ~ Uniform(1, t_max - 1)` per unit, so the units'
    characteristic forgetting times spread over `[1, t_max]` steps; `b_c` uses
    `bias_initializer` (zeros, as in the paper).

    A cell processes one step; wrap it in `keras.layers.RNN` (which handles
    masks, `return_sequences`, `go_backwards`) and, for example,
    `keras.layers.Bidirectional`. Masked steps keep the previous state.

    The weights are `kernel` `(d, 2 * units)` (`[W_f, W_c]`),
    `recurrent_kernel` `(units, 2 * units)` (`[U_f, U_c]`) and `bias`
    `(2 * units,)` (`[b_f, b_c]`), the layout of `keras.layers.LSTMCell`.

    Args:
        units: positive int, size of the state and output.
        activation: activation of the candidate `c~` (`tanh` in the paper).
        beta: float, the shift `beta` of the input gate (1 in the paper).
        t_max: int >= 2, the longest dependency (in steps) the chrono
            initialisation of `b_f` is made for. The paper's code sets it to
            the length of the longest training sequence; the default, 100,
            suits texts of about 100 tokens: set it to your sequence length.
        kernel_initializer: initializer of `kernel`.
        recurrent_initializer: initializer of `recurrent_kernel`.
        bias_initializer: initializer of the candidate bias `b_c` (the forget
            bias `b_f` is always chrono-initialised).
        kernel_regularizer: regularizer of `kernel`.
        recurrent_regularizer: regularizer of `recurrent_kernel`.
        bias_regularizer: regularizer of `bias`.
        kernel_constraint: constraint of `kernel`.
        recurrent_constraint: constraint of `recurrent_kernel`.
        bias_constraint: constraint of `bias`.
        dropout: float in [0, 1), dropout rate of the inputs `x` (one mask per
            sequence, shared by the gate and the candidate).
        recurrent_dropout: float in [0, 1), dropout rate of the state `h`
            where it enters `U_f h` and `U_c h` (one mask per sequence; the
            carried `sigmoid(s) * h` is never dropped).
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

    >>> cell = JANETCell(8, t_max=20)
    >>> outputs = keras.layers.RNN(cell)(np.ones((2, 20, 3)))
    >>> tuple(outputs.shape)
    (2, 8)
    """

    def __init__(
        self,
        units,
        activation="tanh",
        beta=1.0,
        t_max=100,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
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
        self.beta = check_float("beta", beta, low=-float("inf"))
        self.t_max = _check_t_max(t_max)
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

    def _chrono_bias(self, shape, dtype=None):
        """`[b_f, b_c]`: `b_f = log(Uniform(1, t_max - 1))`, `b_c` as configured."""
        uniform = keras.initializers.RandomUniform(1.0, self.t_max - 1.0)
        forget = ops.log(uniform((self.units,), dtype=dtype))
        candidate = self.bias_initializer((self.units,), dtype=dtype)
        return ops.concatenate([forget, ops.cast(candidate, forget.dtype)])

    def build(self, input_shape):
        check_rank("inputs", input_shape, 2)
        dim = check_last_dim("inputs", input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(dim, 2 * self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.units, 2 * self.units),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = self.add_weight(
            name="bias",
            shape=(2 * self.units,),
            initializer=self._chrono_bias,
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
        recurrent = previous
        if training and recurrent_mask is not None:
            recurrent = previous * recurrent_mask
        z = (
            ops.matmul(inputs, self.kernel)
            + ops.matmul(recurrent, self.recurrent_kernel)
            + self.bias
        )
        gate, candidate = ops.split(z, 2, axis=-1)
        state = ops.sigmoid(gate) * previous + ops.sigmoid(
            self.beta - gate
        ) * self.activation(candidate)
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
                "beta": self.beta,
                "t_max": self.t_max,
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
