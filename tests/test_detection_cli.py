"""`zoo train / evaluate / detect` of a detector, on raccoon (about a minute).

`attention_detector_tiny` (64 x 64) trains for 2 steps of 4 images: the
figures are not good, the files and their keys are what is checked.
"""

import json
from pathlib import Path

import pytest

from training.data_source import prepare
from zoo_cli import main

MODEL = "attention_detector_tiny"
RACCOON = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raccoon"
PHOTO = RACCOON / "images" / "raccoon-1.jpg"
MAPS = {"map", "map_50", "map_75"}
TEST = ["--test-split", "test[:8]"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfds")
    assert RACCOON.resolve().is_dir(), f"shared data folder {RACCOON} is missing"
    prepare("zoo_raccoon", str(folder), str(RACCOON.resolve()))
    return str(folder)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """A run folder of `zoo train` for 2 steps, and its test metrics."""
    run = tmp_path_factory.mktemp("run")
    metrics = run / "metrics.json"
    argv = ["train", MODEL, "--dataset", "zoo_raccoon", "--data-dir", data_dir]
    argv += ["--manual-dir", str(RACCOON), "--epochs", "1", "--steps-per-epoch", "2"]
    argv += ["--batch-size", "4", *TEST, "--output", str(run), "--verbose", "0"]
    argv += ["--metrics-json", str(metrics), "--augmentation", '{"flip": true}']
    assert main(argv) == 0
    return run, json.loads(metrics.read_text())


def test_train_writes_the_run_and_map_metrics(trained):
    run, metrics = trained
    assert MAPS <= set(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 for k in MAPS)
    assert metrics["images"] == 8 and metrics["split"] == "test[:8]"
    assert {"loss", "heatmap_loss", "size_loss", "offset_loss"} <= set(metrics)
    assert (run / "model.keras").is_file()
    assert list((run / "logs").glob("train/events.out.tfevents.*"))
    info = json.loads((run / "detection.json").read_text())
    assert info["class_names"] == ["raccoon"] and info["input_size"] == 64
    assert (info["dataset"], info["steps_per_epoch"]) == ("zoo_raccoon", 2)


def test_train_again_into_the_run_is_refused(trained, data_dir, capsys):
    run, _ = trained
    before = (run / "model.keras").read_bytes()
    argv = ["train", MODEL, "--dataset", "zoo_raccoon", "--data-dir", data_dir]
    assert main([*argv, "--steps-per-epoch", "1", "--output", str(run)]) == 1
    assert "already holds a trained model" in capsys.readouterr().err
    assert (run / "model.keras").read_bytes() == before


def test_evaluate_the_run_folder_reproduces_the_metrics(trained, tmp_path, capsys):
    run, metrics = trained
    out = tmp_path / "eval.json"
    # The dataset and data folder come from the run's detection.json.
    assert main(["evaluate", str(run), *TEST, "--metrics-json", str(out)]) == 0
    assert "mAP@0.5" in capsys.readouterr().out
    evaluated = json.loads(out.read_text())
    for key in (*MAPS, "loss"):
        assert evaluated[key] == pytest.approx(metrics[key], rel=1e-4, abs=1e-6)


def test_evaluate_by_name_with_weights(trained, data_dir, tmp_path):
    run, metrics = trained
    out = tmp_path / "eval.json"
    argv = ["evaluate", MODEL, "--weights", str(run / "model.keras")]
    argv += ["--dataset", "zoo_raccoon", "--data-dir", data_dir, *TEST]
    assert main([*argv, "--metrics-json", str(out)]) == 0
    assert json.loads(out.read_text())["map_50"] == pytest.approx(metrics["map_50"])


def test_detect_prints_and_draws(trained, tmp_path, capsys):
    from PIL import Image

    run, _ = trained
    out = tmp_path / "drawn" / "out.png"
    argv = ["detect", str(run), str(PHOTO), "--output", str(out)]
    assert main([*argv, "--score-threshold", "0", "--max-detections", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"{PHOTO} (650x417): 3 detections" in printed
    assert printed.count("raccoon\t") == 3 and " px" in printed
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (650, 417)


def test_detect_several_images_draws_one_file_each(trained, tmp_path):
    run, _ = trained
    second = RACCOON / "images" / "raccoon-10.jpg"
    out = tmp_path / "out.png"
    assert (
        main(["detect", str(run), str(PHOTO), str(second), "--output", str(out)]) == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out-raccoon-1.png",
        "out-raccoon-10.png",
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "No image file at"),
        (b"", "is empty, not an image"),
        (b"not an image at all", "is not an image that PIL can read"),
        (PHOTO.read_bytes()[:2000], "is not an image that PIL can read"),
    ],
    ids=["missing", "empty", "text", "truncated"],
)
def test_detect_bad_files_give_one_line(trained, tmp_path, capsys, content, message):
    run, _ = trained
    path = tmp_path / "photo.jpg"
    if content is not None:
        path.write_bytes(content)
    assert main(["detect", str(run), str(PHOTO), str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_detect_rejects_bad_flags_and_models(trained, tmp_path, capsys):
    run, _ = trained
    assert main(["detect", str(run), str(PHOTO), "--score-threshold", "2"]) == 1
    assert "--score-threshold" in capsys.readouterr().err
    assert main(["detect", str(run), str(PHOTO), "--output", "out.nope"]) == 1
    assert "--output must name an image file" in capsys.readouterr().err
    assert main(["detect", str(tmp_path), str(PHOTO)]) == 1
    assert "model.keras" in capsys.readouterr().err


def test_detection_flags_go_with_their_tasks(capsys):
    argv = ["train", "cbam_cnn_tiny", "--dataset", "mnist", "--steps-per-epoch", "2"]
    assert main(argv) == 1
    assert "--steps-per-epoch goes with object_detection" in capsys.readouterr().err
    argv = ["train", "transformer_classifier_tiny", "--dataset", "zoo_sst2"]
    assert main([*argv, "--augmentation", '{"flip": true}']) == 1
    assert "--augmentation goes with image and detection" in capsys.readouterr().err
    argv = ["tune", "cbam_cnn_tiny", "--dataset", "mnist", "--max-trials", "1"]
    assert main([*argv, "--steps-per-epoch", "2"]) == 1
    assert "--steps-per-epoch goes with object_detection" in capsys.readouterr().err
    argv = ["tune", MODEL, "--dataset", "zoo_raccoon", "--max-trials", "1"]
    assert main([*argv, "--ensemble", "2"]) == 1
    assert "detectors have no ensemble" in capsys.readouterr().err


def test_tune_a_detector_saves_a_run_that_evaluate_and_detect_take(
    data_dir, tmp_path, capsys
):
    """Two trials of 2 steps minimise val_loss; the best model is a run folder."""
    argv = ["tune", MODEL, "--dataset", "zoo_raccoon", "--data-dir", data_dir]
    argv += ["--manual-dir", str(RACCOON), "--max-trials", "2"]
    argv += ["--steps-per-epoch", "2", "--batch-size", "4", *TEST, "--verbose", "0"]
    argv += ["--directory", str(tmp_path), "--project-name", "p"]
    metrics = tmp_path / "metrics.json"
    assert main([*argv, "--metrics-json", str(metrics)]) == 0
    printed = capsys.readouterr().out
    assert "best hyperparameters:" in printed and "mAP@0.5" in printed
    trials = [
        json.loads(t.read_text()) for t in (tmp_path / "p").glob("trial_*/trial.json")
    ]
    assert len(trials) == 2
    for trial in trials:
        val_loss = trial["metrics"]["metrics"]["val_loss"]["observations"]
        assert trial["score"] > 0
        assert trial["score"] == pytest.approx(val_loss[0]["value"][0])
    lowest = min(trials, key=lambda t: t["score"])
    best = tmp_path / "p" / "best_model.keras"
    info = json.loads((tmp_path / "p" / "detection.json").read_text())
    assert info["class_names"] == ["raccoon"] and info["steps_per_epoch"] == 2
    assert info["tuned"] == lowest["hyperparameters"]["values"]
    tuned = json.loads(metrics.read_text())
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(best), *TEST, "--metrics-json", str(out)]) == 0
    assert json.loads(out.read_text())["loss"] == pytest.approx(tuned["loss"], rel=1e-4)
    assert main(["detect", str(best), str(PHOTO), "--score-threshold", "0"]) == 0
    assert "raccoon\t" in capsys.readouterr().out


def test_readme_detection_request_reads_as_tf_serving_reads_it(trained, tmp_path):
    """The README's REST body for `serving_bytes` (a base64 JPEG), decoded as
    TF Serving decodes `{"b64": ...}`, answers boxes on the original photo
    that match the Python model's detections."""
    import base64
    import re

    import numpy as np
    import tensorflow as tf

    from zoo_cli.detection import detections_of
    from zoo_cli.detection import prepare_image as letterboxed

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## A detection from training to a served request")[1]
    body = re.search(r"-d \"(\{.*\})\"", section).group(1).replace('\\"', '"')
    body = body.replace(
        "$(base64 -w0 ../shared/data/raccoon/images/raccoon-1.jpg)", "B64"
    )
    request = json.loads(body)
    assert request["signature_name"] == "serving_bytes"
    (instance,) = request["instances"]
    assert instance == {"image_bytes": {"b64": "B64"}}
    encoded = base64.b64encode(PHOTO.read_bytes()).decode()

    run, _ = trained
    target = tmp_path / MODEL / "1"
    assert main(["export", str(run), "--output", str(target)]) == 0
    served = tf.saved_model.load(str(target)).signatures["serving_bytes"]
    answer = served(image_bytes=tf.constant([base64.b64decode(encoded)]))
    assert set(answer) == {"boxes", "scores", "classes", "num_detections"}
    count = int(answer["num_detections"][0])
    assert count > 0, "the 2-step detector has no score above the threshold"
    boxes = answer["boxes"][0, :count].numpy()
    assert np.all((boxes >= 0) & (boxes <= 1))

    from zoo.export.object_detection import SCORE_THRESHOLD
    from zoo.model_files import load_model_file

    model = load_model_file(str(run))
    # Decoded as the graph decodes it (PIL's JPEG decoder differs slightly).
    image = tf.io.decode_jpeg(PHOTO.read_bytes(), channels=3).numpy()
    outputs = model.predict_on_batch(tf.stack([letterboxed(image, 64)]))
    (found,) = detections_of(outputs, [image.shape[:2]], 64, 100, SCORE_THRESHOLD)
    # Non-maximum suppression only drops boxes: each served box is one of the
    # Python model's, with its score.
    for box, score in zip(boxes, answer["scores"][0, :count].numpy(), strict=True):
        same = (np.abs(found["scores"] - score) < 1e-5) & np.all(
            np.abs(found["boxes"] - box) < 1e-4, axis=1
        )
        assert same.any(), (box, score, found)
