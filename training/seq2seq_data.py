"""Sequence-to-sequence datasets by name: token ids for teacher forcing.

Any tensorflow-datasets dataset with two `Text` features loads as batches of
`({"source": int32 (B, S), "target": int32 (B, T)}, int32 (B, T))`: the
source's token ids, the decoder input `[START] y1 .. yn` and the labels
`y1 .. yn [END]` (the decoder input shifted by one). Translation datasets
(`tfds.features.Translation`, e.g. the project's `zoo_anki_fra_eng`) read
their supervised keys (English -> French); AG News (`zoo_ag_news_subset`,
the topic classifier's split) reads `description` -> `title`, headline
generation.

Tokenization is `zoo.seq2seq.text`'s (punctuation split off, whitespace
split), with one vocabulary per side built on the training split only (the
validation split held out first). Each batch is padded with 0 to its own
longest sequence, not to `max_*_length`: Tatoeba's sentences average 7-8
tokens, and shuffled batches of 64 pad to 16-19 on average against a maximum
of 32: about half the work of batches padded to the maximum (a quarter for
attention, which grows with the square of the length), and on CPU work is
time. Keras' `fit` traces a shape-generic function after the first few
shapes; XLA-compiled training would want fixed lengths instead.
"""

import tensorflow as tf
import tensorflow_datasets as tfds

from layers.validation import check_int, check_positive_int
from training.data_source import get_builder, prepare_builder
from training.dataset_error import DatasetError
from training.seq2seq_dataset_info import Seq2SeqDatasetInfo
from training.splits import check_fraction, num_examples, resolve_splits
from zoo.seq2seq import text

# Source and target of datasets whose supervised keys are not two texts.
DEFAULT_FEATURES = {
    "zoo_ag_news_subset": ("description", "title"),
    "ag_news_subset": ("description", "title"),
}
# Training examples read (and tokenized) per step, before they are shuffled.
_READ_BATCH = 1024


def seq2seq_features_of(name, builder, source_feature=None, target_feature=None):
    """The `(source, target)` `Text` features a load of `builder` reads.

    Defaults: `DEFAULT_FEATURES`, else the supervised keys when both are
    `Text` features (a `Translation`'s languages are).

    Args:
        name: the dataset name, for messages.
        builder: its `tfds.core.DatasetBuilder`.
        source_feature: a `Text` feature, or `None` for the default.
        target_feature: a `Text` feature, or `None` for the default.

    Returns:
        `(source_feature, target_feature)`.

    Raises:
        DatasetError: no two `Text` features, no default, or a feature that
            is not one of them.
        ValueError: the same feature on both sides.
    """
    features = builder.info.features
    texts = [k for k, f in features.items() if isinstance(f, tfds.features.Text)]
    if len(texts) < 2:
        raise DatasetError(
            f"Dataset {name!r} is not a sequence-to-sequence dataset: it needs two "
            f"Text features (or a Translation); it has {list(features.keys())}."
        )
    keys = builder.info.supervised_keys
    defaults = DEFAULT_FEATURES.get(builder.name)
    if defaults is None and keys and all(k in texts for k in keys[:2]):
        defaults = tuple(keys[:2])
    chosen = []
    for i, (arg, value) in enumerate(
        (("source_feature", source_feature), ("target_feature", target_feature))
    ):
        if value is None and defaults is None:
            raise DatasetError(
                f"Dataset {name!r} has no default {arg.split('_')[0]}: pass "
                f"`{arg}`, one of its Text features {texts}."
            )
        value = defaults[i] if value is None else value
        if value not in texts:
            raise DatasetError(
                f"Argument `{arg}` must be a Text feature of dataset {name!r}, "
                f"one of {texts}. Received: {arg}={value!r}"
            )
        chosen.append(value)
    if chosen[0] == chosen[1]:
        raise ValueError(
            "Arguments `source_feature` and `target_feature` must differ. "
            f"Received: source_feature={chosen[0]!r}, target_feature={chosen[1]!r}"
        )
    return tuple(chosen)


def is_french(feature):
    """Whether feature `feature` holds French (`"fr"`, `"fr-CA"`, ...)."""
    return feature.lower().replace("_", "-").split("-")[0] == "fr"


def shift_targets(target_ids, max_target_length):
    """Decoder inputs and labels of teacher forcing, from target token ids.

    Args:
        target_ids: int32 `tf.RaggedTensor` `(B, None)`, `y1 .. yn` per row.
        max_target_length: the most tokens kept of each (from the start).

    Returns:
        `(decoder_input, labels)`, ragged int32 `(B, None)`:
        `[START] y1 .. yn` and `y1 .. yn [END]`, both cut at
        `max_target_length` (a cut label has no `END`).
    """
    rows = target_ids.nrows()
    start = tf.fill([rows, 1], tf.constant(text.START_ID, tf.int32))
    end = tf.fill([rows, 1], tf.constant(text.END_ID, tf.int32))
    full = tf.concat([start, target_ids, end], axis=1)
    return full[:, :-1][:, :max_target_length], full[:, 1:][:, :max_target_length]


