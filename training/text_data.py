"""Text-classification datasets by name: raw strings and a vocabulary.

Any tensorflow-datasets dataset with `Text` features and a `label`
`ClassLabel` loads as batches of `(texts tf.string (B,), labels int32 (B,))`:
the project's builders (`training.text_datasets`: `zoo_sst2`,
`zoo_imdb_reviews`, `zoo_ag_news_subset`) and the catalog's (`imdb_reviews`,
...). The vocabulary (`keras.layers.TextVectorization`) is adapted on the
training split only and travels with the model (`zoo.TextClassifier`), which
tokenizes inside its graph.
"""

import keras
import tensorflow as tf
import tensorflow_datasets as tfds

from layers.validation import check_int, check_positive_int
from training.data_source import get_builder, prepare_builder
from training.dataset_error import DatasetError
from training.splits import check_fraction, num_examples, resolve_splits
from training.text_dataset_info import TextDatasetInfo

# Text features joined in this order when a dataset has several (AG News:
# title then description); others follow sorted.
TEXT_ORDER = ("sentence", "text", "title", "description")


def text_features_of(name, builder):
    """The `Text` features of a dataset in join order, and its `ClassLabel`.

    Raises:
        DatasetError: no `Text` feature or no `ClassLabel` `label`.
    """
    features = builder.info.features
    texts = [k for k, f in features.items() if isinstance(f, tfds.features.Text)]
    label = features["label"] if "label" in features.keys() else None
    if not texts or not isinstance(label, tfds.features.ClassLabel):
        raise DatasetError(
            f"Dataset {name!r} is not a text-classification dataset: it needs "
            f"Text features and a ClassLabel `label`; it has {list(features.keys())}."
        )
    known = [k for k in TEXT_ORDER if k in texts]
    return (*known, *sorted(set(texts) - set(known))), label


def build_vectorizer(texts, vocabulary_size):
    """A `TextVectorization` adapted on the string dataset `texts`.

    Args:
        texts: an unbatched `tf.data.Dataset` of strings (the training split).
        vocabulary_size: the most token ids (padding 0 and unknown 1 included).

    Returns:
        The adapted `keras.layers.TextVectorization` (`"int"` mode, output
        padded to the longest text of a batch).
    """
    vectorizer = keras.layers.TextVectorization(
        max_tokens=check_positive_int("vocabulary_size", vocabulary_size),
        output_mode="int",
        name="vectorizer",
    )
    vectorizer.adapt(texts.batch(1024))
    return vectorizer


def _texts(builder, split, features, training, read_config):
    ds = builder.as_dataset(
        split=split, shuffle_files=training, read_config=read_config
    )

    def select(example):
        parts = [example[f] for f in features]
        text = parts[0] if len(parts) == 1 else tf.strings.join(parts, " ")
        return text, tf.cast(example["label"], tf.int32)

    return ds.map(select, num_parallel_calls=tf.data.AUTOTUNE)


def _batched(ds, training, batch_size, seed, shuffle_buffer):
    ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.deterministic = True
    return ds.batch(batch_size).with_options(options).prefetch(tf.data.AUTOTUNE)


def load_text_classification(
    name,
    batch_size=64,
    data_dir=None,
    manual_dir=None,
    seed=0,
    shuffle_buffer=20_000,
    validation_split=None,
    train_split=None,
    test_split=None,
    vocabulary_size=20_000,
    max_length=256,
    adapt=True,
):
    """Loads a text-classification dataset as batched string pipelines.

    Training batches are shuffled (files with `seed`, examples with a
    `shuffle_buffer` reshuffled every epoch); test and validation batches
    keep the file order. The vocabulary is adapted on the training split
    (after the validation split is held out of it).

    Args:
        name: a tensorflow-datasets name with `Text` features and a `label`
            `ClassLabel`, e.g. `"zoo_sst2"`.
        batch_size: examples per batch.
        data_dir: where prepared datasets live (default `$TFDS_DATA_DIR`).
        manual_dir: folder of the original files (default `$ZOO_MANUAL_DIR`),
            e.g. `../shared/data/sst2`.
        seed: seed of the shuffles.
        shuffle_buffer: size of the example shuffle buffer.
        validation_split: optional fraction in (0, 1) of the training split
            held out (its last examples) as `info.validation_ds`.
        train_split: tfds split read for training (default `"train"`).
        test_split: tfds split read for testing (default `"test"`, else
            `"validation"`, else the last 10% of the training split).
        vocabulary_size: the most token ids of the vocabulary.
        max_length: the most tokens of a text that a model reads (recorded in
            `info`; `zoo.TextClassifier` truncates at it).
        adapt: build the vocabulary (`False` to evaluate a saved model, which
            holds its own: `info.vectorizer` is then `None`).

    Returns:
        `(train_ds, test_ds, info)`: batches of `(texts (B,) tf.string,
        labels (B,) int32)`, and a `TextDatasetInfo`.

    Raises:
        DatasetError: unknown or unsuitable dataset, or data missing.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    shuffle_buffer = check_positive_int("shuffle_buffer", shuffle_buffer)
    vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
    max_length = check_positive_int("max_length", max_length)
    validation_split = check_fraction(validation_split)
    seed = check_int("seed", seed)
    builder = get_builder(name, data_dir)
    features, label = text_features_of(name, builder)
    builder = prepare_builder(builder, name, manual_dir)
    train_split, test_split, val_split = resolve_splits(
        builder, train_split, test_split, validation_split
    )
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    train = _texts(builder, train_split, features, True, read_config)
    vectorizer = None
    if adapt:
        texts = train.map(lambda text, _: text)
        vectorizer = build_vectorizer(texts, vocabulary_size)
    args = (batch_size, seed, shuffle_buffer)
    train_ds = _batched(train, True, *args)
    test = _texts(builder, test_split, features, False, read_config)
    test_ds = _batched(test, False, *args)
    val_ds = None
    if val_split is not None:
        val = _texts(builder, val_split, features, False, read_config)
        val_ds = _batched(val, False, *args)
    info = TextDatasetInfo(
        name=builder.name,
        num_classes=int(label.num_classes),
        class_names=tuple(label.names),
        text_features=features,
        vectorizer=vectorizer,
        vocabulary_size=int(vectorizer.vocabulary_size()) if vectorizer else 0,
        max_length=max_length,
        train_examples=num_examples(train_split, builder),
        test_examples=num_examples(test_split, builder),
        validation_examples=0
        if val_split is None
        else num_examples(val_split, builder),
        train_split=train_split,
        test_split=test_split,
        validation_split=val_split,
        validation_ds=val_ds,
    )
    return train_ds, test_ds, info
