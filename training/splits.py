"""Split specs of tfds datasets: resolving defaults, holding out fractions."""

import tensorflow_datasets as tfds

from training.dataset_error import DatasetError

# Held out as the test set of a dataset that has no test or validation split.
TEST_FRACTION = 0.1


def read_parts(spec, builder):
    """`[(split_name, start, stop), ...]` read by split spec `spec`."""
    splits = builder.info.splits
    try:
        parts = tfds.core.ReadInstruction.from_spec(spec).to_absolute(splits)
    except (ValueError, KeyError, AssertionError) as e:
        raise DatasetError(
            f"Invalid split {spec!r} for dataset {builder.name!r} (splits: "
            f"{sorted(splits)}): {e}"
        ) from None
    return [
        (
            p.splitname,
            p.from_ or 0,
            splits[p.splitname].num_examples if p.to is None else p.to,
        )
        for p in parts
    ]


def num_examples(spec, builder):
    """Number of examples that split spec `spec` reads."""
    return sum(stop - start for _, start, stop in read_parts(spec, builder))


def split_off(spec, fraction, builder):
    """Divides split `spec` into `(kept, held_out)` specs, holding out the last
    `fraction` of its examples (at least one)."""
    parts = read_parts(spec, builder)
    if len(parts) != 1:
        raise DatasetError(
            f"Split {spec!r} must read one split to be divided. Received: {spec!r}"
        )
    split, start, stop = parts[0]
    held = max(1, int(round((stop - start) * fraction)))
    if held >= stop - start:
        raise DatasetError(
            f"Split {spec!r} has {stop - start} examples: too few to hold out "
            f"{fraction:.0%} of them."
        )
    cut = stop - held
    return f"{split}[{start}:{cut}]", f"{split}[{cut}:{stop}]"


def resolve_splits(builder, train_split, test_split, validation_split):
    """`(train, test, validation)` split specs of a load.

    `train_split` defaults to `"train"`; `test_split` to `"test"`, else
    `"validation"`, else the last 10% of the training split; a
    `validation_split` fraction is held out from the end of the training
    split (`None`: no validation split).
    """
    splits = builder.info.splits
    train_split = train_split or "train"
    if test_split is None:
        test_split = next((s for s in ("test", "validation") if s in splits), None)
        if test_split is None:
            train_split, test_split = split_off(train_split, TEST_FRACTION, builder)
    val_split = None
    if validation_split is not None:
        train_split, val_split = split_off(train_split, validation_split, builder)
    return train_split, test_split, val_split


def check_fraction(validation_split):
    """`validation_split` as a float in (0, 1), or `None`."""
    if validation_split is None:
        return None
    if (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, (int, float))
        or not 0.0 < validation_split < 1.0
    ):
        raise ValueError(
            "Argument `validation_split` must be a float in (0, 1) or None. "
            f"Received: validation_split={validation_split!r}"
        )
    return float(validation_split)
