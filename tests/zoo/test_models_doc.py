import os
import re

import keras
import pytest

from zoo import build_model, get_model_spec, list_models
from zoo.model_details import COLUMNS, model_details, summary_row
from zoo.models_doc import DOCS, write_docs
from zoo.results import append_results, config_hash, read_results, result_row

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="operations counted on TensorFlow"
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return write_docs(str(tmp_path_factory.mktemp("docs")))


def test_the_committed_docs_are_what_the_script_writes(generated):
    """Byte for byte, pictures included: the docs are up to date, and the
    script (run earlier, in another process) writes the same bytes again."""
    committed = sorted(
        f for f in os.listdir(DOCS) if f == "models.md" or f.startswith("models_")
    )
    assert committed == sorted(os.path.basename(p) for p in generated)
    for path in generated:
        with (
            open(path, "rb") as f,
            open(os.path.join(DOCS, os.path.basename(path)), "rb") as g,
        ):
            assert f.read() == g.read(), f"run `make docs` and commit docs/ ({path})"


def test_every_registered_model_has_a_row(generated):
    text = open(generated[0]).read()
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", text, re.M)
    assert sorted(rows) == list_models()


def test_every_figure_cites_a_results_row_with_its_command(generated):
    text = open(generated[0]).read()
    tables, sources = text.split("## Sources")
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", tables)}
    entries = dict(re.findall(r"^(\d+)\. (.*)$", sources, re.M))
    assert cited and cited == {int(n) for n in entries}
    rows = {r["source"]: r for r in read_results()}
    for n in cited:
        entry = entries[str(n)]
        source = re.search(r"`benchmarks/results/([^`]+)`\)$", entry).group(1)
        row = rows[source]
        assert f"`{row['command']}`" in entry and row["command"]
        # The figure in the table is the row's value, cited with its number.
        figure = entry.split(": ", 1)[1].split(" (")[0].split(";")[0]
        assert f"{figure}" in tables and f"[{n}]" in tables
        assert figure.rstrip("%").replace(",", "").split()[0] in (
            f"{100 * row['value']:.2f}",
            f"{row['value']:.2f}",
            f"{row['value']:.1f}",
            f"{row['value']:.0f}",
        )
    # A table cell is a figure with its citation, or "-".
    for line in tables.splitlines():
        if line.startswith("| `"):
            for cell in line.strip("|").split(" | ")[4:]:
                assert cell.strip() == "-" or re.search(r"\[\d+\]$", cell.strip())


def test_details_count_and_pick_the_current_figures(tmp_path):
    name = "cbam_cnn_tiny"
    spec = get_model_spec(name)
    command = "python benchmarks/vision.py"
    rows = [
        result_row(spec, "accuracy", 0.97, command, dataset="mnist", split="test"),
        result_row(spec, "accuracy", 0.98, command, dataset="mnist", settings={"x": 1}),
        {
            **result_row(spec, "accuracy", 0.99, command, dataset="mnist"),
            "config_hash": "old",
        },
        result_row(spec, "latency_ms_b1", 2.5, command),
    ]
    append_results(rows, tmp_path)
    details = model_details(name, read_results(tmp_path))
    assert details["params"] == build_model(name).count_params()
    assert details["config_hash"] == config_hash(spec.config)
    assert details["flops"] > 2 * details["params"]  # convolutions reuse weights
    assert [i["name"] for i in details["inputs"]] == ["image"]
    assert [o["name"] for o in details["outputs"]] == ["logits"]
    figures = {(r["metric"], r["value"]) for r in details["results"]}
    assert figures == {("accuracy", 0.97), ("accuracy", 0.98), ("latency_ms_b1", 2.5)}
    row = summary_row(details)
    assert set(row) == set(COLUMNS)
    assert row["accuracy"] == 0.97 and row["dataset"] == "mnist"  # as registered
    assert row["latency_ms_b1"] == 2.5 and row["examples_per_s_b64"] is None
    assert summary_row(details, "other")["accuracy"] is None
