"""Measured results as data: one CSV per task under `benchmarks/results/`.

The benchmark scripts append a row per figure they measure (beside the table
they append to `benchmarks/RESULTS.md`, which stays the log); `zoo list
--details`, `zoo info` and `docs/models.md` read them. A row belongs to the
variant as it was registered when it ran: `config_hash` is `config_hash()` of
the variant's builder arguments then, and a row whose hash differs from
today's is stale (the variant changed since) and is not shown as the
variant's figure. `settings` holds what the run changed from the variant
(builder overrides such as `{"cell": "gru"}`), shown next to the figure.

This module imports neither Keras nor TensorFlow.
"""

import csv
import datetime
import hashlib
import json
import os
import platform

FIELDS = (
    "model",
    "task",
    "dataset",
    "split",
    "metric",
    "value",
    "epochs",
    "train_seconds",
    "params",
    "settings",
    "precision",
    "config_hash",
    "machine",
    "date",
    "command",
)
# metric -> (unit, True when higher is better, quality or speed).
METRICS = {
    "accuracy": ("%", True, "quality"),
    "examples_per_s_b64": ("examples/s", True, "speed"),
    "latency_ms_b1": ("ms", False, "speed"),
    # sacrebleu corpus BLEU and chrF, ROUGE-L F-measure (0-100).
    "bleu": ("BLEU", True, "quality"),
    "chrf": ("chrF", True, "quality"),
    "rougeL": ("ROUGE-L", True, "quality"),
    # Mean return of a policy over greedy evaluation episodes (split: how
    # many, e.g. "100 episodes").
    "mean_return": ("mean return", True, "quality"),
    # COCO box mAP (pycocotools) at IoU 0.50:0.05:0.95, 0.5 and 0.75 (0-1).
    "map": ("mAP@[.5:.95]", True, "quality"),
    "map_50": ("mAP@0.5", True, "quality"),
    "map_75": ("mAP@0.75", True, "quality"),
}
# The figure of quality that docs/models.md shows per task (default accuracy).
QUALITY_METRICS = {
    "translation": "bleu",
    "headline_generation": "rougeL",
    "reinforcement_learning": "mean_return",
    "object_detection": "map_50",
}
# The dataset whose accuracy `zoo list --details` shows by default.
PRIMARY_DATASETS = {
    "image_classification": "mnist",
    "text_classification": "zoo_sst2",
    "translation": "zoo_anki_fra_eng",
    "headline_generation": "zoo_ag_news_subset",
    "reinforcement_learning": "CartPole-v1",
    "object_detection": "zoo_raccoon",
}
_HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(os.path.dirname(_HERE), "benchmarks", "results")


def results_dir():
    """The results folder: `$ZOO_RESULTS_DIR`, else the repository's."""
    return os.environ.get("ZOO_RESULTS_DIR") or DEFAULT_DIR


# Builder arguments added after results were recorded, at the value that
# builds the model as before: left out of the hash, so those results stay.
ADDED_DEFAULTS = {"bigram_buckets": 0, "copy_source": False}


