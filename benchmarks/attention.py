"""Benchmarks `layers.MultiHeadAttention` against `keras.layers.MultiHeadAttention`.

Times the forward pass and forward + backward (gradients of the weights and
the input) in eager mode, under `tf.function` and under XLA
(`jit_compile=True`) on the TensorFlow backend, for batch 8, 8 heads of size 64
(model dim 512), without a mask and with a causal mask. Both layers get the
same weights and inputs; their calls alternate and each time is the median of
several repeats. Each configuration runs in its own subprocess, and the peak
memory of each layer is measured in a fresh subprocess of its own (RSS
high-water mark from `/proc/self/status`, minus the RSS before the call), so
an out-of-memory kill only loses that one entry. Also compares the memory of
`LocalAttention` with full attention at long sequences.

    python benchmarks/attention.py --quick            # small shapes, ~10 min
    python benchmarks/attention.py                    # the full run (long)
    python benchmarks/attention.py --seq 512 1024 --modes function --no-memory

The table is printed and appended to `benchmarks/RESULTS.md`.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BATCH, HEADS, HEAD_DIM = 8, 8, 64
DIM = HEADS * HEAD_DIM
MODES = ("eager", "function", "xla")
PASSES = ("fwd", "fwd+bwd")
MASKS = ("none", "causal")
FULL_SEQS = (128, 256, 512, 1024, 2048, 4096)
POLICIES = {"float32": "float32", "mixed_bfloat16": "bfloat16"}


def attention_flops(seq, causal, backward, batch=BATCH):
    """Useful FLOPs: the four projections plus QK^T and PV (lower half if causal).

    The backward pass is counted as twice the forward.
    """
    projections = 4 * 2 * batch * seq * DIM * DIM
    pairs = seq * (seq + 1) / 2 if causal else seq * seq
    attention = 2 * 2 * batch * HEADS * pairs * HEAD_DIM
    return (projections + attention) * (3 if backward else 1)


# ----------------------------------------------------------------- workers --


def _status_mb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak():
    """Resets the RSS high-water mark (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def _make_layer(kind, seq, policy="float32"):
    import keras

    keras.config.set_dtype_policy(policy)

    if kind == "keras":
        layer = keras.layers.MultiHeadAttention(HEADS, HEAD_DIM)
    else:
        from layers.multi_head_attention import MultiHeadAttention

        layer = MultiHeadAttention(HEADS, HEAD_DIM)
    layer.build((BATCH, seq, DIM), (BATCH, seq, DIM))
    return layer


def _make_step(layer, causal, backward, mode):
    import tensorflow as tf

    def forward(x):
        return layer(x, x, use_causal_mask=causal)

    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(forward(x)))
        return tape.gradient(loss, [x, *layer.trainable_variables])

    step = forward_backward if backward else forward
    if mode == "eager":
        return step
    return tf.function(step, jit_compile=mode == "xla")


def _run(step, x):
    import tensorflow as tf

    return [t.numpy() for t in tf.nest.flatten(step(x))]


def _short_error(error):
    name = type(error).__name__
    if "ResourceExhausted" in name or isinstance(error, MemoryError):
        return "out of memory"
    return name


def worker_time(cfg):
    """Alternating timings of ours and Keras' layer for one configuration.

    A layer whose first call fails (out of memory, say) is reported as such
    and the other one is timed alone.
    """
    import numpy as np
    import tensorflow as tf

    seq, causal = cfg["seq"], cfg["mask"] == "causal"
    backward = cfg["pass"] == "fwd+bwd"
    tf.random.set_seed(0)
    x = tf.random.normal((BATCH, seq, DIM))
    policy = cfg.get("policy", "float32")
    layers = {kind: _make_layer(kind, seq, policy) for kind in ("ours", "keras")}
    layers["ours"].set_weights(layers["keras"].get_weights())
    steps = {k: _make_step(v, causal, backward, cfg["mode"]) for k, v in layers.items()}
    first, errors = {}, {}
    for kind in list(steps):
        try:
            first[kind] = _run(steps[kind], x)
        except Exception as error:  # noqa: BLE001  (reported in the table)
            errors[kind] = _short_error(error)
            del steps[kind]
    diff = None
    if len(first) == 2:
        pairs = list(zip(first["ours"], first["keras"], strict=True))
        scale = max(float(np.max(np.abs(b))) for _, b in pairs) + 1e-12
        diff = max(float(np.max(np.abs(a - b))) for a, b in pairs) / scale
    first.clear()
    times = {kind: [] for kind in steps}
    start = time.perf_counter()
    order = list(steps)
    for rep in range(cfg["repeats"]):
        for kind in order if rep % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            _run(steps[kind], x)
            times[kind].append(time.perf_counter() - t0)
        spent = time.perf_counter() - start
        if rep + 1 >= cfg["min_repeats"] and spent > cfg["budget_s"]:
            break
    result = {"rel_diff": diff, "errors": errors}
    for kind, values in times.items():
        result[f"{kind}_s"] = statistics.median(values)
        result["repeats"] = len(values)
    return result


