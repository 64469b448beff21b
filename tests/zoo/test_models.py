"""Sweep over every registered model: build, forward, train, save and reload.

A newly registered model is covered here without new test code.
"""

import os

import keras
import numpy as np
import pytest

import zoo
from layers._transformer import TransformerBlock
from tests.sweeps import smallest_per_family, sweep_params
from zoo.attention_maps import attention_maps, find_attention_layer
from zoo.detection.losses import centernet_losses

# A shape that no variant uses by default: non-square, 3 channels; every patch
# size in the zoo (4, 7) divides it.
OTHER_SHAPE = (56, 28, 3)
OTHER_CLASSES = 7


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")


def _image_inputs(model, n, seed):
    return _images(tuple(model.inputs[0].shape[1:]), n, seed)


def _token_inputs(model, n, seed, length=12):
    """Token ids in [2, vocabulary), rows of lengths 3..length padded with 0."""
    rng = np.random.default_rng(seed)
    embedding = model.get_layer("embedding")
    vocabulary = getattr(embedding, "vocabulary_size", None) or embedding.input_dim
    tokens = rng.integers(2, vocabulary, (n, length)).astype("int32")
    for row, size in zip(tokens, rng.integers(3, length + 1, n), strict=True):
        row[size:] = 0
    return tokens


def _seq2seq_inputs(model, n, seed):
    """Source and decoder-input ids, rows padded with 0 (sources 3..9 long)."""
    rng = np.random.default_rng(seed)
    source = model.get_layer("source_embedding")
    target = model.get_layer("target_embedding")
    sizes = [
        getattr(x, "vocabulary_size", None) or x.input_dim for x in (source, target)
    ]
    tokens = {}
    for key, size, length in zip(("source", "target"), sizes, (9, 7), strict=True):
        ids = rng.integers(4, size, (n, length)).astype("int32")
        for row, end in zip(ids, rng.integers(3, length + 1, n), strict=True):
            row[end:] = 0
        tokens[key] = ids
    tokens["target"][:, 0] = 2
    return tokens


def _pixel_inputs(model, n, seed):
    """Images of pixels in [0, 255], the detectors' input range."""
    return 255.0 * _image_inputs(model, n, seed)


def _observation_inputs(model, n, seed):
    """Observation windows, row `i` starting with `i % window` zero (padding) rows."""
    from zoo.export.policy import example_windows

    return example_windows(tuple(model.inputs[0].shape[1:]), n, seed)


def _class_labels(model, x, n):
    return np.arange(n) % model.outputs[0].shape[-1]


def _policy_targets(model, x, n):
    """Actions for the logits and value targets for the value head."""
    num_actions = model.get_layer("logits").units
    returns = np.linspace(-1.0, 2.0, n).astype("float32")
    return {"logits": np.arange(n) % num_actions, "value": returns}


def _detection_targets(model, x, n):
    """CenterNet targets of one box per image, class `i % num_classes`."""
    from zoo.detection.targets import centernet_targets

    _, height, width, num_classes = model.output["heatmap"].shape
    boxes = np.array([[0.1, 0.2, 0.6, 0.9], [0.3, 0.05, 0.95, 0.5]], "float32")
    targets = [
        centernet_targets(
            boxes[i % 2][None], [i % num_classes], (height, width), num_classes
        )
        for i in range(n)
    ]
    return {k: np.stack([np.asarray(t[k]) for t in targets]) for k in targets[0]}


def _token_labels(model, x, n):
    """Next-token labels: random target ids where the decoder input is real."""
    rng = np.random.default_rng(1)
    labels = rng.integers(3, model.outputs[0].shape[-1], x["target"].shape)
    return np.where(x["target"] > 0, labels, 0).astype("int32")


