"""Decoding speed: cached against uncached, ours against keras-hub's decoder.

Times greedy decoding of exactly N tokens (the end token is never chosen)
with `transformer_seq2seq_small`'s sizes (256 wide, 8 heads, 2 decoder
blocks, 12,000 target words), one `ops.while_loop` in a `tf.function`
(`--xla` also compiles it), and reports milliseconds per generated token:

- ours, with the key/value caches (`zoo.seq2seq.TransformerStepper`), at 8
  and 64 tokens: a step's cost grows with the tokens so far only through
  attention over the cache;
- ours without a cache (`UncachedStepper`: the whole prefix re-run at each
  step) at 64 tokens;
- keras-hub's `TransformerDecoder` with its caches (`self_attention_cache`,
  `cross_attention_cache`) at the same sizes and the same loop
  (`make keras-hub` installs it beside the project; skipped if absent).

With `--run DIR` (a trained translator, `DIR/model.keras`) it also decodes
the first 64 test sentences of zoo_anki_fra_eng with beam search (4 beams)
at batch 1 and 64 and reports sentences/s. Prints a table and appends it to
`benchmarks/RESULTS.md`.

    python benchmarks/decoding.py --xla \\
        [--run runs/transformer_seq2seq_small-zoo_anki_fra_eng]
"""

