"""Models exported once per session, and their run in a TensorFlow-only process."""

import os
import pickle
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.sweeps import slow_in_sweeps, smallest_per_family, sweep_params
from zoo.export import SIGNATURE_BUILDERS, export_model
from zoo.export.inspection import op_names

RUNNER = os.path.join(os.path.dirname(__file__), "tf_only_runner.py")
BATCH_SIZE = 3

if keras.backend.backend() != "tensorflow":
    collect_ignore_glob = ["test_*.py"]


def toy_classifier(input_shape=(12, 16, 3), num_classes=5, name="toy_rgb"):
    """A small non-square RGB classifier with the zoo's contract."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # Enough weight bytes (~270 KB) that the file-size bound is meaningful.
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dropout(0.1)(x)
    outputs = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def perturb(model, seed=0):
    """Moves every float weight a little, so BN statistics are not 0 and 1."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = keras.ops.convert_to_numpy(w)
        if np.issubdtype(value.dtype, np.floating):
            scale = rng.uniform(0.9, 1.1, value.shape)
            shift = rng.uniform(-0.01, 0.01, value.shape)
            w.assign((value * scale + shift).astype(value.dtype))


def models_without_signatures(builders=None):
    """Registered name -> task, for the names whose task has no builder.

    Args:
        builders: the task -> signature builder table (default
            `SIGNATURE_BUILDERS`).
    """
    from zoo import get_model_spec, list_models

    builders = SIGNATURE_BUILDERS if builders is None else builders
    tasks = {name: get_model_spec(name).task for name in list_models()}
    return {name: task for name, task in tasks.items() if task not in builders}


TEXTS = ["a gripping , funny film", "the plot is dull", "funny and warm", "dull"]


def text_model(name, max_length=16):
    """`TextClassifier` of registered text model `name` with a tiny vocabulary."""
    import tensorflow as tf

    from zoo import build_model
    from zoo.text_classifier import TextClassifier

    vectorizer = keras.layers.TextVectorization(max_tokens=40, name="vectorizer")
    vectorizer.adapt(tf.constant(TEXTS))
    classifier = build_model(
        name,
        vocabulary_size=vectorizer.vocabulary_size(),
        num_classes=3,
        name=f"{name}_tokens",
    )
    labels = ["negative", "neutral", "positive"]
    return TextClassifier(classifier, vectorizer, labels, max_length, name=name)


SOURCES = ["i am cold .", "are you happy ?", "the cat is here .", "go !"]
TARGETS = ["j'ai froid .", "es-tu heureux ?", "le chat est là .", "va !"]


def translator_model(name):
    """`Translator` of registered seq2seq model `name` with tiny vocabularies."""
    import tensorflow as tf

    from zoo import build_model, get_model_spec
    from zoo.seq2seq.text import build_vocabulary
    from zoo.seq2seq.translator import Translator

    source = build_vocabulary(tf.data.Dataset.from_tensor_slices(SOURCES), 30, True)
    target = build_vocabulary(tf.data.Dataset.from_tensor_slices(TARGETS), 30, False)
    spec = get_model_spec(name)
    seq2seq = build_model(
        name,
        source_vocabulary_size=source.vocabulary_size(),
        target_vocabulary_size=target.vocabulary_size(),
        max_source_length=8,
        max_target_length=6,
        name=f"{name}_tokens",
    )
    return Translator(
        seq2seq,
        source,
        target,
        max_source_length=8,
        max_target_length=6,
        task=spec.task,
        french_spacing=spec.task == "translation",
        beam_width=2,
        name=name,
    )


# Tasks whose models export with their vocabularies: task -> model of a name.
TEXT_MODELS = {
    "text_classification": text_model,
    "translation": translator_model,
    "headline_generation": translator_model,
}


def registered_models():
    """Registered names whose task has a signature builder (every name should:
    `test_every_registered_model_has_serving_signatures` fails otherwise)."""
    from zoo import list_models

    missing = models_without_signatures()
    return [name for name in list_models() if name not in missing]