def worker_memory(cfg):
    """Peak RSS increase of one call of one layer, in a fresh process."""
    import tensorflow as tf

    seq, causal = cfg["seq"], cfg.get("mask") == "causal"
    x = tf.random.normal((cfg.get("batch", BATCH), seq, DIM))
    if cfg["layer"] == "local":
        from layers.local_attention import LocalAttention

        layer = LocalAttention(HEADS, HEAD_DIM, cfg["window"])
        layer.build(x.shape)
        step = tf.function(lambda t: layer(t))
    else:
        layer = _make_layer(cfg["layer"], seq, cfg.get("policy", "float32"))
        step = _make_step(layer, causal, cfg["pass"] == "fwd+bwd", cfg["mode"])
    if hasattr(step, "get_concrete_function"):
        step.get_concrete_function(x)  # trace outside the measurement
    reset = _reset_peak()
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    _run(step, x)
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    return {"peak_mb": peak - before, "reset": reset, "seconds": seconds}


def worker_matmul(cfg):
    """Matmul rate of this machine in `cfg["dtype"]`, from a large `tf.matmul`."""
    import tensorflow as tf

    n = cfg["n"]
    a = tf.cast(tf.random.normal((n, n)), cfg.get("dtype", "float32"))
    matmul = tf.function(lambda t: tf.matmul(t, t))
    matmul(a).numpy()
    times = []
    for _ in range(cfg["repeats"]):
        t0 = time.perf_counter()
        matmul(a).numpy()
        times.append(time.perf_counter() - t0)
    return {"gflops": 2 * n**3 / statistics.median(times) / 1e9}


WORKERS = {"time": worker_time, "memory": worker_memory, "matmul": worker_matmul}


# ------------------------------------------------------------ orchestrator --


