"""What a registered model is and what it measured: `zoo info`, `zoo list --details`."""

from training.choices import DETAIL_COLUMNS
from zoo._text import DEFAULT_MAX_LENGTH
from zoo.registry import build_model, get_model_spec
from zoo.results import (
    METRICS,
    PRIMARY_DATASETS,
    best_results,
    config_hash,
    format_value,
)

# Columns of `zoo list --details` (and keys of `summary_row`).
COLUMNS = DETAIL_COLUMNS


def _tensor(tensor):
    return {
        "name": tensor.name.split(":")[0],
        "dtype": str(tensor.dtype),
        "shape": list(tensor.shape),
    }


def model_details(name, results=()):
    """Everything `zoo info` shows about a registered model.

    Builds the model with its registered arguments (random weights) to count
    parameters and operations.

    Args:
        name: a registered model name.
        results: rows of `zoo.results.read_results()`.

    Returns:
        A JSON-able dict: `name`, `task`, `family`, `config` (builder
        arguments), `config_hash`, `params`, `flops` (one forward pass of one
        example at the default input: an image of `input_shape`, a policy's
        window of `window` observations, or
        `max_length` tokens, 256 for a model without one, or a seq2seq
        model's `max_source_length` and `max_target_length` tokens;
        `zoo.export.flops.count_flops`), `flops_input`,
        `inputs` and `outputs` (name, dtype, shape), `training` (the
        recommended settings) and `results`: the best current figure per
        metric, dataset and settings (`zoo.results.best_results`; settings
        `{}` for the variant as registered), each with its
        `value`, `text`, `settings`, `epochs`, `train_seconds`, `machine`,
        `date`, `command` and `source`.
    """
    from zoo.export.flops import count_flops

    spec = get_model_spec(name)
    model = build_model(name)
    if "input_shape" in spec.config:
        shape, dtype = tuple(spec.config["input_shape"]), "float32"
    elif "observation_size" in spec.config:
        shape = (spec.config["window"], spec.config["observation_size"])
        dtype = "float32"
    elif "max_source_length" in spec.config:
        shape = {
            "source": (spec.config["max_source_length"],),
            "target": (spec.config["max_target_length"],),
        }
        dtype = "int32"
    else:
        shape = (spec.config.get("max_length", DEFAULT_MAX_LENGTH),)
        dtype = "int32"
    current = config_hash(spec.config)
    best = best_results(results, name, current)
    return {
        "name": name,
        "task": spec.task,
        "family": spec.family,
        "config": spec.config,
        "config_hash": current,
        "params": model.count_params(),
        "flops": count_flops(model, shape, dtype),
        "flops_input": {
            "shape": {k: [1, *v] for k, v in shape.items()}
            if isinstance(shape, dict)
            else [1, *shape],
            "dtype": dtype,
        },
        "inputs": [_tensor(t) for t in model.inputs],
        "outputs": [
            {**_tensor(t), "name": name}
            for t, name in zip(model.outputs, model.output_names, strict=True)
        ],
        "training": spec.training,
        "results": [
            {
                "metric": metric,
                "dataset": dataset,
                "split": row["split"],
                "value": row["value"],
                "text": format_value(row),
                **{
                    k: row[k]
                    for k in (
                        "settings",
                        "epochs",
                        "train_seconds",
                        "precision",
                        "machine",
                        "date",
                        "command",
                        "source",
                    )
                },
            }
            for (metric, dataset, _), row in sorted(best.items())
        ],
    }


def summary_row(details, dataset=None):
    """One row of `zoo list --details`: the `COLUMNS` of `model_details`.

    Args:
        details: a `model_details` dict.
        dataset: the dataset whose best accuracy is shown (default the task's
            `zoo.results.PRIMARY_DATASETS` entry, e.g. `mnist`).

    Returns:
        A dict of `COLUMNS`: figures of the variant as registered (results
        with other settings, such as another cell, are in `zoo info`); a
        figure never measured is `None`.
    """
    dataset = dataset or PRIMARY_DATASETS.get(details["task"])
    row = {
        "model": details["name"],
        "task": details["task"],
        "params": details["params"],
        "gflops": details["flops"] / 1e9,
        "accuracy": None,
        "dataset": dataset,
    }
    registered = [r for r in details["results"] if not r["settings"]]
    for r in registered:
        if r["metric"] == "accuracy" and r["dataset"] == dataset:
            row["accuracy"] = r["value"]
    # A task whose figure of quality is not an accuracy (a policy's mean
    # return) shows it in `zoo info` and docs/models.md.
    for metric in ("examples_per_s_b64", "latency_ms_b1"):
        values = [r["value"] for r in registered if r["metric"] == metric]
        higher = METRICS[metric][1]
        row[metric] = (max if higher else min)(values) if values else None
    return row
