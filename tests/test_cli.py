import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from tests.training.mnist_cache import mnist_data_dir
from zoo_cli import main

MODEL = "cbam_cnn_tiny"
TINY = ["--train-split", "train[:256]", "--test-split", "test[:128]"]
needs_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="export needs TensorFlow"
)


@pytest.fixture(scope="module")
def mnist_dir():
    return mnist_data_dir()


@pytest.fixture(scope="module")
def trained(mnist_dir, tmp_path_factory):
    """A run folder of `zoo train` on a tiny MNIST subset, and its metrics."""
    run = tmp_path_factory.mktemp("run")
    metrics = run / "metrics.json"
    argv = ["train", MODEL, "--dataset", "mnist", "--data-dir", mnist_dir]
    argv += [*TINY, "--epochs", "1", "--batch-size", "64", "--output", str(run)]
    argv += ["--metrics-json", str(metrics), "--verbose", "0"]
    keras.utils.set_random_seed(0)
    assert main(argv) == 0
    return run, json.loads(metrics.read_text())


def test_list_matches_the_registry(capsys):
    assert main(["list"]) == 0
    assert capsys.readouterr().out.split() == zoo.list_models()
    assert main(["list", "--task", "image_classification", "--pattern", "vit_*"]) == 0
    names = capsys.readouterr().out.split()
    assert names and names == zoo.list_models("image_classification", "vit_*")


def test_train_writes_metrics_and_model(trained):
    run, metrics = trained
    assert set(metrics) == {"accuracy", "loss"}
    assert 0.0 <= metrics["accuracy"] <= 1.0 and np.isfinite(metrics["loss"])
    assert (run / "model.keras").is_file()
    assert list((run / "logs").glob("train/events.out.tfevents.*"))


@pytest.mark.parametrize("use_name", [False, True])
def test_evaluate_reproduces_training_metrics(trained, mnist_dir, tmp_path, use_name):
    run, metrics = trained
    target = [MODEL, "--weights", str(run / "model.keras")] if use_name else [str(run)]
    out = tmp_path / "eval.json"
    argv = ["evaluate", *target, "--dataset", "mnist", "--data-dir", mnist_dir]
    assert main([*argv, "--test-split", "test[:128]", "--metrics-json", str(out)]) == 0
    evaluated = json.loads(out.read_text())
    assert evaluated["accuracy"] == pytest.approx(metrics["accuracy"])
    assert evaluated["loss"] == pytest.approx(metrics["loss"], rel=1e-5)


@needs_tensorflow
def test_export_serves_the_trained_weights(trained, tmp_path, capsys):
    import tensorflow as tf

    run, _ = trained
    target = tmp_path / "saved" / MODEL / "1"
    assert main(["export", str(run / "model.keras"), "--output", str(target)]) == 0
    assert "serving_default" in capsys.readouterr().out
    # No models.config in the root and no --serving-config: none is written.
    assert not (tmp_path / "saved" / "models.config").exists()
    model = keras.saving.load_model(run / "model.keras")
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    serve = tf.saved_model.load(str(target)).signatures["serving_default"]
    served = serve(image=tf.constant(images))["logits"].numpy()
    np.testing.assert_allclose(served, model.predict(images, verbose=0), atol=1e-5)