_SEQ2SEQ_OTHER = dict(
    source_vocabulary_size=60, target_vocabulary_size=OTHER_CLASSES + 4
)
# Valid inputs of each task's models, their labels, input names, and the build
# overrides of another configuration (whose last output axis is
# OTHER_CLASSES + OTHER_EXTRA[task] wide): a registered model of a task
# missing here fails the sweep (see test_every_task_has_sample_inputs).
SAMPLE_INPUTS = {
    "image_classification": _image_inputs,
    "text_classification": _token_inputs,
    "translation": _seq2seq_inputs,
    "headline_generation": _seq2seq_inputs,
    "reinforcement_learning": _observation_inputs,
    "object_detection": _pixel_inputs,
}
LABELS = {
    "image_classification": _class_labels,
    "text_classification": _class_labels,
    "translation": _token_labels,
    "headline_generation": _token_labels,
    "reinforcement_learning": _policy_targets,
    "object_detection": _detection_targets,
}
INPUT_NAMES = {
    "image_classification": ("image",),
    "text_classification": ("tokens",),
    "translation": ("source", "target"),
    "headline_generation": ("source", "target"),
    "reinforcement_learning": ("observations",),
    "object_detection": ("image",),
}
OTHER_CONFIG = {
    "image_classification": dict(input_shape=OTHER_SHAPE, num_classes=OTHER_CLASSES),
    "text_classification": dict(vocabulary_size=50, num_classes=OTHER_CLASSES),
    "translation": _SEQ2SEQ_OTHER,
    "headline_generation": _SEQ2SEQ_OTHER,
    "reinforcement_learning": dict(
        observation_size=3, window=5, num_actions=OTHER_CLASSES
    ),
    # Non-square, a multiple of every detector's largest stride (32).
    "object_detection": dict(input_shape=(96, 64, 3), num_classes=OTHER_CLASSES),
}
OTHER_EXTRA = {"translation": 4, "headline_generation": 4}
# The builder argument that sets the width of a task's logits (default
# `num_classes`; seq2seq models: one distribution per target step).
LOGITS_WIDTH = {
    "translation": "target_vocabulary_size",
    "headline_generation": "target_vocabulary_size",
    "reinforcement_learning": "num_actions",
}
# The output (and the layer that makes it) holding the logits of a task's
# dict outputs, where it is not "logits": a detector's class heatmap.
LOGITS_OUTPUT = {"object_detection": "heatmap"}
# Tasks whose models output a dict (the logits under `LOGITS_OUTPUT`, default
# "logits") and the compile loss of each output; the others output logits
# alone.
_SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
DICT_OUTPUT_LOSSES = {
    "reinforcement_learning": {
        "logits": _SPARSE_CE,
        "value": keras.losses.MeanSquaredError(),
    },
    "object_detection": centernet_losses()["loss"],
}
# Weights whose gradient is zero by construction, as substrings of their paths:
# dot-product attention's softmax is invariant to a constant added to every
# score of a query, which is what the key bias adds (q . b_k).
ZERO_GRADIENT_WEIGHTS = ("self_attention/key/bias",)


def _loss(task):
    return DICT_OUTPUT_LOSSES.get(task, _SPARSE_CE)


def _numpy(outputs):
    """Outputs as NumPy: an array, or a dict of arrays."""
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def _logits(outputs, task):
    if isinstance(outputs, dict):
        return outputs[LOGITS_OUTPUT.get(task, "logits")]
    return outputs


def _assert_outputs(assert_fn, got, expected, **kwargs):
    """`assert_fn` on each output (one array or a dict of them)."""
    got, expected = _numpy(got), _numpy(expected)
    if isinstance(expected, dict):
        assert sorted(got) == sorted(expected)
        for key in expected:
            assert_fn(got[key], expected[key], err_msg=key, **kwargs)
    else:
        assert_fn(got, expected, **kwargs)


def _output_layers(model):
    """Names of the layers that produce the model's outputs."""
    return [t._keras_history.operation.name for t in keras.tree.flatten(model.outputs)]


def _image_models():
    return zoo.list_models(task="image_classification")


def _inputs(model, name, n=2, seed=0):
    return SAMPLE_INPUTS[zoo.get_model_spec(name).task](model, n, seed)


def _perturb(model, seed=0):
    """Scales every float weight by 0.9-1.1 and moves the zeros a little.

    Zero-initialised scales (SelfAttention2D's `gamma`) and biases then
    differ from 0, as after some training, so outputs and gradients do not
    vanish by construction.
    """
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = keras.ops.convert_to_numpy(w)
        if np.issubdtype(value.dtype, np.floating):
            scale = rng.uniform(0.9, 1.1, value.shape)
            shift = rng.uniform(-0.01, 0.01, value.shape) * (value == 0)
            w.assign((value * scale + shift).astype(value.dtype))


def test_every_task_has_sample_inputs():
    tables = (SAMPLE_INPUTS, LABELS, INPUT_NAMES, OTHER_CONFIG)
    missing = {
        name: zoo.get_model_spec(name).task
        for name in zoo.list_models()
        if any(zoo.get_model_spec(name).task not in table for table in tables)
    }
    assert not missing, f"no sample inputs for the tasks of {missing}"


