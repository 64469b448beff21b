"""Seq2seq benchmark: BLEU / ROUGE of translators trained from scratch here.

Per model (TensorFlow backend, data through the project's tfds builders from
`../shared/data`): trains the variant's token model with its recommended
settings (`get_model_spec(name).training`) on teacher-forced batches, wraps it
with the vocabularies in a `zoo.seq2seq.Translator`, decodes the whole test
split with beam search (XLA-compiled loop) and scores it: sacrebleu corpus
BLEU and chrF for translation (detokenised output, default 13a tokenizer),
ROUGE-1/2/L for headlines beside the lead baseline (the description's first
N words, N chosen by ROUGE-L on the training split). Prints a Markdown table,
appends it with the date, machine and command to `benchmarks/RESULTS.md` and
the figures to `benchmarks/results/`; `--output DIR` keeps the trained
translator (`DIR/model.keras`) for `zoo translate` and `zoo export`.

    python benchmarks/seq2seq.py --models transformer_seq2seq_small \\
        --output runs/transformer_seq2seq_small-zoo_anki_fra_eng
    python benchmarks/seq2seq.py --models transformer_headline_small \\
        --dataset zoo_ag_news_subset
    python benchmarks/seq2seq.py --quick --no-append   # smoke run

`--max-minutes M` stops training after M minutes (the figure then says so);
`--epochs` overrides the variant's.
"""

import argparse
import datetime
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import keras  # noqa: E402
from text import add_set_argument  # noqa: E402
from vision import machine  # noqa: E402

import zoo  # noqa: E402
from training.fit import compile_model, sequence_loss  # noqa: E402
from training.optimizers import build_optimizer  # noqa: E402
from training.precision import set_precision  # noqa: E402
from training.recipes import optimizer_arguments  # noqa: E402
from training.seq2seq_data import load_seq2seq  # noqa: E402
from zoo.results import append_results, result_row  # noqa: E402
from zoo.seq2seq import metrics  # noqa: E402
from zoo.seq2seq.evaluation import (  # noqa: E402
    decode_texts,
    examples,
    score_texts,
    translator_for,
)

ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
SHARED = os.path.join(ROOT, "..", "shared", "data")
MANUAL = {"zoo_anki_fra_eng": "anki_fra_eng", "zoo_ag_news_subset": "ag_news_test"}


class TimeLimit(keras.callbacks.Callback):
    """Stops training after `minutes` of wall time (checked every batch)."""

    def __init__(self, minutes):
        super().__init__()
        self.seconds = None if minutes is None else 60.0 * minutes
        self.stopped_at = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.epochs_started = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs_started = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds and time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True
            self.stopped_at = batch


