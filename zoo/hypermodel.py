"""A registered model as a keras-tuner search space."""

import keras_tuner

from layers.validation import check_positive_int
from training.choices import SCHEDULES
from training.fit import compile_model, sequence_loss
from training.optimizers import build_optimizer
from training.recipes import default_step_boundaries, optimizer_arguments
from zoo.detection.losses import centernet_losses
from zoo.registry import (
    SEQ2SEQ_TASKS,
    build_model,
    check_builder_arguments,
    get_model_spec,
    merged_config,
)

DETECTION_TASK = "object_detection"


class ZooHyperModel(keras_tuner.HyperModel):
    """Search space of a registered model and its optimizer.

    `build(hp)` asks the family's search space for `build_model` and
    `build_optimizer` arguments, builds the model, and compiles it with
    `training.fit.compile_model`. The search space's defaults are the
    variant's config (with `overrides`) and its recommended optimizer settings,
    so default hyperparameters reproduce `build_model(model_name, **overrides)`;
    `hp.Fixed(...)` set before `build` pins a value. With `train_steps`, each
    trial's optimizer settings are fitted to a run of that many steps the way
    `zoo train` fits them (`training.recipes.optimizer_arguments`: the warm-up
    capped at a tenth of the run, the decay ending with its last step).

    Args:
        model_name: a registered name (see `zoo.list_models()`).
        overrides: dict of `build_model` arguments that replace the variant's
            (and become the search space's defaults).
        optimizer_args: dict of `build_optimizer` arguments that replace the
            variant's recommended ones (e.g. `decay_steps` for another
            dataset).
        jit_compile: passed to `compile_model`.
        train_steps: optional positive int, optimizer steps of each trial.
        name: name of the hypermodel (defaults to `model_name`).
        tunable: see `keras_tuner.HyperModel`.
    """

    def __init__(
        self,
        model_name,
        overrides=None,
        optimizer_args=None,
        jit_compile="auto",
        train_steps=None,
        name=None,
        tunable=True,
    ):
        spec = get_model_spec(model_name)
        if spec.search_space is None:
            raise ValueError(
                f"Model {model_name!r} has no search space. "
                f"Received: model_name={model_name!r}"
            )
        overrides = dict(overrides or {})
        check_builder_arguments(model_name, spec.builder, overrides, "override")
        super().__init__(name=name or model_name, tunable=tunable)
        self.model_name = model_name
        self.overrides = overrides
        self.optimizer_args = dict(optimizer_args or {})
        self.jit_compile = jit_compile
        self.train_steps = check_positive_int("train_steps", train_steps, True)

    def search_space(self, hp):
        """Returns `(model_args, optimizer_args)` for `hp` (registers its entries)."""
        spec = get_model_spec(self.model_name)
        config = merged_config(spec.config, self.overrides)
        optimizer = spec.training.get("optimizer", {})
        optimizer = merged_config(optimizer, self.optimizer_args)
        model_args, optimizer_args = spec.search_space(hp, config, optimizer)
        return merged_config(self.overrides, model_args), optimizer_args

    def build(self, hp):
        model_args, optimizer_args = self.search_space(hp)
        model = build_model(self.model_name, **model_args)
        if self.train_steps is not None:
            optimizer_args = optimizer_arguments(optimizer_args, self.train_steps)
        optimizer = build_optimizer(**optimizer_args)
        task = get_model_spec(self.model_name).task
        if task == DETECTION_TASK:
            # Heatmap, size and offset outputs: CenterNet's weighted losses.
            return compile_model(
                model,
                optimizer,
                metrics=[],
                jit_compile=self.jit_compile,
                **centernet_losses(),
            )
        # Seq2seq labels are padded with 0, which the loss must skip.
        loss = sequence_loss() if task in SEQ2SEQ_TASKS else None
        compile_model(model, optimizer, loss=loss, jit_compile=self.jit_compile)
        return model


def choice(hp, name, candidates, default):
    """`hp.Choice` over `candidates` plus `default` (sorted), defaulting to it."""
    values = sorted(set(candidates) | {default})
    return hp.Choice(name, values, default=default)


def optimizer_search_space(hp, defaults):
    """Maps `hp` to `build_optimizer` arguments; the defaults are `defaults`.

    Tunes the learning rate (log scale), its schedule and warm-up, and global
    gradient-norm clipping (0.0 means none). A `"step"` schedule without
    `step_boundaries` decays at 1/2 and 3/4 of `decay_steps`. Other entries of
    `defaults` pass through unchanged. `ZooHyperModel` fits the result to the
    trial's length.

    Args:
        hp: a `keras_tuner.HyperParameters`.
        defaults: dict of `build_optimizer` arguments.

    Returns:
        A new dict of `build_optimizer` arguments.
    """
    args = dict(defaults)
    lr = float(args.get("learning_rate", 1e-3))
    args["learning_rate"] = hp.Float(
        "learning_rate", min(1e-4, lr), max(1e-2, lr), sampling="log", default=lr
    )
    schedule = args.get("schedule", "constant")
    args["schedule"] = hp.Choice("schedule", list(SCHEDULES), default=schedule)
    warmup = int(args.get("warmup_steps", 0))
    args["warmup_steps"] = choice(hp, "warmup_steps", [0, 100, 500], warmup)
    decay = args.get("decay_steps")
    if args["schedule"] == "step" and not args.get("step_boundaries") and decay:
        args["step_boundaries"] = default_step_boundaries(decay)
    clip = args.get("global_clipnorm")
    clip = choice(hp, "global_clipnorm", [0.0, 1.0, 5.0], float(clip or 0.0))
    args["global_clipnorm"] = clip or None
    return args
