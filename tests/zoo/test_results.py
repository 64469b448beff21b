import csv

import pytest

from zoo import get_model_spec
from zoo.results import (
    FIELDS,
    METRICS,
    append_results,
    best_results,
    config_hash,
    format_value,
    read_results,
    result_row,
)

SPEC = get_model_spec("cbam_cnn_tiny")


def row(metric="accuracy", value=0.9, **fields):
    return result_row(SPEC, metric, value, "python benchmarks/x.py", **fields)


def test_rows_round_trip_with_types_and_sources(tmp_path):
    rows = [
        row(dataset="mnist", split="test", epochs=2, train_seconds=12.5, params=10),
        row("latency_ms_b1", 3.25, settings={"cell": "gru"}),
    ]
    append_results(rows, tmp_path)
    append_results([row(value=0.95)], tmp_path)
    read = read_results(tmp_path)
    assert [r["value"] for r in read] == [0.9, 3.25, 0.95]
    assert read[0]["epochs"] == 2 and read[0]["params"] == 10
    assert read[0]["train_seconds"] == 12.5 and read[1]["epochs"] is None
    assert read[1]["settings"] == {"cell": "gru"} and read[0]["settings"] == {}
    assert [r["source"] for r in read] == [
        "image_classification.csv:2",
        "image_classification.csv:3",
        "image_classification.csv:4",
    ]
    with open(tmp_path / "image_classification.csv") as f:
        assert next(csv.reader(f)) == list(FIELDS)  # one header only
        assert len(f.readlines()) == 3


@pytest.mark.parametrize(
    "change, message",
    [
        ({"metric": "bleu score"}, "Unknown metric 'bleu score'"),
        ({"value": None}, "needs ['value']"),
        ({"command": ""}, "needs ['command']"),
        ({"colour": "red"}, "Unknown results fields ['colour']"),
    ],
)
def test_bad_rows_are_refused_before_writing(tmp_path, change, message):
    bad = {**row(), **change}
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        append_results([row(), bad], tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_value_must_be_a_number(tmp_path):
    with pytest.raises(ValueError, match="could not convert"):
        append_results([{**row(), "value": "high"}], tmp_path)


def test_bad_files_name_the_file_and_line(tmp_path):
    (tmp_path / "a.csv").write_text("model,value\nx,1\n")
    with pytest.raises(ValueError, match="a.csv: the header must be"):
        read_results(tmp_path)
    (tmp_path / "a.csv").unlink()
    append_results([row(), row()], tmp_path)
    path = tmp_path / "image_classification.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",0.9,", ",oops,")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="image_classification.csv:3: .*oops"):
        read_results(tmp_path)


def test_a_missing_folder_has_no_results(tmp_path):
    assert read_results(tmp_path / "none") == []


def test_best_results_by_direction_and_current_version(tmp_path):
    rows = [
        row(value=0.90, dataset="mnist"),
        row(value=0.97, dataset="mnist"),
        row(value=0.93, dataset="mnist"),
        row(value=0.80, dataset="other"),
        row("latency_ms_b1", 5.0),
        row("latency_ms_b1", 2.0),
        row("latency_ms_b1", 4.0),
        {**row(value=0.99, dataset="mnist"), "config_hash": "stale"},
        {**row(value=0.99, dataset="mnist"), "model": "cbam_cnn_small"},
        row(value=0.5, dataset="mnist", settings={"cell": "gru"}),
        row(value=0.4, dataset="mnist", settings={"cell": "gru"}),
    ]
    append_results(rows, tmp_path)
    best = best_results(read_results(tmp_path), SPEC.name, config_hash(SPEC.config))
    assert set(best) == {
        ("accuracy", "mnist", ""),
        ("accuracy", "other", ""),
        ("latency_ms_b1", "", ""),
        ("accuracy", "mnist", "cell=gru"),
    }
    assert best["accuracy", "mnist", ""]["value"] == 0.97
    assert best["accuracy", "mnist", "cell=gru"]["value"] == 0.5
    assert best["latency_ms_b1", "", ""]["value"] == 2.0


def test_settings_equal_to_the_variant_are_dropped():
    assert row(settings={"dropout": SPEC.config["dropout"], "x": 1})["settings"] == {
        "x": 1
    }


def test_config_hash_is_stable_and_sees_every_argument():
    config = dict(SPEC.config)
    assert config_hash(config) == config_hash(dict(reversed(config.items())))
    assert config_hash({**config, "dropout": 0.5}) != config_hash(config)


def test_format_value():
    texts = [format_value({"metric": m, "value": 0.5}) for m in sorted(METRICS)]
    assert texts == [
        "50.00%",
        "0.5 BLEU",
        "0.5 chrF",
        "0 examples/s",
        "0.50 ms",
        "0.50 mAP@[.5:.95]",
        "0.50 mAP@0.5",
        "0.50 mAP@0.75",
        "0.5",  # a policy's mean return
        "0.5 ROUGE-L",
    ]
    # A figure of 0 (a BLEU of 0.0) is a figure.
    assert format_value({"metric": "bleu", "value": 0.0}) == "0.0 BLEU"


def test_the_repository_results_parse_and_name_registered_models():
    from zoo import list_models

    rows = read_results()
    assert rows, "benchmarks/results/ holds the measured figures"
    assert {r["model"] for r in rows} <= set(list_models())
    assert all(r["command"].startswith("python benchmarks/") for r in rows)