def _ragged_ids(vectorizer, texts, lowercase):
    """Token ids of `texts` without padding (id 0 is never a word)."""
    ids = text.tokenize(vectorizer, texts, lowercase)
    return tf.RaggedTensor.from_tensor(ids, padding=0)


def _pairs(builder, split, features, training, read_config, batch_size):
    """Batches of `(source, target)` strings of `split`, tf.string `(B,)`.

    Selected after batching: a `map` per example costs more than the whole
    tokenization of a batch.
    """
    ds = builder.as_dataset(
        split=split, shuffle_files=training, read_config=read_config
    )
    source, target = features
    return ds.batch(batch_size).map(lambda ex: (ex[source], ex[target]))


def _encoder(vectorizers, lowercase, max_lengths):
    """A function of string batches to ragged `(source, decoder input, labels)`."""
    source_vectorizer, target_vectorizer = vectorizers
    max_source_length, max_target_length = max_lengths

    def encode(sources, targets):
        source = _ragged_ids(source_vectorizer, sources, lowercase[0])
        target = _ragged_ids(target_vectorizer, targets, lowercase[1])
        decoder_input, labels = shift_targets(target, max_target_length)
        return source[:, :max_source_length], decoder_input, labels

    return encode


def _model_batch(source, decoder_input, labels):
    """`({"source", "target"}, labels)`, as the model's `fit` takes them."""
    return {"source": source, "target": decoder_input}, labels


def _options():
    options = tf.data.Options()
    options.deterministic = True
    return options