def spawn(cfg, timeout):
    """Runs one worker in a fresh interpreter; returns its dict or an error."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    paths = [str(ROOT), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": "timeout"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    if proc.returncode in (-9, 137):
        return {"error": "killed (out of memory?)"}
    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
    if "ResourceExhausted" in tail or "MemoryError" in tail:
        return {"error": "out of memory"}
    return {"error": f"exit {proc.returncode}: {tail[:80]}"}


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


def _fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


def _memory(cfg, kind, args):
    if args.no_memory:
        return None
    result = spawn({**cfg, "kind": "memory", "layer": kind}, args.timeout)
    if "peak_mb" not in result:
        return result.get("error", "?")
    # "~": the high-water mark could not be reset, so it may predate the call.
    return ("" if result["reset"] else "~") + f"{result['peak_mb']:.0f}"


def benchmark_rows(args, peak_gflops):
    rows = []
    header = (
        "| seq | mask | pass | mode | ours ms | keras ms | ours/keras | "
        "ours GFLOP/s | % of matmul | keras GFLOP/s | ours MB | keras MB |"
    )
    rows.append(header)
    rows.append("|" + "---|" * 12)
    print(header, flush=True)
    for seq in args.seq:
        for mask in args.masks:
            for pas in args.passes:
                for mode in args.modes:
                    cfg = {
                        "seq": seq,
                        "mask": mask,
                        "pass": pas,
                        "mode": mode,
                        "policy": args.policy,
                    }
                    timing = spawn(
                        {
                            **cfg,
                            "kind": "time",
                            "repeats": args.repeats,
                            "min_repeats": min(3, args.repeats),
                            "budget_s": args.budget,
                        },
                        args.timeout,
                    )
                    mem_ours = _memory(cfg, "ours", args)
                    mem_keras = _memory(cfg, "keras", args)
                    flops = attention_flops(seq, mask == "causal", pas == "fwd+bwd")
                    errors = timing.get("errors", {})
                    if "error" in timing:
                        errors = {"ours": timing["error"], "keras": timing["error"]}
                    ours, keras_s = timing.get("ours_s"), timing.get("keras_s")
                    cells = [
                        errors.get("ours") or _fmt(_ms(ours), ".1f"),
                        errors.get("keras") or _fmt(_ms(keras_s), ".1f"),
                        "n/a",
                        "",
                        "",
                        "" if keras_s is None else f"{flops / keras_s / 1e9:.0f}",
                    ]
                    if ours is not None:
                        rate = flops / ours / 1e9
                        cells[3] = f"{rate:.0f}"
                        cells[4] = f"{100 * rate / peak_gflops:.0f}%"
                    if ours is not None and keras_s is not None:
                        cells[2] = f"**{ours / keras_s:.2f}**"
                        if timing["rel_diff"] > 1e-3:
                            cells[2] += f" (outputs differ by {timing['rel_diff']:.1e})"
                    cells += [mem_ours or "n/a", mem_keras or "n/a"]
                    row = f"| {seq} | {mask} | {pas} | {mode} | " + " | ".join(cells)
                    rows.append(row + " |")
                    print(rows[-1], flush=True)
    return rows


def local_rows(args):
    """Peak memory of LocalAttention against full attention (forward, batch 1).

    "per token vs first" divides each length's LocalAttention MB per token by
    that of the first length: linear memory keeps it near (or below) 1.0.
    """
    if not (ROOT / "layers" / "local_attention.py").exists():
        return ["LocalAttention skipped: `layers/local_attention.py` not found."]
    available = _meminfo_mb("MemAvailable")
    rows = [
        f"Forward under `tf.function`, batch 1, {HEADS} heads of {HEAD_DIM}, "
        f"LocalAttention window {args.window}; peak RSS increase in MB.",
        "",
        "| tokens | LocalAttention MB | KB per token | per token vs first | "
        "full attention MB | full / local |",
        "|---|---|---|---|---|---|",
    ]
    first_per_token = None
    for seq in args.local_seq:
        common = {"kind": "memory", "seq": seq, "batch": 1, "mode": "function"}
        local = spawn({**common, "layer": "local", "window": args.window}, args.timeout)
        # Full attention keeps about two float32 (heads, seq, seq) tensors alive.
        needed = 2 * HEADS * seq * seq * 4 / 2**20
        if needed > 0.6 * available:
            full = {"error": f"skipped: needs ~{needed / 1024:.0f} GB"}
        else:
            full = spawn(
                {**common, "layer": "ours", "pass": "fwd", "mask": "none"},
                args.timeout,
            )
        local_mb, full_mb = local.get("peak_mb"), full.get("peak_mb")
        per_token = None if local_mb is None else local_mb * 1024 / seq
        if first_per_token is None:
            first_per_token = per_token
        relative = None
        if per_token is not None and first_per_token:
            relative = per_token / first_per_token
        ratio = None
        if local_mb and full_mb is not None:
            ratio = full_mb / local_mb
        cells = [
            local.get("error") or _fmt(local_mb, ".0f"),
            _fmt(per_token, ".1f"),
            _fmt(relative, ".2f"),
            full.get("error") or _fmt(full_mb, ".0f"),
            _fmt(ratio, ".1f"),
        ]
        rows.append(f"| {seq} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    return rows


def _meminfo_mb(field):
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("inf")


def _version(*packages):
    for package in packages:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "?"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes only")
    parser.add_argument("--seq", type=int, nargs="+", help="sequence lengths")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--passes", nargs="+", choices=PASSES, default=list(PASSES))
    parser.add_argument("--masks", nargs="+", choices=MASKS, default=list(MASKS))
    parser.add_argument(
        "--repeats",
        type=int,
        default=50,
        help="at most this many timed calls per layer",
    )
    parser.add_argument(
        "--budget", type=float, default=10.0, help="seconds of timing per config"
    )
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="float32",
        help="Keras dtype policy of both layers (%% of matmul: of its compute dtype)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip peak memory")
    parser.add_argument("--no-local", action="store_true", help="skip LocalAttention")
    parser.add_argument("--local-seq", type=int, nargs="+")
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--no-save", action="store_true", help="don't write RESULTS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seq is None:
        args.seq = [128, 256] if args.quick else list(FULL_SEQS)
    if args.local_seq is None:
        args.local_seq = [1024, 2048] if args.quick else [1024, 4096, 16384]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        cfg = json.loads(args.worker)
        print(json.dumps(WORKERS[cfg["kind"]](cfg)), flush=True)
        return
    started = time.time()
    load_before = os.getloadavg()
    size = 2048 if args.quick else 4096
    rates = {}
    for dtype in ("float32", "bfloat16"):
        matmul = spawn(
            {"kind": "matmul", "n": size, "repeats": 5, "dtype": dtype}, args.timeout
        )
        rates[dtype] = matmul.get("gflops", float("nan"))
        print(f"{dtype} matmul rate: {rates[dtype]:.0f} GFLOP/s", flush=True)
    compute_dtype = POLICIES[args.policy]
    rows = benchmark_rows(args, rates[compute_dtype])
    local = [] if args.no_local else local_rows(args)
    load_after = os.getloadavg()
    lines = [
        f"## MultiHeadAttention benchmark{' (quick)' if args.quick else ''}, "
        f"`{args.policy}`, "
        f"{datetime.datetime.now().isoformat(sep=' ', timespec='minutes')}",
        "",
        f"- machine: {platform.platform()}, {platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}, "
        f"TensorFlow {_version('tensorflow-cpu', 'tensorflow')}, "
        f"Keras {_version('keras')}",
        f"- matmul rates (tf.matmul {size}x{size}): float32 "
        f"{rates['float32']:.0f}, bfloat16 {rates['bfloat16']:.0f} GFLOP/s "
        f"(% of matmul: of {compute_dtype}'s); load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; "
        f"{(time.time() - started) / 60:.0f} min",
        f"- batch {BATCH}, {HEADS} heads of {HEAD_DIM} (dim {DIM}), self-attention; "
        "times are medians of alternating calls (ms); GFLOP/s count the four "
        "projections, QK^T and PV (causal: lower triangle only; backward = 2x "
        "forward); MB = peak RSS increase of one call in a fresh process.",
        "",
        *rows,
        "",
        *local,
        "",
    ]
    if not args.no_save:
        with open(RESULTS, "a") as results:
            results.write("\n" + "\n".join(lines))
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