def config_hash(config):
    """Short stable hash of a variant's builder arguments (a JSON-able dict)."""
    config = {
        k: v
        for k, v in config.items()
        if k not in ADDED_DEFAULTS or v != ADDED_DEFAULTS[k]
    }
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cpu_name():
    """The CPU model, e.g. `"AMD EPYC"` (`/proc/cpuinfo`, else `platform`)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = (line.split(":", 1)[1] for line in f if "model name" in line)
            cpu = next(names).strip()
    except (OSError, StopIteration):
        pass
    return cpu


def machine_name():
    """The CPU model and count, e.g. `"AMD EPYC, 2 CPUs"`."""
    return f"{cpu_name()}, {os.cpu_count()} CPUs"


_MISSING = object()


def result_row(spec, metric, value, command, **fields):
    """A results row of registered variant `spec` (a `zoo.ModelSpec`).

    Fills `model`, `task` and `config_hash` from `spec`, `machine` and `date`
    (today, ISO) from this machine; `fields` are the other `FIELDS`. Entries
    of `settings` equal to the variant's own arguments are dropped (a run
    with `cell="lstm"` of an LSTM variant is the variant as registered).
    """
    settings = fields.pop("settings", None) or {}
    fields["settings"] = {
        k: v for k, v in settings.items() if spec.config.get(k, _MISSING) != v
    }
    row = {
        "model": spec.name,
        "task": spec.task,
        "metric": metric,
        "value": value,
        "config_hash": config_hash(spec.config),
        "machine": machine_name(),
        "date": datetime.date.today().isoformat(),
        "command": command,
    }
    row.update(fields)
    _check_row(row)
    return row


def _check_row(row):
    # A value of 0 (a BLEU of 0.0) is a figure, not a missing one.
    missing = [
        f
        for f in ("model", "task", "metric", "value", "command")
        if row.get(f) is None or row.get(f) == ""
    ]
    if missing:
        raise ValueError(f"A results row needs {missing}. Received: {row!r}")
    unknown = set(row) - set(FIELDS)
    if unknown:
        raise ValueError(f"Unknown results fields {sorted(unknown)}. Received: {row!r}")
    if row["metric"] not in METRICS:
        raise ValueError(
            f"Unknown metric {row['metric']!r}; known: {sorted(METRICS)}. "
            f"Received: {row!r}"
        )
    try:
        float(row["value"])
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"A results row's `value` must be a number ({error}). Received: "
            f"value={row['value']!r}"
        ) from None


def append_results(rows, directory=None):
    """Appends rows (dicts of `FIELDS`) to `DIRECTORY/<task>.csv`.

    A new file gets the header first; existing rows are never rewritten.

    Raises:
        ValueError: a row lacks model, task, metric, value or command, has an
            unknown field or metric, or a value that is not a number.
    """
    directory = directory or results_dir()
    for row in rows:
        _check_row(row)
    os.makedirs(directory, exist_ok=True)
    for task in sorted({row["task"] for row in rows}):
        path = os.path.join(directory, f"{task}.csv")
        new = not os.path.exists(path)
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, FIELDS, lineterminator="\n")
            if new:
                writer.writeheader()
            for row in rows:
                if row["task"] == task:
                    writer.writerow({k: _cell(row.get(k)) for k in FIELDS})


def _cell(value):
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


def read_results(directory=None):
    """Every row of `DIRECTORY/*.csv`, in file then row order.

    Each row is a dict of `FIELDS` with `value` a float, `epochs` and
    `params` ints (or `None`), `train_seconds` a float (or `None`),
    `settings` a dict, and `source` = `"FILE.csv:LINE"`.

    Raises:
        ValueError: a file whose header is not `FIELDS`, or a bad row (the
            message names the file and line).
    """
    directory = directory or results_dir()
    if not os.path.isdir(directory):
        return []
    rows = []
    for filename in sorted(os.listdir(directory)):
        if not filename.endswith(".csv"):
            continue
        with open(os.path.join(directory, filename), newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != FIELDS:
                raise ValueError(
                    f"{filename}: the header must be {','.join(FIELDS)}. "
                    f"Received: {reader.fieldnames}"
                )
            for row in reader:
                source = f"{filename}:{reader.line_num}"
                try:
                    rows.append(_parsed(row, source))
                except ValueError as error:
                    raise ValueError(f"{source}: {error}") from None
    return rows


def _parsed(row, source):
    _check_row(row)
    optional = {"epochs": int, "params": int, "train_seconds": float}
    for key, kind in optional.items():
        row[key] = kind(row[key]) if row[key] else None
    row["value"] = float(row["value"])
    row["settings"] = json.loads(row["settings"]) if row["settings"] else {}
    row["source"] = source
    return row


def best_results(rows, model, current_hash):
    """The best current row of `model` per metric, dataset and settings.

    Args:
        rows: rows of `read_results`.
        model: a registered name.
        current_hash: `config_hash` of the variant's builder arguments today;
            rows with another hash are stale and left out.

    Returns:
        A dict `(metric, dataset, settings) -> row`, best by the metric's
        direction (the later row on a tie); `settings` is `settings_text` of
        the row's settings, `""` for the variant as registered.
    """
    best = {}
    for row in rows:
        if row["model"] != model or row["config_hash"] != current_hash:
            continue
        key = (row["metric"], row["dataset"], settings_text(row["settings"]))
        higher = METRICS[row["metric"]][1]
        old = best.get(key)
        if old is None or row["value"] == old["value"]:
            best[key] = row
        elif (row["value"] > old["value"]) == higher:
            best[key] = row
    return best


def run_notes(row):
    """What a row says of its run: `["2 epochs", "trained in 249 s", "float32"]`."""
    notes = []
    if row["epochs"]:
        notes.append(f"{row['epochs']} epochs")
    if row["train_seconds"]:
        notes.append(f"trained in {row['train_seconds']:.0f} s")
    if row["precision"]:
        notes.append(row["precision"])
    return notes


def settings_text(settings):
    """`{"cell": "gru", "max_length": 512}` -> `"cell=gru, max_length=512"`."""
    return ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))


def format_value(row):
    """A row's value for people: `99.55%`, `1,234 examples/s`, `3.2 ms`."""
    unit = METRICS[row["metric"]][0]
    if unit == "%":
        return f"{100 * row['value']:.2f}%"
    if unit == "ms":
        return f"{row['value']:.2f} ms"
    if unit == "mean return":
        return f"{row['value']:.1f}"
    if unit.startswith("mAP"):
        return f"{row['value']:.2f} {unit}"
    if unit in ("BLEU", "chrF", "ROUGE-L"):
        return f"{row['value']:.1f} {unit}"
    return f"{row['value']:,.0f} {unit}"
