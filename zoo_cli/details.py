"""`zoo list --details` and `zoo info`: the registry with its measured figures."""

import json

from training.choices import DETAIL_COLUMNS as COLUMNS
from zoo.model_details import model_details, summary_row
from zoo.results import read_results, run_notes

HEADERS = {
    "model": "model",
    "task": "task",
    "params": "params",
    "gflops": "GFLOPs",
    "accuracy": "accuracy",
    "dataset": "on",
    "examples_per_s_b64": "ex/s b64",
    "latency_ms_b1": "ms b1",
}


def _text(column, value):
    if value is None:
        return "-"
    if column == "params":
        return f"{value:,}"
    if column == "gflops":
        return f"{value:.4g}"
    if column == "accuracy":
        return f"{100 * value:.2f}%"
    if column == "examples_per_s_b64":
        return f"{value:,.0f}"
    if column == "latency_ms_b1":
        return f"{value:.2f}"
    return str(value)


def sort_rows(rows, column, reverse=False):
    """Rows sorted by `column`; rows without a figure there always come last."""
    have = [r for r in rows if r[column] is not None]
    lack = [r for r in rows if r[column] is None]
    return sorted(have, key=lambda r: r[column], reverse=reverse) + lack


def format_table(rows):
    """Rows of `summary_row` as an aligned text table."""
    cells = [[HEADERS[c] for c in COLUMNS]]
    cells += [[_text(c, row[c]) for c in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    numeric = {"params", "gflops", "accuracy", "examples_per_s_b64", "latency_ms_b1"}
    lines = []
    for line in cells:
        parts = [
            text.rjust(w) if c in numeric else text.ljust(w)
            for c, text, w in zip(COLUMNS, line, widths, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def list_details(names, sort=None, reverse=False, output_format="table", dataset=None):
    """What `zoo list --details` prints for `names`.

    Raises:
        ValueError: `dataset` has no measured figure at all (a typo would
            otherwise show no accuracy for every model).
    """
    results = read_results()
    measured = sorted({r["dataset"] for r in results if r["dataset"]})
    if dataset is not None and dataset not in measured:
        raise ValueError(
            f"Argument `--dataset` has no measured figures: {dataset!r}. "
            f"Measured: {measured}"
        )
    rows = [summary_row(model_details(n, results), dataset) for n in names]
    if sort:
        rows = sort_rows(rows, sort, reverse)
    if output_format == "json":
        return json.dumps(rows, indent=2)
    return format_table(rows)


def _tensors(tensors):
    return ", ".join(f"{t['name']} {t['dtype']} {tuple(t['shape'])}" for t in tensors)


def format_info(details):
    """A `model_details` dict as the text `zoo info` prints."""
    training = details["training"]
    optimizer = training.get("optimizer", {})
    flops_input = details["flops_input"]
    lines = [
        f"{details['name']}: {details['task']}, family {details['family']}",
        f"  parameters: {details['params']:,}",
        f"  GFLOPs: {details['flops'] / 1e9:.4g} (one {flops_input['dtype']} "
        f"input of shape {tuple(flops_input['shape'])})",
        f"  inputs: {_tensors(details['inputs'])}",
        f"  outputs: {_tensors(details['outputs'])}",
        "  builder arguments: "
        + ", ".join(f"{k}={v!r}" for k, v in details["config"].items()),
        f"  recommended training: {training.get('epochs')} epochs, batch "
        f"{training.get('batch_size')}, "
        + ", ".join(f"{k}={v!r}" for k, v in optimizer.items()),
    ]
    if training.get("ppo"):
        ppo = training["ppo"]
        lines.append("  PPO: " + ", ".join(f"{k}={v!r}" for k, v in ppo.items()))
    if training.get("augmentation"):
        lines.append(f"  augmentation: {training['augmentation']}")
    if not details["results"]:
        lines.append("  measured: nothing yet (see benchmarks/)")
    for r in details["results"]:
        where = f" on {r['dataset']} ({r['split']})" if r["dataset"] else ""
        extra = [f"{k}={v!r}" for k, v in r["settings"].items()] + run_notes(r)
        lines.append(
            f"  {r['metric']}{where}: {r['text']}"
            + (f" [{', '.join(extra)}]" if extra else "")
        )
        lines.append(f"      {r['date']}, {r['machine']}: `{r['command']}`")
    return "\n".join(lines)


def info(name, output_format="text"):
    """What `zoo info NAME` prints."""
    details = model_details(name, read_results())
    if output_format == "json":
        return json.dumps(details, indent=2, default=str)
    return format_info(details)
