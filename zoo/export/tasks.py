"""Serving signatures per task: supporting a task means one builder here."""

from zoo.export.image_classification import image_classification_signatures
from zoo.export.object_detection import object_detection_signatures
from zoo.export.policy import policy_signatures
from zoo.export.seq2seq import seq2seq_signatures
from zoo.export.text_classification import text_classification_signatures

# task -> builder(model) -> list of `ServingSignature`.
SIGNATURE_BUILDERS = {
    "image_classification": image_classification_signatures,
    "text_classification": text_classification_signatures,
    "translation": seq2seq_signatures,
    "headline_generation": seq2seq_signatures,
    "object_detection": object_detection_signatures,
    "reinforcement_learning": policy_signatures,
}


def serving_signatures(model, task):
    """The `ServingSignature`s of `model` for `task`.

    Args:
        model: a `keras.Model` (TensorFlow backend) following the task's
            input and output contract.
        task: a key of `SIGNATURE_BUILDERS`.

    Returns:
        A list of `ServingSignature`; the first is `serving_default`.
    """
    if task not in SIGNATURE_BUILDERS:
        raise ValueError(
            f"Argument `task` must be one of {sorted(SIGNATURE_BUILDERS)} (tasks "
            f"with serving signatures). Received: task={task!r}"
        )
    signatures = list(SIGNATURE_BUILDERS[task](model))
    names = [s.name for s in signatures]
    if not names or names[0] != "serving_default" or len(set(names)) != len(names):
        raise ValueError(
            f"The signature builder of task {task!r} must return unique names "
            f"starting with 'serving_default'. Received: {names}"
        )
    return signatures