import argparse
import datetime
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
sys.path.append(os.path.join(ROOT, ".cache", "keras_hub"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402
from vision import machine  # noqa: E402

import zoo  # noqa: E402
from zoo.seq2seq.decoding import greedy_search  # noqa: E402
from zoo.seq2seq.transformer_stepper import TransformerStepper  # noqa: E402
from zoo.seq2seq.uncached_stepper import UncachedStepper  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
END = 3
SOURCE_LENGTH = 12


def _no_end(model):
    """`model` with the end token's logit pushed down: decoding never stops."""
    dense = model.get_layer("logits")
    bias = ops.convert_to_numpy(dense.bias)
    bias[END] = -1e4
    dense.bias.assign(bias)
    return model


def _time(function, *args, repeats):
    function(*args)  # trace and compile
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(function(*args))
        best = min(best, time.perf_counter() - start)
    return best


def _ours(model, cached, batch, tokens, xla, repeats):
    stepper = TransformerStepper(model) if cached else UncachedStepper(model)
    source = np.random.default_rng(0).integers(4, 5000, (batch, SOURCE_LENGTH))
    source = source.astype("int32")

    @tf.function(jit_compile=xla, autograph=False)
    def decode(source):
        return greedy_search(stepper, source, tokens, END)

    return _time(decode, source, repeats=repeats) / tokens


def _keras_hub(config, batch, tokens, xla, repeats):
    import keras_hub

    hidden, heads = config["hidden_dim"], config["num_heads"]
    vocabulary = config["target_vocabulary_size"]
    embedding = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary, config["max_target_length"] * 2, hidden
    )
    blocks = [
        keras_hub.layers.TransformerDecoder(config["intermediate_dim"], heads)
        for _ in range(config["num_decoder_layers"])
    ]
    logits = keras.layers.Dense(vocabulary, dtype="float32")
    encoded = np.random.default_rng(0).normal(size=(batch, SOURCE_LENGTH, hidden))
    encoded = encoded.astype("float32")
    head_dim = hidden // heads
    x = embedding(np.zeros((batch, 1), "int32"))
    for block in blocks:
        block(x, encoded)
    logits(x)

    @tf.function(jit_compile=xla, autograph=False)
    def decode(encoded):
        def cache(length):
            return ops.zeros((batch, 2, length, heads, head_dim))

        first = embedding(ops.full((batch, 1), 2, "int32"))
        self_caches, cross_caches = [], []
        x = first
        for block in blocks:
            x, self_cache, cross_cache = block(
                x,
                encoded,
                self_attention_cache=cache(tokens),
                self_attention_cache_update_index=0,
                cross_attention_cache=cache(SOURCE_LENGTH),
                cross_attention_cache_update_index=0,
            )
            self_caches.append(self_cache)
            cross_caches.append(cross_cache)
        out = ops.zeros((batch, tokens), "int32")
        best = ops.cast(ops.argmax(logits(x)[:, 0], axis=-1), "int32")
        out = ops.slice_update(out, (0, 0), best[:, None])

        def body(index, last, out, *caches):
            x = embedding.token_embedding(last)
            x = x + embedding.position_embedding(x, start_index=index)
            new = []
            for block, self_cache, cross_cache in zip(
                blocks, caches, cross_caches, strict=True
            ):
                x, self_cache, _ = block(
                    x,
                    encoded,
                    self_attention_cache=self_cache,
                    self_attention_cache_update_index=index,
                    cross_attention_cache=cross_cache,
                )
                new.append(self_cache)
            best = ops.cast(ops.argmax(logits(x)[:, 0], axis=-1), "int32")
            out = ops.slice_update(out, (0, index), best[:, None])
            return (index + 1, best[:, None], out, *new)

        result = ops.while_loop(
            lambda index, *_: index < tokens,
            body,
            (1, best[:, None], out, *self_caches),
            maximum_iterations=tokens - 1,
        )
        return result[2]

    return _time(decode, encoded, repeats=repeats) / tokens


def _test_texts(count=64):
    import tensorflow_datasets as tfds

    ds = tfds.load("zoo_anki_fra_eng", split=f"test[:{count}]")
    return [example["en"].numpy() for example in ds]


def _beam_speed(translator, batch, repeats):
    """Sentences/s of 4-beam search over the first 64 test sentences."""
    texts = _test_texts()
    batches = [texts[i : i + batch] for i in range(0, len(texts), batch)]

    @tf.function(jit_compile=True, autograph=False)
    def decode(source):
        return translator.generate(source, beam_width=4)

    sources = [translator.tokenize(tf.constant(b)) for b in batches]
    for source in sources:
        decode(source)  # compile every shape
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for source in sources:
            np.asarray(decode(source))
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def _serving_speed(translator, repeats):
    """SavedModel `serving_default` and `serving_xla`: ms per sentence at
    batch 1 (median over the first 16 test sentences) and sentences/s at
    batch 64 (the first 64)."""
    import statistics
    import tempfile

    from zoo.export import export_model

    texts = _test_texts()
    speeds = {}
    with tempfile.TemporaryDirectory() as folder:
        export_model(translator, os.path.join(folder, "translator", "1"))
        loaded = tf.saved_model.load(os.path.join(folder, "translator", "1"))
        for name in ("serving_default", "serving_xla"):
            function = loaded.signatures[name]
            function(text=tf.constant(texts[:1]))
            function(text=tf.constant(texts))
            times = []
            for text in texts[:16] * repeats:
                start = time.perf_counter()
                function(text=tf.constant([text]))
                times.append(time.perf_counter() - start)
            batch = []
            for _ in range(repeats):
                start = time.perf_counter()
                function(text=tf.constant(texts))
                batch.append(time.perf_counter() - start)
            speeds[name] = (1e3 * statistics.median(times), len(texts) / min(batch))
    return speeds


def _append_serving_rows(translator, speeds, command):
    from zoo.results import append_results, result_row

    spec = zoo.get_model_spec(translator.name)
    ms, rate = speeds
    fields = dict(
        params=translator.seq2seq.count_params(),
        # The blocks' policy as trained and saved (the logits are float32).
        precision=translator.seq2seq.layers[-2].dtype_policy.name,
    )
    append_results(
        [
            result_row(spec, "latency_ms_b1", round(ms, 3), command, **fields),
            result_row(spec, "examples_per_s_b64", round(rate, 3), command, **fields),
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="transformer_seq2seq_small")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--xla", action="store_true", help="compile the loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", help="a trained translator's run folder")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    command = "python benchmarks/decoding.py " + " ".join(argv or sys.argv[1:])
    keras.utils.set_random_seed(0)
    config = zoo.get_model_spec(args.model).config
    model = _no_end(zoo.build_model(args.model, max_target_length=64))
    try:
        import keras_hub  # noqa: F401

        has_hub = True
    except ImportError:
        has_hub = False
        print("keras-hub not found (make keras-hub): its rows are skipped")
    lines = [
        "| batch | ours cached 8 | ours cached 64 | 64 / 8 | ours uncached 64 | "
        "cached speed-up at 64 | keras-hub cached 64 | ours / keras-hub |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for batch in args.batch:
        r = args.repeats
        short = _ours(model, True, batch, 8, args.xla, r)
        cached = _ours(model, True, batch, 64, args.xla, r)
        uncached = _ours(model, False, batch, 64, args.xla, r)
        hub = _keras_hub(config, batch, 64, args.xla, r) if has_hub else None
        hub_text = "-" if hub is None else f"{1e3 * hub:.2f} ms"
        ratio = "-" if hub is None else f"{cached / hub:.2f}"
        lines.append(
            f"| {batch} | {1e3 * short:.2f} ms | {1e3 * cached:.2f} ms | "
            f"{cached / short:.2f} | {1e3 * uncached:.2f} ms | "
            f"{uncached / cached:.1f}x | {hub_text} | {ratio} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    if args.run:
        translator = keras.saving.load_model(os.path.join(args.run, "model.keras"))
        speeds = {b: _beam_speed(translator, b, args.repeats) for b in (1, 64)}
        text += "\n\nBeam search (4 beams, XLA), first 64 test sentences: " + ", ".join(
            f"{s:.1f} sentences/s at batch {b}" for b, s in speeds.items()
        )
        serving = _serving_speed(translator, args.repeats)
        text += "\n\nSavedModel of the trained translator (4 beams): " + "; ".join(
            f"`{name}` {ms:.1f} ms per sentence at batch 1, {rate:.1f} sentences/s "
            "at batch 64"
            for name, (ms, rate) in serving.items()
        )
        if not args.no_append:
            _append_serving_rows(translator, serving["serving_default"], command)
    print(text)
    if not args.no_append:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        loop = "XLA-compiled" if args.xla else "tf.function"
        with open(RESULTS, "a") as f:
            f.write(
                f"\n## Decoding speed, ms per generated token ({stamp})\n\n"
                f"`{command}` ({loop} loop; {args.model} sizes, source of "
                f"{SOURCE_LENGTH} tokens)\n\nMachine: {machine()}\n\n{text}\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