@needs_tensorflow
def test_export_int8_serves_close_to_the_float_model(trained, tmp_path, capsys):
    import tensorflow as tf

    from zoo.export.inspection import export_sizes

    run, _ = trained
    target = tmp_path / "saved" / f"{MODEL}_int8" / "1"
    argv = ["export", str(run), "--output", str(target), "--quantize", "int8"]
    assert main(argv) == 0
    capsys.readouterr()
    images = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    model = keras.saving.load_model(run / "model.keras")
    expected = model.predict(images, verbose=0)
    serve = tf.saved_model.load(str(target)).signatures["serving_default"]
    served = serve(image=tf.constant(images))["logits"].numpy()
    error = np.max(np.abs(served - expected)) / np.max(np.abs(expected))
    assert 0 < error < 0.05  # quantized, and close
    assert export_sizes(str(target))["weights"] > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "no_such_model", "--dataset", "mnist"], "Unknown model name"),
        (["train", MODEL, "--dataset", "mnsit"], "Unknown dataset 'mnsit'"),
        (["evaluate", "no_such_model", "--dataset", "mnist"], "Unknown model name"),
        (["list", "--task", "poetry"], "Argument `task`"),
        (["export", "missing.keras", "--output", "x/1"], "No .keras model file"),
        (["train", "vit_tiny", "--dataset", "mnist", "--epochs", "0"], "epochs"),
        (["evaluate", "/missing/run", "--dataset", "mnist"], "/missing/run"),
        (["evaluate", "runs/x/model.keras", "--dataset", "mnist"], "model.keras"),
    ],
)
def test_errors_print_one_line(argv, message, capsys, tmp_path, mnist_dir):
    if argv[0] == "train" and "--epochs" in argv:
        argv = [*argv, "--data-dir", mnist_dir, *TINY]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zoo: error: "), err
    assert message in err[0]
    if argv[0] == "evaluate" and argv[1] != "no_such_model":
        # A path is reported as a path, not as an unknown model name.
        assert "Unknown model" not in err[0]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "-1"], "Argument `--epochs` must be a positive integer"),
        (["--batch-size", "0"], "`--batch-size`"),
        (["--validation-split", "1.5"], "--validation-split"),
        (["--validation-split", "1"], "--validation-split"),
        (["--train-split", "train[:abc]"], "--train-split"),
        (["--test-split", "test[[5]"], "--test-split"),
    ],
)
def test_arguments_are_checked_before_any_data_loads(flags, message, capsys, tmp_path):
    # An empty data directory and manual folder: loading data would fail with
    # another message (and building a model would take time).
    argv = ["train", MODEL, "--dataset", "mnist", "--data-dir", str(tmp_path)]
    assert main([*argv, "--manual-dir", str(tmp_path), *flags]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line, line
    assert "warmup" not in line and "lacks" not in line


def test_tune_checks_max_trials_first(capsys, tmp_path):
    argv = ["tune", MODEL, "--dataset", "mnist", "--data-dir", str(tmp_path)]
    assert main([*argv, "--manual-dir", str(tmp_path), "--max-trials", "0"]) == 1
    assert "`--max-trials`" in capsys.readouterr().err


def test_debug_goes_before_or_after_the_command(capsys):
    for argv in (["--debug", "list"], ["list", "--debug"]):
        assert main([*argv, "--pattern", "vit_*"]) == 0
        assert capsys.readouterr().out.split() == zoo.list_models(pattern="vit_*")
    with pytest.raises(ValueError, match="task"):
        main(["list", "--task", "poetry", "--debug"])


def _run(*argv, **kwargs):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=env, **kwargs
    )


def test_help_is_quick_and_loads_no_tensorflow():
    code = (
        "import sys, time; t = time.perf_counter(); import zoo_cli; "
        "zoo_cli.build_parser().format_help(); "
        "print(time.perf_counter() - t, 'tensorflow' in sys.modules, "
        "'keras' in sys.modules)"
    )
    result = _run("-c", code, check=True)
    seconds, tensorflow, keras_loaded = result.stdout.split()
    assert (tensorflow, keras_loaded) == ("False", "False")
    assert float(seconds) < 1.0
    result = _run("-m", "zoo_cli", "--help", check=True)
    assert "train" in result.stdout and result.stderr == ""
    result = _run("-m", "zoo_cli", "train", "--help", check=True)
    assert "--no-augmentation" in result.stdout and result.stderr == ""


def test_commands_print_no_tensorflow_notices():
    result = _run("-m", "zoo_cli", "list", "--pattern", "vit_*", check=True)
    assert result.stdout.split() == zoo.list_models(pattern="vit_*")
    assert result.stderr == ""


def test_readme_loading_sentence_in_a_fresh_process(trained):
    """README: after `import zoo`, `load_model(..., safe_mode=True)` loads a
    file written by `zoo train`, optimizer and schedule included."""
    run, _ = trained
    code = (
        "import sys, keras, zoo; "
        "m = keras.saving.load_model(sys.argv[1], safe_mode=True); "
        "print(m.optimizer.iterations.numpy())"
    )
    result = _run("-c", code, str(run / "model.keras"), cwd="/")
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) > 0  # the trained optimizer state


