"""The `zoo` commands of translation and headline models.

`zoo train` trains the token model on teacher-forced batches and saves the
`Translator` (token model plus vocabularies); `zoo evaluate` decodes the test
split with beam search and scores it (BLEU and chrF, or ROUGE); `zoo
translate` decodes texts given on the command line.
"""

import math
import os
import time

from training.fit import compile_model, fit_model, sequence_loss
from training.optimizers import build_optimizer
from training.recipes import optimizer_arguments
from training.seq2seq_data import load_seq2seq
from zoo.seq2seq.evaluation import (
    decode_texts,
    score_texts,
    translator_for,
)
from zoo_cli.commands import check_new_run, write_metrics


def load(args, spec, batch_size, **kwargs):
    """`load_seq2seq` of the command's dataset flags, sized by `spec`."""
    config = spec.config
    return load_seq2seq(
        args.dataset,
        batch_size=batch_size,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        test_split=args.test_split,
        source_vocabulary_size=config["source_vocabulary_size"],
        target_vocabulary_size=config["target_vocabulary_size"],
        max_source_length=config["max_source_length"],
        max_target_length=config["max_target_length"],
        **kwargs,
    )


def evaluate(translator, info, metrics_json=None, beam_width=None, limit=None):
    """Decodes and scores `info.test_texts`; prints and returns the metrics."""
    start = time.perf_counter()
    sources, hypotheses, references = decode_texts(
        translator, info.test_texts, beam_width=beam_width, limit=limit
    )
    metrics = score_texts(translator.task, hypotheses, references)
    metrics["examples"] = len(hypotheses)
    metrics["decode_seconds"] = round(time.perf_counter() - start, 1)
    shown = "  ".join(
        f"{k}: {v:.2f}" for k, v in metrics.items() if k not in ("examples",)
    )
    print(f"test ({len(hypotheses)} examples) {shown}")
    for source, hypothesis in list(zip(sources, hypotheses, strict=True))[:3]:
        print(f"  {source!r} -> {hypothesis!r}")
    write_metrics(metrics, metrics_json)
    return metrics


def train(args, spec, batch_size, epochs, optimizer_flags):
    """`zoo train` of a seq2seq model: fits, saves `model.keras`, evaluates."""
    train_ds, test_ds, info = load(
        args,
        spec,
        batch_size,
        seed=args.seed,
        validation_split=args.validation_split,
        train_split=args.train_split,
    )
    translator = translator_for(args.model, info)
    steps = epochs * math.ceil(info.train_examples / batch_size)
    options = optimizer_arguments(
        spec.training.get("optimizer", {}), steps, optimizer_flags
    )
    model = translator.seq2seq
    compile_model(
        model,
        build_optimizer(**options),
        loss=sequence_loss(),
        jit_compile=args.jit_compile,
    )
    output = args.output or os.path.join("runs", f"{args.model}-{info.name}")
    check_new_run(output, args)
    print(
        f"training {args.model} on {info.name} ({info.train_examples} pairs, "
        f"{epochs} epochs) into {output}"
    )
    fit_model(
        model,
        train_ds,
        info.validation_ds,
        epochs=epochs,
        output_dir=output,
        resume=not args.no_resume,
        verbose=args.verbose,
    )
    path = os.path.join(output, "model.keras")
    translator.save(path)
    print(f"saved {path}")
    evaluate(translator, info, args.metrics_json)
    return 0


def evaluate_file(args, translator):
    """`zoo evaluate` of a saved `Translator` on `--dataset`'s test split."""
    _, _, info = load_seq2seq(
        args.dataset,
        batch_size=args.batch_size or 64,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        test_split=args.test_split,
        max_source_length=translator.max_source_length,
        max_target_length=translator.max_target_length,
        adapt=False,
        source_vectorizer=translator.source_vectorizer,
        target_vectorizer=translator.target_vectorizer,
    )
    evaluate(translator, info, args.metrics_json, beam_width=args.beam_width)
    return 0


def translate(args, translator):
    """`zoo translate`: prints the output of each text (and an attention map)."""
    import numpy as np
    import tensorflow as tf

    texts = tf.constant(args.texts, tf.string)
    source = translator.tokenize(texts)
    tokens, weights = translator.generate(
        source, beam_width=args.beam_width, return_attention=True
    )
    outputs = [t.decode() for t in translator.detokenize(tokens).numpy()]
    for text, output in zip(args.texts, outputs, strict=True):
        print(f"{text}\t{output}")
    if args.attention_map:
        from zoo.seq2seq.attention_map import plot_seq2seq_attention

        path = plot_seq2seq_attention(
            translator,
            np.asarray(source),
            np.asarray(tokens),
            np.asarray(weights),
            args.attention_map,
        )
        print(f"attention map: {path}")
    return 0