@pytest.mark.parametrize("name", sweep_params(zoo.list_models()))
def test_default_build_and_forward(name):
    spec = zoo.get_model_spec(name)
    model = zoo.build_model(name)
    assert sorted(t.name for t in model.inputs) == sorted(INPUT_NAMES[spec.task])
    assert LOGITS_OUTPUT.get(spec.task, "logits") in _output_layers(model)
    x = _inputs(model, name)
    outputs = _numpy(model(x, training=False))
    logits = _logits(outputs, spec.task)
    width = spec.config[LOGITS_WIDTH.get(spec.task, "num_classes")]
    if isinstance(x, dict):  # one distribution over the target vocabulary per step
        expected = (*x["target"].shape, width)
    elif logits.ndim == 4:  # a detector's heatmap: one cell per 4x4 pixels
        expected = (2, x.shape[1] // 4, x.shape[2] // 4, width)
    else:
        expected = (2, width)
    assert logits.shape == expected
    for output in keras.tree.flatten(outputs):
        assert output.dtype == np.float32
        assert output.shape[0] == 2
        assert np.all(np.isfinite(output))


@pytest.mark.parametrize("name", sweep_params(zoo.list_models()))
def test_inference_is_deterministic(name, tmp_path):
    """`model(x)` is the same on every call, equals `predict` and survives a reload."""
    model = zoo.build_model(name)
    _perturb(model)
    x = _inputs(model, name, n=3)
    first = _numpy(model(x))
    same = np.testing.assert_array_equal
    _assert_outputs(same, model(x), first)
    _assert_outputs(
        np.testing.assert_allclose, model.predict(x, verbose=0), first, atol=1e-6
    )
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    _assert_outputs(same, reloaded(x), first)
    _assert_outputs(same, reloaded(x), first)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="gradients through tf.GradientTape"
)
@pytest.mark.parametrize("name", sweep_params(zoo.list_models()))
def test_every_trainable_weight_gets_a_gradient(name):
    import tensorflow as tf

    task = zoo.get_model_spec(name).task
    model = zoo.build_model(name, **OTHER_CONFIG[task])
    _perturb(model)
    # Several images, so that each ReLU of the small channel gates is on for
    # at least one of them.
    x = _inputs(model, name, n=8)
    y = LABELS[task](model, x, 8)
    model.compile(loss=_loss(task))
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
    weights = model.trainable_weights
    gradients = tape.gradient(loss, [w.value for w in weights])
    zero, exempt = [], []
    for weight, gradient in zip(weights, gradients, strict=True):
        size = 0.0 if gradient is None else float(tf.reduce_max(tf.abs(gradient)))
        expected_zero = any(p in weight.path for p in ZERO_GRADIENT_WEIGHTS)
        if expected_zero:
            exempt.append(weight.path)
            assert size < 1e-6, f"{weight.path} is exempt but has a gradient"
        elif size == 0.0:
            zero.append(weight.path)
    assert not zero, f"no gradient for {zero}"
    if any(isinstance(layer, TransformerBlock) for layer in model.layers):
        assert exempt, "the exemption matched no weight"


@pytest.mark.parametrize("name", sweep_params(zoo.list_models()))
def test_other_config_trains_and_round_trips(name, tmp_path):
    task = zoo.get_model_spec(name).task
    model = zoo.build_model(name, **OTHER_CONFIG[task])
    x = _inputs(model, name, n=4)
    y = LABELS[task](model, x, 4)

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=_loss(task), jit_compile=False
    )
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)  # with several outputs, one per loss too
    assert np.all(np.isfinite(loss))
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))

    expected = _numpy(model(x, training=False))
    assert _logits(expected, task).shape[-1] == OTHER_CLASSES + OTHER_EXTRA.get(task, 0)
    assert all(np.all(np.isfinite(e)) for e in keras.tree.flatten(expected))
    path = os.path.join(tmp_path, f"{name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    _assert_outputs(
        np.testing.assert_allclose,
        reloaded(x, training=False),
        expected,
        rtol=1e-6,
        atol=1e-6,
    )


@pytest.mark.parametrize("name", sweep_params(zoo.list_models()))
def test_mixed_precision_logits_are_float32(name):
    keras.config.set_dtype_policy("mixed_bfloat16")
    task = zoo.get_model_spec(name).task
    model = zoo.build_model(name)
    outputs = model(_inputs(model, name), training=False)
    for output in keras.tree.flatten(outputs):
        assert keras.backend.standardize_dtype(output.dtype) == "float32"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(output)))
    logits_layer = model.get_layer(LOGITS_OUTPUT.get(task, "logits"))
    assert logits_layer.compute_dtype == "float32"


@pytest.mark.parametrize("name", _image_models())
def test_attention_maps(name):
    model = zoo.build_model(name, input_shape=OTHER_SHAPE)
    images = _images(OTHER_SHAPE, n=3)
    maps = attention_maps(model, images)
    assert maps.ndim == 3 and maps.shape[0] == 3
    assert maps.dtype == np.float32
    assert np.all(np.isfinite(maps)) and np.all(maps >= 0)
    # The grid follows the tall image.
    assert maps.shape[1] > maps.shape[2]
    kind = type(find_attention_layer(model)).__name__
    if kind == "ConvolutionalAttentionModule":
        assert np.all(maps <= 1)
    else:
        np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-4)
    resized = attention_maps(model, images, size=(14, 7))
    assert resized.shape == (3, 14, 7)


