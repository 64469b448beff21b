"""What `export_model` wrote: the SavedModel's path and its signatures."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    """A SavedModel written by `export_model`.

    Args:
        name: the model name (the registered name, or the Keras model's name).
        path: the SavedModel directory, `.../NAME/VERSION`.
        task: the task whose signatures were written.
        model: the exported `keras.Model` (with the loaded weights).
        signatures: the `ServingSignature`s written, `serving_default` first.
    """

    name: str
    path: str
    task: str
    model: object
    signatures: tuple
