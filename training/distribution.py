"""Data-parallel training on several machines, one process per machine.

Every process runs the same command with the cluster in `TF_CONFIG`, as
TensorFlow defines it::

    {"cluster": {"worker": ["host0:port", "host1:port"]},
     "task": {"type": "worker", "index": 0}}

Worker 0 is the chief: it writes the run folder; the others write theirs
under it, in `workers/worker-INDEX`. On the TensorFlow backend the strategy
would be `tf.distribute.MultiWorkerMirroredStrategy` (see below); on the
JAX backend it is `keras.distribution.DataParallel` over the processes of
`jax.distributed.initialize` (its coordinator listens on worker 0's
address; gloo collectives on CPUs). The batch size is the global batch,
split evenly over the workers, and the weights stay the same on every
worker. TensorFlow's `MultiWorkerMirroredStrategy` is refused: Keras 3's
`fit` fails under it with two workers (keras-team/keras#20585).
"""

import contextlib
import json
import os

import keras

from layers.validation import check_choice

STRATEGIES = ("none", "multiworker")
WORKERS_DIR = "workers"


def read_tf_config(environ=None):
    """`(workers, index)` of `TF_CONFIG`: the worker addresses and this one's.

    Raises:
        ValueError: `TF_CONFIG` is missing, not JSON, or not a worker cluster
            with this process's index in it (the message names it).
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG")

    def fail(why):
        return ValueError(
            f"TF_CONFIG must describe the workers and this one, e.g. "
            '{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": '
            f'{{"type": "worker", "index": 0}}}} ({why}). Received: '
            f"TF_CONFIG={text!r}"
        )

    if not text:
        raise fail("it is not set")
    try:
        config = json.loads(text)
        workers = list(config["cluster"]["worker"])
        task = config["task"]
        index = task["index"]
    except (ValueError, KeyError, TypeError) as e:
        raise fail(f"{type(e).__name__}: {e}") from None
    if set(config["cluster"]) != {"worker"}:
        raise fail("only workers are supported: worker 0 is the chief")
    if task.get("type") != "worker" or not isinstance(index, int):
        raise fail("task must be a worker with an integer index")
    if not workers or not 0 <= index < len(workers):
        raise fail(f"index {index} is not in the {len(workers)} workers")
    return workers, index


def start_distribution(strategy):
    """Joins the cluster of `TF_CONFIG`; call before building anything.

    Args:
        strategy: one of `STRATEGIES` (`"none"`: one process, no cluster).

    Returns:
        `(scope, index, num_workers)`: a context manager to build and compile
        the model in, this worker's index (0: the chief) and the number of
        workers.
    """
    check_choice("strategy", strategy, STRATEGIES)
    if strategy == "none":
        return contextlib.nullcontext(), 0, 1
    workers, index = read_tf_config()
    if keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=workers[0],
            num_processes=len(workers),
            process_id=index,
        )
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        scope = contextlib.nullcontext()
    else:
        # keras 3.15.1's `fit` fails under tf.distribute.MultiWorkerMirrored-
        # Strategy with two workers or more (keras-team/keras#20585): its
        # symbolic build reduces a distributed batch, then the train step's
        # metric reduction fails on a scalar.
        raise ValueError(
            "--strategy multiworker runs on the JAX backend "
            "(keras.distribution.DataParallel): Keras 3's fit fails under "
            "TensorFlow's MultiWorkerMirroredStrategy (keras-team/keras#20585). "
            "Set KERAS_BACKEND=jax. Received: "
            f"KERAS_BACKEND={keras.backend.backend()!r}"
        )
    return scope, index, len(workers)


def shard_by_batch(dataset, batch_size, training):
    """`dataset` of global batches, ready for `keras.distribution`'s split.

    `DataParallel` gives each process its share of every global batch, and
    needs the batch size visible in the dataset (it cannot see it through
    a parallel `map`): the batches are remade at the end of the pipeline.
    Training drops a last partial batch (a run takes
    `train_examples // batch_size` steps per epoch), so that every step
    splits evenly over the workers.

    Args:
        dataset: a batched `tf.data.Dataset`.
        batch_size: its (global) batch size.
        training: whether it is the training data.

    Returns:
        The rebatched dataset.
    """
    import tensorflow as tf

    batches = dataset.unbatch().batch(batch_size, drop_remainder=training)
    return batches.prefetch(tf.data.AUTOTUNE)


def worker_output(output, index):
    """The run folder of worker `index`: `output` for the chief (index 0)."""
    return (
        output if index == 0 else os.path.join(output, WORKERS_DIR, f"worker-{index}")
    )