def _training_batches(pairs, encode, batch_size, seed, shuffle_buffer):
    """Shuffled batches, each 0-padded to its longest sequences.

    Tokenized once (by batches of strings), cached by example, reshuffled
    every epoch with `seed`.
    """

    def dense(*ids):
        return tuple(tf.reshape(x, [-1]) for x in ids)  # rows: plain tensors

    ds = pairs.map(encode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    ds = ds.map(dense).cache()
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.padded_batch(batch_size).map(_model_batch)
    return ds.with_options(_options()).prefetch(tf.data.AUTOTUNE)


def _evaluation_batches(pairs, encode):
    """The batches of `pairs` in order, tokenized once (cached), 0-padded."""

    def padded(sources, targets):
        return _model_batch(*(ids.to_tensor() for ids in encode(sources, targets)))

    ds = pairs.map(padded, num_parallel_calls=tf.data.AUTOTUNE).cache()
    return ds.with_options(_options()).prefetch(tf.data.AUTOTUNE)


def _texts(pairs):
    """The batches of `pairs`, whitespace-normalised."""

    def normalize(sources, targets):
        return text.normalize_spaces(sources), text.normalize_spaces(targets)

    ds = pairs.map(normalize)
    return ds.with_options(_options()).prefetch(tf.data.AUTOTUNE)


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(
            f"Argument `{name}` must be True or False. Received: {name}={value!r}"
        )
    return value


def _vectorizers(source_vectorizer, target_vectorizer, adapt):
    """The vectorizers given, checked (`None` where not given)."""
    given = {
        "source_vectorizer": source_vectorizer,
        "target_vectorizer": target_vectorizer,
    }
    for arg, vectorizer in given.items():
        if vectorizer is not None:
            text.check_vocabulary(arg, vectorizer)
    if not adapt and (source_vectorizer is None) != (target_vectorizer is None):
        missing = next(arg for arg, v in given.items() if v is None)
        raise ValueError(
            "With `adapt=False`, pass both `source_vectorizer` and "
            f"`target_vectorizer`, or neither. Received: {missing}=None"
        )
    return source_vectorizer, target_vectorizer


def _adapted(vectorizer, texts, vocabulary_size, lowercase, side):
    """`vectorizer`, or a vocabulary built on `texts` when it is `None`."""
    if vectorizer is not None:
        return vectorizer
    return text.build_vocabulary(
        texts, vocabulary_size, lowercase, name=f"{side}_vectorizer"
    )


def _vocabulary_size(vectorizer):
    return 0 if vectorizer is None else int(vectorizer.vocabulary_size())


def load_seq2seq(
    name,
    source_feature=None,
    target_feature=None,
    batch_size=64,
    data_dir=None,
    manual_dir=None,
    seed=0,
    shuffle_buffer=20_000,
    validation_split=None,
    train_split=None,
    test_split=None,
    source_vocabulary_size=15_000,
    target_vocabulary_size=15_000,
    max_source_length=32,
    max_target_length=32,
    source_lowercase=True,
    target_lowercase=False,
    adapt=True,
    source_vectorizer=None,
    target_vectorizer=None,
):
    """Loads a sequence-to-sequence dataset as batches of token ids.

    Training batches are shuffled (files with `seed`, examples with a
    `shuffle_buffer` reshuffled every epoch); test and validation batches
    keep the stored order, that of `info.test_texts`. Each batch is padded
    with 0 to its longest sequence (see the module's docstring).

    Args:
        name: a tensorflow-datasets name with two `Text` features, e.g.
            `"zoo_anki_fra_eng"` or `"zoo_ag_news_subset"`.
        source_feature: the feature read as the source (default: the
            supervised keys' first; `"description"` for AG News).
        target_feature: the feature read as the target (default: the
            supervised keys' second; `"title"` for AG News).
        batch_size: examples per batch.
        data_dir: where prepared datasets live (default `$TFDS_DATA_DIR`).
        manual_dir: folder of the original files (default `$ZOO_MANUAL_DIR`),
            e.g. `../shared/data/anki_fra_eng`.
        seed: seed of the shuffles.
        shuffle_buffer: size of the example shuffle buffer.
        validation_split: optional fraction in (0, 1) of the training split
            held out (its last examples) as `info.validation_ds`.
        train_split: tfds split read for training (default `"train"`).
        test_split: tfds split read for testing (default `"test"`, else
            `"validation"`, else the last 10% of the training split).
        source_vocabulary_size: the most ids of the source vocabulary (the
            reserved `""`, `[UNK]`, `[START]`, `[END]` included).
        target_vocabulary_size: the same for the target.
        max_source_length: source tokens kept (the first).
        max_target_length: decoder input and label tokens kept (the first).
        source_lowercase: lower-case the sources before tokenizing.
        target_lowercase: lower-case the targets (off: the decoder writes
            cased text, compared as is with the references).
        adapt: build the vocabularies that are not given. With `False` and no
            vectorizers only `info.test_texts` is loaded (to evaluate a saved
            model, which holds its own vocabularies): the datasets are `None`.
        source_vectorizer: a source vocabulary to use as is (from
            `zoo.seq2seq.text.build_vocabulary`, e.g. a saved model's).
        target_vectorizer: the same for the target.

    Returns:
        `(train_ds, test_ds, info)`: batches of `({"source": int32 (B, S),
        "target": int32 (B, T)}, int32 (B, T))`, and a `Seq2SeqDatasetInfo`.

    Raises:
        DatasetError: unknown or unsuitable dataset, or data missing.
        ValueError: a bad argument (named, with the value received).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    shuffle_buffer = check_positive_int("shuffle_buffer", shuffle_buffer)
    sizes = (
        text.check_vocabulary_size("source_vocabulary_size", source_vocabulary_size),
        text.check_vocabulary_size("target_vocabulary_size", target_vocabulary_size),
    )
    max_lengths = (
        check_positive_int("max_source_length", max_source_length),
        check_positive_int("max_target_length", max_target_length),
    )
    lowercase = (
        _check_bool("source_lowercase", source_lowercase),
        _check_bool("target_lowercase", target_lowercase),
    )
    adapt = _check_bool("adapt", adapt)
    validation_split = check_fraction(validation_split)
    seed = check_int("seed", seed)
    vectorizers = _vectorizers(source_vectorizer, target_vectorizer, adapt)
    builder = get_builder(name, data_dir)
    features = seq2seq_features_of(name, builder, source_feature, target_feature)
    builder = prepare_builder(builder, name, manual_dir)
    train_split, test_split, val_split = resolve_splits(
        builder, train_split, test_split, validation_split
    )
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)

    def pairs(split, training, size=batch_size):
        return _pairs(builder, split, features, training, read_config, size)

    # Cached: read once (tfds decodes example by example, the slowest step)
    # for both vocabularies and the tokenization.
    train = pairs(train_split, True, _READ_BATCH).cache()
    if adapt:
        vectorizers = tuple(
            _adapted(vectorizer, train.map(lambda *pair, i=i: pair[i]), *settings)
            for i, (vectorizer, *settings) in enumerate(
                zip(vectorizers, sizes, lowercase, ("source", "target"), strict=True)
            )
        )
    train_ds = test_ds = val_ds = None
    if vectorizers[0] is not None:
        encode = _encoder(vectorizers, lowercase, max_lengths)
        train_ds = _training_batches(train, encode, batch_size, seed, shuffle_buffer)
        test_ds = _evaluation_batches(pairs(test_split, False), encode)
        if val_split is not None:
            val_ds = _evaluation_batches(pairs(val_split, False), encode)
    info = Seq2SeqDatasetInfo(
        name=builder.name,
        source_feature=features[0],
        target_feature=features[1],
        source_vectorizer=vectorizers[0],
        target_vectorizer=vectorizers[1],
        source_vocabulary_size=_vocabulary_size(vectorizers[0]),
        target_vocabulary_size=_vocabulary_size(vectorizers[1]),
        max_source_length=max_lengths[0],
        max_target_length=max_lengths[1],
        source_lowercase=lowercase[0],
        target_lowercase=lowercase[1],
        french_spacing=is_french(features[1]),
        start_id=text.START_ID,
        end_id=text.END_ID,
        train_examples=num_examples(train_split, builder),
        test_examples=num_examples(test_split, builder),
        validation_examples=0
        if val_split is None
        else num_examples(val_split, builder),
        splits={"train": train_split, "test": test_split, "validation": val_split},
        validation_ds=val_ds,
        test_texts=_texts(pairs(test_split, False)),
    )
    return train_ds, test_ds, info
