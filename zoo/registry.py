"""Model registry: named variants are data (builder arguments), as in timm."""

import copy
import dataclasses
import difflib
import fnmatch
import inspect
from collections.abc import Callable, Mapping
from typing import Any

TASKS = (
    "image_classification",
    "text_classification",
    "translation",
    "headline_generation",
    "object_detection",
    "reinforcement_learning",
)
# Tasks whose models predict a token per target step (labels padded with 0)
# and decode with `zoo.seq2seq`.
SEQ2SEQ_TASKS = ("translation", "headline_generation")

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model variant.

    Args:
        name: the variant name, e.g. `"cbam_cnn_small"`.
        task: one of `TASKS`.
        family: the architecture family, e.g. `"cbam_cnn"`.
        builder: function returning an uncompiled `keras.Model` from `config`
            (it also takes `name`, the model's name, which defaults to the
            variant name).
        config: dict of all the builder's arguments for this variant.
        search_space: `search_space(hp, config, optimizer) -> (model_args,
            optimizer_args)`, mapping hyperparameters to `build_model` and
            `build_optimizer` arguments; its defaults are `config` and
            `optimizer` (the default `build_optimizer` arguments).
        training: dict of recommended training settings: `"optimizer"` (the
            `training.optimizers.build_optimizer` arguments), `"epochs"`,
            `"batch_size"` (tuned on MNIST) and `"augmentation"` (the
            `training.augmentation` settings of the training data); see
            `recommended_training`.
    """

    name: str
    task: str
    family: str
    builder: Callable
    config: dict
    search_space: Callable | None = None
    training: dict = dataclasses.field(default_factory=dict)


def _check_task(task):
    if task not in TASKS:
        raise ValueError(
            f"Argument `task` must be one of {list(TASKS)}. Received: task={task!r}"
        )


def register_model(
    name, *, task, family, builder, config, search_space=None, training=None
):
    """Registers a variant: `build_model(name)` calls `builder(**config)`.

    Args:
        name: unique variant name.
        task: one of `TASKS`.
        family: the architecture family.
        builder: the family's builder function.
        config: builder arguments of this variant (every one must be a
            parameter of `builder`); the builder's defaults fill in the rest,
            so `spec.config` holds every argument.
        search_space: the family's search-space function (see `ModelSpec`).
        training: recommended training settings (see `ModelSpec`).

    Returns:
        The registered `ModelSpec`.
    """
    _check_task(task)
    if name in _REGISTRY:
        raise ValueError(f"A model named {name!r} is already registered.")
    check_builder_arguments(name, builder, config, "config")
    defaults = {
        key: param.default
        for key, param in inspect.signature(builder).parameters.items()
        if key != "name" and param.default is not inspect.Parameter.empty
    }
    spec = ModelSpec(
        name=name,
        task=task,
        family=family,
        builder=builder,
        config=merged_config(defaults, config),
        search_space=search_space,
        training=copy.deepcopy(dict(training or {})),
    )
    _REGISTRY[name] = spec
    return spec


def check_builder_arguments(name, builder, arguments, label):
    """Raises a `ValueError` naming the `arguments` that `builder` does not take."""
    params = inspect.signature(builder).parameters
    unknown = sorted(set(arguments) - set(params))
    if unknown:
        raise ValueError(
            f"Unknown {label} for model {name!r}: {unknown}. "
            f"Valid arguments: {sorted(params)}"
        )


def get_model_spec(name):
    """Returns the `ModelSpec` of `name` (a copy: changing it changes nothing).

    Raises:
        ValueError: if `name` is not registered (the message lists close
            matches).
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean one of {close}?" if close else ""
        raise ValueError(
            f"Unknown model name: {name!r}.{hint} See `zoo.list_models()`."
        )
    spec = _REGISTRY[name]
    return dataclasses.replace(
        spec,
        config=copy.deepcopy(spec.config),
        training=copy.deepcopy(spec.training),
    )


def list_models(task=None, pattern=None):
    """Sorted names of the registered models.

    Args:
        task: optional task name (one of `TASKS`) to filter on.
        pattern: optional glob (`fnmatch`), e.g. `"vit_*"` or `"*_tiny"`.

    Returns:
        A sorted list of names.
    """
    if task is not None:
        _check_task(task)
    names = (n for n, s in _REGISTRY.items() if task is None or s.task == task)
    if pattern is not None:
        names = (n for n in names if fnmatch.fnmatchcase(n, pattern))
    return sorted(names)


def build_model(name, /, **overrides):
    """Builds the uncompiled `keras.Model` of variant `name`.

    Args:
        name: a registered name (see `list_models()`), positional only.
        **overrides: builder arguments replacing the variant's, e.g.
            `input_shape=(32, 32, 3), num_classes=100`, or `name="my_model"`
            (the Keras model's name; default the variant name).

    Returns:
        An uncompiled functional `keras.Model`.
    """
    spec = get_model_spec(name)
    check_builder_arguments(name, spec.builder, overrides, "override")
    config = merged_config({"name": spec.name, **spec.config}, overrides)
    return spec.builder(**config)


def merged_config(config: Mapping[str, Any], overrides: Mapping[str, Any]):
    """`config` updated with `overrides` (a new dict)."""
    merged = copy.deepcopy(dict(config))
    merged.update(copy.deepcopy(dict(overrides)))
    return merged


def register_variants(variants, training, **kwargs):
    """Registers every `name: config` of `variants` with the same family data.

    Args:
        variants: dict of variant name to builder arguments.
        training: dict of variant name to training settings.
        **kwargs: the other `register_model` arguments (`task`, `family`,
            `builder`, `search_space`).
    """
    for name, config in variants.items():
        register_model(name, config=config, training=training.get(name), **kwargs)


# MNIST's 60,000 training images at batch 128.
MNIST_STEPS_PER_EPOCH = 469


def recommended_training(
    epochs,
    learning_rate,
    warmup_steps,
    batch_size=128,
    steps_per_epoch=MNIST_STEPS_PER_EPOCH,
    augmentation=None,
    **optimizer,
):
    """A variant's recommended training settings: Adam with warm-up and cosine.

    The cosine decay (counted after the warm-up) ends with the last step of
    `epochs` epochs of `steps_per_epoch` steps; a run of another length refits
    it (`training.recipes.optimizer_arguments`).

    Args:
        epochs: recommended number of epochs.
        learning_rate: peak learning rate.
        warmup_steps: steps of linear warm-up.
        batch_size: recommended batch size.
        steps_per_epoch: steps per epoch of the dataset the settings were
            tuned on (default MNIST at batch 128).
        augmentation: dict of `training.augmentation` settings, or `None`.
        **optimizer: other `build_optimizer` arguments (e.g. `global_clipnorm`).

    Returns:
        The `training` dict of `register_model`: `epochs`, `batch_size`,
        `optimizer` (`build_optimizer` arguments) and `augmentation`.
    """
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": {
            "name": "adam",
            "learning_rate": learning_rate,
            "schedule": "cosine",
            "warmup_steps": warmup_steps,
            "decay_steps": steps_per_epoch * epochs - warmup_steps,
            **optimizer,
        },
        "augmentation": dict(augmentation or {}),
    }
