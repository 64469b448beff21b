"""A named SavedModel signature together with the requests that exercise it."""

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class ServingSignature:
    """One SavedModel signature, a valid request for it and its expected answer.

    Task signature builders return these; `export_model` saves `function`
    under `name`, and the tests and benchmarks call `make_example`,
    `reference` and `bad_requests` without knowing the task.

    Args:
        name: the signature key, e.g. `"serving_default"`.
        function: a `tf.function` with a complete `input_signature`; its
            argument names are the signature's input names and the keys of the
            dict it returns are the output names.
        make_example: `make_example(batch_size, seed)` returns a valid request
            as a dict of NumPy arrays keyed by input name.
        reference: `reference(inputs)` returns the Keras model's answer to the
            request `inputs` as a dict of NumPy arrays keyed by output name.
        atol: tolerance (absolute and relative) of a float comparison with
            `reference`.
        bad_requests: tuple of `(description, inputs, error_pattern)`: requests
            that must raise an error whose message matches the regex
            `error_pattern`.
        jit_compile: whether the model runs in an XLA-compiled function.
        resources: TensorFlow resources the function uses besides the
            model's variables (a vocabulary's lookup table), which the
            SavedModel must hold.
    """

    name: str
    function: Callable
    make_example: Callable
    reference: Callable
    atol: float = 1e-5
    bad_requests: tuple = ()
    jit_compile: bool = False
    resources: tuple = ()