def test_missing_data_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ZOO_MANUAL_DIR", raising=False)
    argv = ["train", MODEL, "--dataset", "mnist", "--data-dir", str(tmp_path)]
    assert main([*argv, "--manual-dir", str(tmp_path)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "lacks t10k-images-idx3-ubyte.gz" in line


def test_bad_flag_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", MODEL, "--dataset", "mnist", "--jit-compile", "maybe"])
    assert exit_info.value.code == 2
    assert "auto, true or false" in capsys.readouterr().err


@pytest.mark.slow
def test_tune_resumes(mnist_dir, tmp_path, capsys):
    argv = ["tune", MODEL, "--dataset", "mnist", "--data-dir", mnist_dir, *TINY]
    argv += ["--batch-size", "64", "--directory", str(tmp_path), "--verbose", "0"]
    assert main([*argv, "--max-trials", "1"]) == 0
    project = tmp_path / f"{MODEL}-mnist"
    assert len(list(project.glob("trial_*"))) == 1
    assert main([*argv, "--max-trials", "2", "--resume"]) == 0
    assert len(list(project.glob("trial_*"))) == 2
    assert "best hyperparameters" in capsys.readouterr().out
    assert (project / "best_model.keras").is_file()


def test_python_dash_m_zoo():
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "list", "--pattern", "cbam_*"],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == zoo.list_models(pattern="cbam_*")


@pytest.fixture(scope="module")
def trained_text(tmp_path_factory):
    """A run folder of `zoo train` of a text model on 512 SST-2 sentences."""
    from tests.training.test_text_datasets import shared_folder, text_data_dir

    data_dir = text_data_dir("zoo_sst2")
    run = tmp_path_factory.mktemp("text_run")
    metrics = run / "metrics.json"
    argv = ["train", "transformer_classifier_tiny", "--dataset", "zoo_sst2"]
    argv += ["--data-dir", data_dir, "--manual-dir", str(shared_folder("zoo_sst2"))]
    argv += ["--train-split", "train[:512]", "--test-split", "validation[:200]"]
    argv += ["--epochs", "1", "--output", str(run), "--metrics-json", str(metrics)]
    keras.utils.set_random_seed(0)
    assert main([*argv, "--verbose", "0"]) == 0
    return run, data_dir, json.loads(metrics.read_text())


def test_text_model_trains_evaluates_and_exports_from_strings(
    trained_text, tmp_path, capsys
):
    import tensorflow as tf

    from zoo.text_classifier import TextClassifier

    run, data_dir, metrics = trained_text
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert isinstance(model, TextClassifier)
    assert model.class_names == ("negative", "positive")
    out = tmp_path / "eval.json"
    argv = ["evaluate", str(run), "--dataset", "zoo_sst2", "--data-dir", data_dir]
    assert (
        main([*argv, "--test-split", "validation[:200]", "--metrics-json", str(out)])
        == 0
    )
    assert json.loads(out.read_text())["accuracy"] == pytest.approx(metrics["accuracy"])
    target = tmp_path / "saved" / "transformer_classifier_tiny" / "1"
    assert main(["export", str(run), "--output", str(target)]) == 0
    assert "serving_tokens" in capsys.readouterr().out
    served = tf.saved_model.load(str(target)).signatures["serving_default"]
    texts = ["a gripping , funny film", "dull and far too long", ""]
    answer = served(text=tf.constant(texts))
    probabilities = keras.ops.softmax(model(tf.constant(texts))).numpy()
    np.testing.assert_allclose(
        answer["probabilities"].numpy(), probabilities, atol=1e-5
    )
    labels = [model.class_names[i] for i in probabilities.argmax(axis=1)]
    assert [b.decode() for b in answer["labels"].numpy()] == labels


def test_text_model_name_needs_its_run_folder(capsys):
    argv = ["evaluate", "transformer_classifier_tiny", "--dataset", "zoo_sst2"]
    assert main(argv) == 1
    assert "holds its vocabulary" in capsys.readouterr().err


@pytest.mark.slow
def test_tune_a_text_model(tmp_path, capsys):
    from tests.training.test_text_datasets import shared_folder, text_data_dir
    from zoo.text_classifier import TextClassifier

    argv = ["tune", "transformer_classifier_tiny", "--dataset", "zoo_sst2"]
    argv += ["--data-dir", text_data_dir("zoo_sst2")]
    argv += ["--manual-dir", str(shared_folder("zoo_sst2"))]
    argv += ["--train-split", "train[:512]", "--test-split", "validation[:128]"]
    argv += ["--max-trials", "1", "--directory", str(tmp_path), "--verbose", "0"]
    assert main(argv) == 0
    path = tmp_path / "transformer_classifier_tiny-zoo_sst2" / "best_model.keras"
    best = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(best, TextClassifier)
    assert "test accuracy" in capsys.readouterr().out


def test_predict_prints_labels_and_draws_attention(trained_text, tmp_path, capsys):
    run, _, _ = trained_text
    figure = tmp_path / "attention.png"
    texts = ["a gripping , funny film", ""]
    assert main(["predict", str(run), *texts, "--attention-map", str(figure)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[-1] == f"attention map: {figure}"
    for line, text in zip(lines, texts, strict=False):
        label, probability, shares, shown = line.split("\t")
        assert label in ("negative", "positive") and 0.5 <= float(probability) <= 1
        assert shown == repr(text)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_refuses_an_image_model(trained, capsys):
    run, _ = trained
    assert main(["predict", str(run), "some text"]) == 1
    assert "not a text model" in capsys.readouterr().err


def test_list_details_shows_every_model_sorted(capsys):
    from zoo.model_details import COLUMNS

    pattern = ["--pattern", "*_tiny"]
    assert main(["list", "--details", *pattern, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == zoo.list_models(pattern="*_tiny")
    assert all(set(r) == set(COLUMNS) and r["params"] > 0 for r in rows)
    assert main(["list", "--details", *pattern, "--sort", "params", "--reverse"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["model", "task", "params", "GFLOPs"]
    params = [int(line.split()[2].replace(",", "")) for line in lines[1:]]
    assert params == sorted((r["params"] for r in rows), reverse=True)


def test_list_details_shows_the_measured_figure(capsys):
    from zoo.model_details import model_details, summary_row
    from zoo.results import read_results

    name = "transformer_classifier_small"
    expected = summary_row(model_details(name, read_results()))["accuracy"]
    assert expected is not None, "benchmarks/results/ has its SST-2 figure"
    assert main(["list", "--details", "--pattern", name]) == 0
    assert f"{100 * expected:.2f}%" in capsys.readouterr().out


def test_info_prints_size_training_and_sources(capsys):
    assert main(["info", "rnn_classifier_small"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 2,823,938" in out and "GFLOPs:" in out
    assert "recommended training: 3 epochs, batch 64" in out
    assert "(cell='gru'" in out or "[cell='gru'" in out
    assert "`python benchmarks/text.py" in out
    assert main(["info", "vit_tiny", "--format", "json"]) == 0
    details = json.loads(capsys.readouterr().out)
    assert details["params"] == zoo.build_model("vit_tiny").count_params()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "vit_tiniest"], "Unknown model name: 'vit_tiniest'"),
        (["list", "--sort", "params"], "--sort, --reverse, --dataset and --format"),
        (["list", "--details", "--dataset", "sst2"], "no measured figures: 'sst2'"),
    ],
)
def test_details_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_sort_column_is_checked_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["list", "--details", "--sort", "speed"])
    assert "invalid choice: 'speed'" in capsys.readouterr().err


def test_readme_rest_request_reads_as_tf_serving_reads_it(trained_text, tmp_path):
    """The README's curl body, read as TF Serving reads a row-format request
    of a one-input signature (each instance is that input's value), answers
    with a class name per text."""
    import re

    import tensorflow as tf

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    body = json.loads(re.search(r"-d '(\{\"instances\".*\})'", readme).group(1))
    run, _, _ = trained_text
    target = tmp_path / "transformer_classifier_tiny" / "1"
    assert main(["export", str(run), "--output", str(target)]) == 0
    signature = tf.saved_model.load(str(target)).signatures["serving_default"]
    (name,) = signature.structured_input_signature[1]
    answer = signature(**{name: tf.constant(body["instances"], tf.string)})
    labels = [b.decode() for b in answer["labels"].numpy()]
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    logits = model(tf.constant(body["instances"])).numpy()
    assert labels == [model.class_names[i] for i in logits.argmax(axis=1)]
    assert answer["classes"].numpy().tolist() == logits.argmax(axis=1).tolist()


@pytest.fixture(scope="module")
def trained_translator(tmp_path_factory):
    """A run folder of `zoo train` of a translator on 1,024 English-French pairs."""
    import fcntl

    from tests.training.test_text_datasets import REPO, SHARED_DATA
    from training.data_source import prepare

    data_dir = os.environ.get("TFDS_DATA_DIR") or str(REPO / ".cache" / "tfds")
    manual = str(SHARED_DATA / "anki_fra_eng")
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, ".zoo_anki_fra_eng.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        prepare("zoo_anki_fra_eng", data_dir, manual)
    run = tmp_path_factory.mktemp("translator_run")
    metrics = run / "metrics.json"
    argv = ["train", "transformer_seq2seq_tiny", "--dataset", "zoo_anki_fra_eng"]
    argv += ["--data-dir", data_dir, "--manual-dir", manual]
    argv += ["--train-split", "train[:1024]", "--test-split", "test[:64]"]
    argv += ["--epochs", "1", "--output", str(run), "--metrics-json", str(metrics)]
    keras.utils.set_random_seed(0)
    assert main([*argv, "--verbose", "0"]) == 0
    return run, data_dir, manual, json.loads(metrics.read_text())


def test_translator_trains_evaluates_and_translates(
    trained_translator, tmp_path, capsys
):
    run, data_dir, manual, metrics = trained_translator
    assert metrics["examples"] == 64
    assert 0.0 <= metrics["bleu"] <= 100.0 and 0.0 <= metrics["chrf"] <= 100.0
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert isinstance(model, zoo.Translator) and model.task == "translation"
    out = tmp_path / "eval.json"
    argv = ["evaluate", str(run), "--dataset", "zoo_anki_fra_eng"]
    argv += [
        "--data-dir",
        data_dir,
        "--manual-dir",
        manual,
        "--test-split",
        "test[:64]",
    ]
    assert main([*argv, "--metrics-json", str(out)]) == 0
    again = json.loads(out.read_text())
    assert again["bleu"] == pytest.approx(metrics["bleu"], abs=1e-9)
    figure = tmp_path / "attention.png"
    capsys.readouterr()
    texts = ["i am cold .", ""]
    argv = ["translate", str(run), *texts, "--attention-map", str(figure)]
    assert main([*argv, "--beam-width", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[-1] == f"attention map: {figure}"
    assert [line.split("\t")[0] for line in lines[:2]] == texts
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_translate_refuses_other_models_and_bad_beams(
    trained, trained_translator, capsys
):
    run, _ = trained
    assert main(["translate", str(run), "some text"]) == 1
    assert "not a translation" in capsys.readouterr().err
    translator_run = trained_translator[0]
    assert main(["translate", str(translator_run), "hi", "--beam-width", "0"]) == 1
    assert "--beam-width" in capsys.readouterr().err


@needs_tensorflow
def test_exported_translator_serves_text_and_odd_requests(trained_translator, tmp_path):
    import tensorflow as tf

    run = trained_translator[0]
    output = tmp_path / "saved_models" / "translator" / "1"
    assert main(["export", str(run), "--output", str(output)]) == 0
    translator = keras.saving.load_model(run / "model.keras", safe_mode=True)
    served = tf.saved_model.load(str(output))
    # An empty text, a very long one (cut at max_source_length) and bytes that
    # are not UTF-8 (read as U+FFFD) all get a translation.
    texts = ["i am cold .", "", "go " * 5000, b"caf\xe9 \xff\xfe"]
    expected = translator.translate(tf.constant(texts)).numpy()
    for name in ("serving_default", "serving_xla"):
        answer = served.signatures[name](text=tf.constant(texts))
        np.testing.assert_array_equal(answer["translation"].numpy(), expected)
        assert answer["tokens"].shape == (4, translator.max_target_length)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least one string"):
        served.signatures["serving_default"](text=tf.constant([], tf.string))


@pytest.mark.slow  # 45 s; tests/training/test_distributed_tuning.py runs by default
def test_tune_distributed_chief_and_worker(mnist_dir, tmp_path):
    """`zoo tune --chief` and `--worker`, as two processes on 127.0.0.1."""
    from tests.training.test_distributed_tuning import free_port

    address = f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "-m", "zoo", "tune", MODEL, "--dataset", "mnist"]
    argv += ["--data-dir", mnist_dir, *TINY, "--batch-size", "64", "--verbose", "0"]
    argv += ["--directory", str(tmp_path), "--max-trials", "2"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

    def start(*flags):
        return subprocess.Popen(
            [*argv, *flags], env=env, stdout=subprocess.PIPE, text=True
        )

    chief = start("--chief", address)
    worker = start("--worker", address, "--tuner-id", "w1")
    worker_out, _ = worker.communicate(timeout=300)
    chief_out, _ = chief.communicate(timeout=300)
    assert worker.returncode == 0 and chief.returncode == 0
    assert "worker w1: the search is over; ran trials 0, 1" in worker_out
    assert "best hyperparameters" in chief_out
    project = tmp_path / f"{MODEL}-mnist"
    assert (project / "best_model.keras").is_file()
    assert sorted(p.name for p in project.glob("trial_*")) == ["trial_0", "trial_1"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--chief", "localhost"], "--chief must be HOST:PORT"),
        (["--worker", "h:0"], "--worker must be HOST:PORT"),
        (["--tuner-id", "w1"], "--tuner-id names a worker"),
        (["--worker", "h:1", "--tuner-id", "chief-2"], "tuner id must be"),
        (["--chief", "h:1", "--worker-timeout", "0"], "--worker-timeout"),
        (["--chief", "h:1", "--ensemble", "2"], "--ensemble needs the trials"),
    ],
)
def test_tune_distributed_bad_flags(flags, message, tmp_path, capsys):
    argv = ["tune", MODEL, "--dataset", "mnist", "--data-dir", str(tmp_path)]
    assert main([*argv, "--max-trials", "2", *flags]) == 1
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before any data loads


def test_tune_chief_or_worker_not_both(capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "tune",
                MODEL,
                "--dataset",
                "d",
                "--max-trials",
                "1",
                "--chief",
                "h:1",
                "--worker",
                "h:1",
            ]
        )
    assert "not allowed with argument" in capsys.readouterr().err


def test_train_and_evaluate_a_policy(tmp_path, capsys):
    """`zoo train POLICY --env CartPole-v1` then `zoo evaluate RUN --env`."""
    run = tmp_path / "policy"
    argv = ["train", "actor_critic_tiny", "--env", "CartPole-v1", "--steps", "2048"]
    assert main([*argv, "--output", str(run), "--episodes", "2", "--verbose", "0"]) == 0
    assert (run / "model.keras").is_file()
    trained = capsys.readouterr().out.splitlines()[-1]
    argv = ["evaluate", str(run), "--env", "CartPole-v1", "--episodes", "2"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == trained


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "actor_critic_tiny"], "is a policy: give --env"),
        (["train", MODEL, "--env", "CartPole-v1"], "--env trains policies"),
        (["train", MODEL], "required: --dataset"),
        (["train", "actor_critic_tiny", "--env", "Pong-v5"], "--env"),
        (
            ["train", "actor_critic_tiny", "--env", "CartPole-v1", "--dataset", "x"],
            "exclude each other",
        ),
        (["evaluate", "actor_critic_tiny", "--dataset", "mnist"], "give --env"),
    ],
)
def test_policy_flags(argv, message, capsys):
    assert main(argv) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("fixture", ["trained", "trained_text", "trained_translator"])
def test_train_refuses_a_run_folder_that_holds_a_model(fixture, request, capsys):
    """A second `zoo train` into a finished run leaves its model as it was."""
    run = request.getfixturevalue(fixture)[0]
    model = run / "model.keras"
    before = model.read_bytes()
    argv = {
        "trained": ["train", MODEL, "--dataset", "mnist"],
        "trained_text": [
            "train",
            "transformer_classifier_tiny",
            "--dataset",
            "zoo_sst2",
        ],
        "trained_translator": ["train", "transformer_seq2seq_tiny"],
    }[fixture]
    if fixture == "trained_translator":
        _, data_dir, manual, _ = request.getfixturevalue(fixture)
        argv += ["--dataset", "zoo_anki_fra_eng", "--data-dir", data_dir]
        argv += ["--manual-dir", manual, "--train-split", "train[:64]"]
    elif fixture == "trained_text":
        argv += ["--data-dir", request.getfixturevalue(fixture)[1]]
    else:
        argv += ["--data-dir", request.getfixturevalue("mnist_dir"), *TINY]
    capsys.readouterr()  # what the fixtures' training printed
    assert main([*argv, "--epochs", "1", "--output", str(run), "--verbose", "0"]) == 1
    err = capsys.readouterr().err
    assert f"{run} already holds a trained model" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
    assert model.read_bytes() == before


def test_train_overwrite_replaces_the_model(mnist_dir, tmp_path):
    argv = ["train", MODEL, "--dataset", "mnist", "--data-dir", mnist_dir, *TINY]
    argv += ["--epochs", "1", "--output", str(tmp_path), "--verbose", "0"]
    assert main(argv) == 0
    first = (tmp_path / "model.keras").stat().st_mtime_ns
    assert main(argv) == 1
    assert main([*argv, "--overwrite"]) == 0
    assert (tmp_path / "model.keras").stat().st_mtime_ns > first
