"""The ensemble of a keras-tuner search's best trials."""

from layers.validation import check_positive_int
from zoo.ensemble.model import build_ensemble


def ensemble_from_tuner(tuner, k, method="mean", validation_data=None, name=None):
    """Builds the ensemble of the `k` best models of a search.

    Args:
        tuner: a `keras_tuner` tuner after its search (or any object with
            `get_best_models(k)` returning `keras.Model`s, best first).
        k: positive int, how many of the best trials to ensemble (fewer when
            the search has fewer trials).
        method: `"mean"` or `"fitted"` (see `build_ensemble`; `"weighted"`
            would need weights for trials not yet ranked).
        validation_data: with `method="fitted"`, the data to fit the weights
            on (see `build_ensemble`).
        name: the ensemble's name (default `"ensemble"`).

    Returns:
        An uncompiled functional `keras.Model` (see `build_ensemble`); its
        members are clones of the trials' models, in rank order.

    Raises:
        ValueError: a bad `k` or `method`, or a search with no model.
    """
    k = check_positive_int("k", k)
    if method not in ("mean", "fitted"):
        raise ValueError(
            f"Argument `method` must be one of ['fitted', 'mean']. "
            f"Received: method={method!r}"
        )
    models = list(tuner.get_best_models(k))
    if not models:
        raise ValueError(f"The tuner has no trained trial to ensemble. Received: k={k}")
    return build_ensemble(
        models,
        method=method,
        validation_data=validation_data,
        name=name or "ensemble",
    )