# Each registered model is exported as it is (the larger seq2seq variants in
# the slow run only: tests/sweeps.py), and the smallest variant of each family
# also int8-quantized (`export_model(..., quantize="int8")`)
# under NAME_int8: every family's layers, at a fraction of the time.
QUANTIZED = "_int8"
QUANTIZED_MODELS = smallest_per_family(registered_models())
MODEL_NAMES = [
    *sweep_params(registered_models()),
    *(name + QUANTIZED for name in QUANTIZED_MODELS),
    "toy_rgb",
]


def _skips_slow(config):
    return (config.getoption("markexpr") or "").strip() == "not slow"


@pytest.fixture(scope="session")
def exports(tmp_path_factory, request):
    """name -> `ExportedModel`: every registered model plus the toy, version 1.

    Registered models go through `export_model(name, weights=...)` with
    perturbed weights saved to a `.weights.h5` file; text models, which
    export with their vocabularies, as the `TextClassifier` of `text_model`
    or the `Translator` of `translator_model`.
    The `QUANTIZED_MODELS` also as `NAME_int8`, exported with
    `quantize="int8"` (its `ExportedModel.model`, the reference, is the
    quantized Keras model).
    """
    from zoo import build_model, get_model_spec

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("saved_models")
    weights = tmp_path_factory.mktemp("weights")
    result = {}
    for name in registered_models():
        if slow_in_sweeps(name) and _skips_slow(request.config):
            continue
        quantized = name + QUANTIZED
        task = get_model_spec(name).task
        if task in TEXT_MODELS:
            model = TEXT_MODELS[task](name)
            perturb(model)
            result[name] = export_model(model, root / name / "1")
            if name in QUANTIZED_MODELS:
                result[quantized] = export_model(
                    model, root / quantized / "1", quantize="int8"
                )
            continue
        model = build_model(name)
        perturb(model)
        path = weights / f"{name}.weights.h5"
        model.save_weights(path)
        result[name] = export_model(name, root / name / "1", weights=path)
        if name in QUANTIZED_MODELS:
            result[quantized] = export_model(
                name, root / quantized / "1", weights=path, quantize="int8"
            )
    toy = toy_classifier()
    perturb(toy)
    result[toy.name] = export_model(toy, root / toy.name / "1")
    return result


@pytest.fixture(scope="session")
def tf_only(exports, tmp_path_factory):
    """What the TensorFlow-only process saw, and the Keras answers to compare.

    Returns a dict with `unregistered_ops` and `models`: per model name, the
    runner's `signatures`, `outputs`, `errors`, `session_outputs` and
    `session_errors`, plus `requests` (`(signature, inputs)`), `references`
    (the Keras answers) and `bad_requests` (`(signature, description,
    pattern)`), in the runner's order.
    """
    work = tmp_path_factory.mktemp("tf_only")
    job = {"ops": sorted({op for e in exports.values() for op in op_names(e.path)})}
    job["models"], expected = [], {}
    for name, exported in exports.items():
        signatures = exported.signatures
        examples = [s.make_example(BATCH_SIZE, i) for i, s in enumerate(signatures)]
        pairs = list(zip(signatures, examples, strict=True))
        requests = [(s.name, x) for s, x in pairs]
        bad = [(s, *request) for s in signatures for request in s.bad_requests]
        expected[name] = {
            "requests": requests,
            "references": [s.reference(x) for s, x in pairs],
            "bad_requests": [(s.name, what, pattern) for s, what, _, pattern in bad],
        }
        job["models"].append(
            {
                "name": name,
                "path": exported.path,
                "requests": requests,
                "bad_requests": [(s.name, what, inputs) for s, what, inputs, _ in bad],
            }
        )
    with open(work / "job.pkl", "wb") as f:
        pickle.dump(job, f)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    process = subprocess.run(
        [sys.executable, "-I", RUNNER, str(work / "job.pkl"), str(work / "result.pkl")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    with open(work / "result.pkl", "rb") as f:
        result = pickle.load(f)
    for name, seen in result["models"].items():
        seen.update(expected[name])
    return result


def pytest_collection_modifyitems(config, items):
    """Runs every test of the `exports` fixture on one xdist worker.

    The fixture exports every registered model (minutes); with the tests
    spread over workers, each worker would export them all again.
    """
    for item in items:
        if "exports" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("exports"))