def _lead_length(info, limit=4000):
    """N of the lead baseline, chosen by ROUGE-L on training pairs."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(info.name, data_dir=os.environ.get("TFDS_DATA_DIR"))
    ds = builder.as_dataset(split=f"train[:{limit}]")
    sources, targets = [], []
    for example in ds:
        sources.append(example[info.source_feature].numpy().decode())
        targets.append(example[info.target_feature].numpy().decode())
    return metrics.best_lead_length(sources, targets)


def train(name, args):
    """Trains and scores `name`; returns `(results rows, table row)`."""
    set_precision(args.precision)
    keras.utils.set_random_seed(args.seed)
    spec = zoo.get_model_spec(name)
    config = {**spec.config, **args.set}
    batch_size = spec.training.get("batch_size", 64)
    epochs = args.epochs or spec.training.get("epochs", 1)
    train_ds, test_ds, info = load_seq2seq(
        args.dataset,
        batch_size=batch_size,
        manual_dir=args.manual_dir or os.path.join(SHARED, MANUAL[args.dataset]),
        seed=args.seed,
        train_split="train[:4096]" if args.quick else None,
        source_vocabulary_size=config["source_vocabulary_size"],
        target_vocabulary_size=config["target_vocabulary_size"],
        max_source_length=config["max_source_length"],
        max_target_length=config["max_target_length"],
    )
    translator = translator_for(name, info, **args.set)
    model = translator.seq2seq
    steps = epochs * math.ceil(info.train_examples / batch_size)
    options = optimizer_arguments(spec.training.get("optimizer", {}), steps)
    compile_model(
        model, build_optimizer(**options), loss=sequence_loss(), jit_compile=False
    )
    limit = TimeLimit(args.max_minutes)
    start = time.perf_counter()
    model.fit(
        train_ds,
        epochs=epochs,
        verbose=2,
        callbacks=[limit],
        validation_data=test_ds if args.log_test else None,
    )
    seconds = time.perf_counter() - start
    test_limit = 256 if args.quick else None
    start = time.perf_counter()
    sources, hypotheses, references = decode_texts(
        translator, info.test_texts, beam_width=args.beam_width, limit=test_limit
    )
    decode_seconds = time.perf_counter() - start
    lead = None
    if spec.task == "headline_generation":
        lead = _lead_length(info)
    scores = score_texts(spec.task, hypotheses, references, sources, lead)
    for source, hypothesis, reference in examples(sources, hypotheses, references):
        print(f"  {source!r}\n    -> {hypothesis!r}\n    (reference {reference!r})")
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        path = os.path.join(args.output, "model.keras")
        if os.path.exists(path):
            raise SystemExit(f"{path} exists: not overwritten (pick another --output)")
        translator.save(path)
        print(f"saved {path}")
    settings = dict(args.set)
    if args.beam_width is not None:
        settings["beam_width"] = args.beam_width
    # A run stopped by --max-minutes records the epoch it stopped in.
    epochs_run = epochs if limit.stopped_at is None else limit.epochs_started
    shown = {"bleu": "bleu", "chrf": "chrf", "rougeL": "rougeL"}
    rows = [
        result_row(
            spec,
            metric,
            scores[key],
            args.command,
            dataset=args.dataset,
            split=info.splits["test"],
            epochs=epochs_run,
            train_seconds=round(seconds, 1),
            params=model.count_params(),
            settings=settings,
            precision=args.precision,
        )
        for metric, key in shown.items()
        if key in scores
    ]
    row = dict(
        model=", ".join([name, *(f"{k}={v}" for k, v in args.set.items())]),
        dataset=f"{info.name} ({info.train_examples} train, "
        f"{len(hypotheses)} {info.splits['test']})",
        params=model.count_params(),
        epochs=epochs
        if limit.stopped_at is None
        else f"{epochs} (stopped by the time limit in epoch {limit.epochs_started})",
        scores=scores,
        lead=lead,
        seconds=seconds,
        decode_seconds=decode_seconds,
    )
    return rows, row


def table(rows):
    lines = [
        "| model | dataset | params | epochs | scores | training | test decoding |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        scores = ", ".join(f"{k} {v:.1f}" for k, v in r["scores"].items())
        if r["lead"]:
            scores += f" (lead-{r['lead']} baseline: the lead_* figures)"
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['params']:,} | {r['epochs']} | "
            f"{scores} | {r['seconds']:.0f} s | {r['decode_seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="transformer_seq2seq_small")
    parser.add_argument("--dataset", default="zoo_anki_fra_eng", choices=sorted(MANUAL))
    parser.add_argument("--manual-dir", help="default ../shared/data/<dataset>")
    parser.add_argument("--epochs", type=int, help="default: the model's")
    parser.add_argument("--max-minutes", type=float, help="stop training after")
    parser.add_argument("--beam-width", type=int, help="default: the translator's")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="folder to save the translator in")
    add_set_argument(parser)
    parser.add_argument("--log-test", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args(argv)
    args.set = dict(args.set)
    args.command = "python benchmarks/seq2seq.py " + " ".join(argv or sys.argv[1:])
    rows, results = [], []
    for name in args.models.split(","):
        result, row = train(name.strip(), args)
        rows.append(row)
        results += result
        print(table(rows[-1:]), flush=True)
    text = table(rows)
    print(text)
    if not args.no_append:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        with open(args.results, "a") as f:
            f.write(
                f"\n## Sequence to sequence ({stamp})\n\n`{args.command}`\n\n"
                f"Machine: {machine()}\n\n{text}\n"
            )
        if not args.quick:
            append_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
