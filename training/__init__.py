"""Training: tfds data, optimizers and schedules, precision, fitting, tuning.

Names are imported lazily, so `import training.fit` does not load
tensorflow-datasets or keras-tuner.
"""

import importlib

_EXPORTS = {
    "AtomicBackupAndRestore": "training.atomic_backup_and_restore",
    "BackupError": "training.backup_error",
    "DatasetError": "training.dataset_error",
    "DatasetInfo": "training.dataset_info",
    "load_image_classification": "training.data",
    "augment_dataset": "training.augmentation",
    "optimizer_arguments": "training.recipes",
    "prepare": "training.data_source",
    "build_optimizer": "training.optimizers",
    "build_schedule": "training.schedules",
    "LinearWarmup": "training.linear_warmup",
    "WarmupCosineDecay": "training.warmup_cosine_decay",
    "set_precision": "training.precision",
    "compile_model": "training.fit",
    "fit_model": "training.fit",
    "resolve_jit_compile": "training.fit",
    "StopOnNonFiniteLoss": "training.stop_on_non_finite_loss",
    "TrainingDivergedError": "training.training_diverged_error",
    "tune": "training.tuning",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'training' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__():
    return __all__
