"""The benchmark scripts' argument parsing and the results rows they write."""

import argparse
import os
import sys

import keras
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

needs_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the benchmarks run on TensorFlow"
)


@needs_tensorflow
@pytest.mark.parametrize(
    "text, expected",
    [
        ("max_length=512", ("max_length", 512)),
        ("dropout=0.3", ("dropout", 0.3)),
        ("cell=gru", ("cell", "gru")),
        ("pooling='attention'", ("pooling", "attention")),
    ],
)
def test_text_set_reads_python_literals(text, expected):
    import text as text_benchmark

    assert text_benchmark.setting(text) == expected


@needs_tensorflow
@pytest.mark.parametrize("text", ["max_length", "=3", "max-length=3"])
def test_text_set_refuses_what_is_not_key_value(text):
    import text as text_benchmark

    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        text_benchmark.setting(text)


@needs_tensorflow
def test_serving_rows_are_valid_results(tmp_path):
    import serving

    from zoo.results import append_results, read_results

    row = {"model": "vit_tiny", "params": 10, "b64_ips/default": 1234.5678}
    row["b1_ms/default"] = 2.3456
    append_results(serving._results(row, "python benchmarks/serving.py"), tmp_path)
    figures = {r["metric"]: r["value"] for r in read_results(tmp_path)}
    assert figures == {"examples_per_s_b64": 1234.568, "latency_ms_b1": 2.346}