def test_attention_maps_need_an_attention_layer():
    inputs = keras.Input((4, 4, 1), name="image")
    model = keras.Model(inputs, keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="_attention"):
        attention_maps(model, _images((4, 4, 1)))


@pytest.mark.parametrize(
    "name, overrides, argument",
    [
        ("cbam_cnn_tiny", dict(num_classes=0), "num_classes"),
        ("cbam_cnn_tiny", dict(input_shape=(28, 28)), "input_shape"),
        ("cbam_cnn_tiny", dict(dropout=1.5), "dropout"),
        ("cbam_cnn_tiny", dict(widths=()), "widths"),
        ("attention_cnn_tiny", dict(hidden_dim=-1), "hidden_dim"),
        ("vit_small", dict(input_shape=(30, 30, 1)), "patch_size"),
        ("vit_small", dict(num_heads=5), "num_heads"),
        ("transformer_classifier_tiny", dict(bigram_buckets=-1), "bigram_buckets"),
        ("transformer_classifier_tiny", dict(bigram_buckets=2**20), "bigram_buckets"),
    ],
)
def test_bad_builder_arguments_are_named(name, overrides, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        zoo.build_model(name, **overrides)


@pytest.mark.parametrize(
    "name, overrides",
    [(name, {}) for name in zoo.list_models(task="text_classification")]
    # Hashed bigrams pair the last token with the padding after it.
    + [("transformer_classifier_tiny", {"bigram_buckets": 1024})],
)
def test_padding_never_changes_a_prediction(name, overrides):
    model = zoo.build_model(name, **overrides)
    _perturb(model)
    sentence = _token_inputs(model, 1, seed=1, length=7)[0]
    sentence[sentence == 0] = 5
    alone = keras.ops.convert_to_numpy(model(sentence[None]))[0]
    others = _token_inputs(model, 3, seed=2, length=20)
    for padding in (0, 1, 6, 13):
        row = np.concatenate([sentence, np.zeros(padding, "int32")])
        width = max(len(row), others.shape[1])
        batch = np.zeros((4, width), "int32")
        batch[0, : len(row)] = row
        batch[1:, : others.shape[1]] = others
        out = keras.ops.convert_to_numpy(model(batch))[0]
        np.testing.assert_allclose(out, alone, atol=2e-5, err_msg=f"padding {padding}")


# int8 quantization (Keras's `model.quantize`): largest logit difference over
# the largest logit, with per-channel int8 weights and inputs quantized on the
# fly. Measured 0.7-1.5% on these models; a layer that reads quantized
# kernels as floats is off by orders of magnitude.
QUANTIZED_RELATIVE_ERROR = 0.05


CLASSIFIERS = (
    "image_classification",
    "text_classification",
    "reinforcement_learning",
)


def slow(name):
    return pytest.param(name, marks=pytest.mark.slow)


@pytest.mark.parametrize(
    "name",
    [
        # The smallest variant of each family stays in the default run; the
        # others repeat the same layers at more cost.
        n if n in smallest_per_family(zoo.list_models(), CLASSIFIERS) else slow(n)
        for n in zoo.list_models()
    ],
)
def test_int8_quantization_stays_close_to_the_float_model(name, tmp_path):
    from zoo.export.quantization import quantized_copy

    keras.utils.set_random_seed(0)
    model = zoo.build_model(name)
    _perturb(model)
    x = _inputs(model, name, n=4)
    expected = _numpy(model(x))
    quantized = quantized_copy(model, "int8")
    assert any(v.dtype == "int8" for v in quantized.weights)
    assert all(v.dtype != "int8" for v in model.weights), "the model is kept"
    got = _numpy(quantized(x))
    for g, e in zip(keras.tree.flatten(got), keras.tree.flatten(expected), strict=True):
        error = np.max(np.abs(g - e)) / np.max(np.abs(e))
        assert error <= QUANTIZED_RELATIVE_ERROR, error
    # A quantized model saves and loads (layers that build sublayers in
    # `build` record which are quantized: layers/_quantized_sublayers.py).
    quantized.save(tmp_path / "int8.keras")
    loaded = keras.saving.load_model(tmp_path / "int8.keras", safe_mode=True)
    assert sum(v.dtype == "int8" for v in loaded.weights) == sum(
        v.dtype == "int8" for v in quantized.weights
    )
    _assert_outputs(np.testing.assert_allclose, loaded(x), got, atol=1e-6)
