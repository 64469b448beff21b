"""The translation builder (`zoo_anki_fra_eng`) and `load_seq2seq`.

The real datasets are prepared once from the shared data folders into
`$TFDS_DATA_DIR` or `.cache/tfds` (as `test_text_datasets.py` does, under a
file lock), so that later runs reuse them: preparing Tatoeba's 142,787 pairs
took 9 s on 2 idle cores, 19 s on busy ones. The builder's own rules are also
tested on a tiny fake archive. Loader tests read slices of the splits
(`train[:3000]`) so that each load takes a second or two.
"""

import collections
import fcntl
import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import training.text_datasets
from training import seq2seq_data
from training.data_source import get_builder, prepare, prepare_builder
from training.dataset_error import DatasetError
from training.seq2seq_data import is_french, load_seq2seq, shift_targets
from training.text_datasets import ZooAnkiFraEng
from training.text_datasets.zoo_anki_fra_eng import ARCHIVE, PAIRS_FILE
from zoo.seq2seq import text

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"
FOLDERS = {"zoo_anki_fra_eng": "anki_fra_eng", "zoo_ag_news_subset": "ag_news_test"}
ANKI = "zoo_anki_fra_eng"
# Slices that keep a load short.
SMALL = {"train_split": "train[:3000]", "test_split": "test[:300]"}


def shared_folder(name):
    """The shared data folder of dataset `name`; fails if it is missing."""
    folder = (SHARED_DATA / FOLDERS[name]).resolve()
    assert folder.is_dir(), f"shared data folder {folder} is missing"
    return folder


def data_dir(name):
    """A tfds data directory holding dataset `name`, prepared on first use."""
    folder = os.environ.get("TFDS_DATA_DIR") or str(REPO / ".cache" / "tfds")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f".{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        prepare(name, folder, shared_folder(name))
    return folder


def _strings(values):
    return [v.decode("utf-8") for v in np.asarray(values).ravel()]


def _read(builder, split):
    """`[(en, fr), ...]` of `split` in stored order.

    Straight from the split's TFRecord files with one `tf.io.parse_example`
    per batch: 20 times faster than `as_dataset`, which parses example by
    example (`test_the_fast_reader_reads_what_tfds_reads` checks it).
    """
    files = [
        os.path.join(builder.data_dir, f) for f in builder.info.splits[split].filenames
    ]
    features = {key: tf.io.FixedLenFeature([], tf.string) for key in ("en", "fr")}
    ds = tf.data.TFRecordDataset(files).batch(8192)
    pairs = []
    for batch in ds.map(lambda records: tf.io.parse_example(records, features)):
        pairs += zip(_strings(batch["en"]), _strings(batch["fr"]), strict=True)
    return pairs


def _read_with_tfds(builder, split):
    ds = builder.as_dataset(split=split, shuffle_files=False).batch(8192)
    pairs = []
    for batch in tfds.as_numpy(ds):
        pairs += zip(_strings(batch["en"]), _strings(batch["fr"]), strict=True)
    return pairs


def _documented_split(lines, min_test_pairs, seed):
    """The split rule of the description, from raw `english<TAB>french` lines:
    `(train pairs, test pairs)` as Counters of normalised pairs."""
    pairs = [tuple(" ".join(c.split()) for c in line.split("\t")) for line in lines]
    english = list(dict.fromkeys(en for en, _ in pairs))
    order = np.random.default_rng(seed).permutation(len(english))
    count = collections.Counter(en for en, _ in pairs)
    test_english, taken = set(), 0
    for k in order:
        if taken >= min_test_pairs:
            break
        test_english.add(english[k])
        taken += count[english[k]]
    test = collections.Counter(p for p in pairs if p[0] in test_english)
    return collections.Counter(pairs) - test, test


@pytest.fixture(scope="module")
def anki():
    """`(builder, {split: [(en, fr), ...]})` of the real prepared dataset."""
    builder = get_builder(ANKI, data_dir(ANKI))
    return builder, {split: _read(builder, split) for split in ("train", "test")}


# ---------------------------------------------------------------------------
# The builder on the real archive
# ---------------------------------------------------------------------------


def test_manual_file_has_the_checksum_of_the_shared_folder():
    sums = dict(
        reversed(line.split())
        for line in (shared_folder(ANKI) / "SHA256SUMS").read_text().splitlines()
    )
    assert ZooAnkiFraEng.MANUAL_FILES == {ARCHIVE: sums[ARCHIVE]}


def test_the_builder_is_registered_and_documented(tmp_path):
    builder = get_builder(ANKI, tmp_path)
    assert type(builder) is ZooAnkiFraEng
    assert ANKI in tfds.list_builders()
    assert "ZooAnkiFraEng" in training.text_datasets.__all__
    assert str(builder.version) == "1.0.0" and "1.0.0" in builder.RELEASE_NOTES
    info = builder.info
    assert isinstance(info.features, tfds.features.Translation)
    assert list(info.features.keys()) == ["en", "fr"]
    assert info.supervised_keys == ("en", "fr")
    assert info.homepage.startswith("http") and "@" in info.citation
    assert "CC BY 2.0 FR" in info.redistribution_info.license
    assert "www.manythings.org/anki and tatoeba.org" in info.description
    assert "Licence" in info.description
    for count in ("137,786", "5,001", "95,183", "3,476", "142,787"):
        assert count in info.description
    assert "no online download" in " ".join(ZooAnkiFraEng.__doc__.lower().split())
    assert "GitHub" in builder.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_the_fast_reader_reads_what_tfds_reads(anki):
    builder, splits = anki
    assert _read_with_tfds(builder, "test") == splits["test"]


def test_real_split_counts_and_disjoint_english(anki):
    builder, splits = anki
    sizes = {s: builder.info.splits[s].num_examples for s in builder.info.splits}
    assert sizes == {"train": 137_786, "test": 5_001}
    english = {split: {en for en, _ in pairs} for split, pairs in splits.items()}
    assert (len(english["train"]), len(english["test"])) == (95_183, 3_476)
    assert not english["train"] & english["test"]
    assert len(splits["test"]) >= ZooAnkiFraEng.MIN_TEST_PAIRS


def test_real_split_follows_the_documented_rule(anki):
    with zipfile.ZipFile(shared_folder(ANKI) / ARCHIVE) as archive:
        lines = archive.read(PAIRS_FILE).decode("utf-8").split("\n")[:-1]
    assert len(lines) == 142_787
    train, test = _documented_split(lines, 5_000, ZooAnkiFraEng.SPLIT_SEED)
    splits = anki[1]
    assert collections.Counter(splits["test"]) == test
    assert collections.Counter(splits["train"]) == train


def test_real_text_is_normalised_and_nothing_else(anki):
    pairs = anki[1]["train"] + anki[1]["test"]
    for en, fr in pairs:
        for sentence in (en, fr):
            assert sentence == " ".join(sentence.split()), sentence
    french = {fr for _, fr in pairs}
    assert "Cours !" in french and "Va !" in french
    assert not any("\u202f" in f or "\xa0" in f or "\u2009" in f for f in french)
    # Kept as in the file: case, typographic apostrophes, zero-width spaces.
    assert "Je l’ai vu." in french
    assert sum("\u200b" in f for f in french) == 2


@pytest.mark.slow
def test_a_second_preparation_stores_the_same_order(anki, tmp_path):
    builder = prepare(ANKI, tmp_path, shared_folder(ANKI))
    for split in ("train", "test"):
        assert _read_with_tfds(builder, split) == anki[1][split], split


# ---------------------------------------------------------------------------
# The builder's rules on a fake archive
# ---------------------------------------------------------------------------

FAKE_ENGLISH = [f"Sentence {i}." for i in range(30)]
FAKE_LINES = [
    *(f"{en}\tPhrase {i}\u202f!" for i, en in enumerate(FAKE_ENGLISH)),
    *(f"{en}\tAutre\u00a0phrase  {i} ?" for i, en in enumerate(FAKE_ENGLISH[:12])),
    f"{FAKE_ENGLISH[0]}\tPhrase 0\u202f!",  # a duplicated line, kept
]


class _FakeAnki(ZooAnkiFraEng, skip_registration=True):
    MIN_TEST_PAIRS = 7


def _fake_archive(tmp_path, lines, monkeypatch):
    """A manual folder with a fra-eng.zip of `lines`; `_FakeAnki` expects it."""
    folder = tmp_path / "manual"
    folder.mkdir()
    path = folder / ARCHIVE
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(PAIRS_FILE, "".join(f"{line}\n" for line in lines))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(_FakeAnki, "MANUAL_FILES", {ARCHIVE: digest})
    english = [" ".join(line.split("\t")[0].split()) for line in lines]
    test_lines = ",".join(map(str, _FakeAnki.split_english(english)))
    fingerprint = hashlib.sha256(test_lines.encode()).hexdigest()
    monkeypatch.setattr(_FakeAnki, "TEST_LINES_SHA256", fingerprint)
    return folder


def test_fake_archive_split(tmp_path, monkeypatch):
    folder = _fake_archive(tmp_path, FAKE_LINES, monkeypatch)
    builder = prepare_builder(_FakeAnki(data_dir=tmp_path / "tfds"), "fake", folder)
    splits = {split: _read(builder, split) for split in ("train", "test")}
    assert len(splits["train"]) + len(splits["test"]) == len(FAKE_LINES)
    train, test = _documented_split(FAKE_LINES, 7, ZooAnkiFraEng.SPLIT_SEED)
    assert collections.Counter(splits["test"]) == test
    assert collections.Counter(splits["train"]) == train
    assert len(splits["test"]) >= 7
    english = [{en for en, _ in splits[s]} for s in ("train", "test")]
    assert not english[0] & english[1]
    french = [fr for split in splits.values() for _, fr in split]
    assert "Phrase 3 !" in french and "Autre phrase 3 ?" in french
    assert not any("\u202f" in f or "\xa0" in f or "  " in f for f in french)
    # Same rows in the same order on a second preparation.
    again = prepare_builder(_FakeAnki(data_dir=tmp_path / "again"), "fake", folder)
    assert {s: _read_with_tfds(again, s) for s in splits} == splits


def test_a_changed_split_is_caught(tmp_path, monkeypatch):
    folder = _fake_archive(tmp_path, FAKE_LINES, monkeypatch)
    monkeypatch.setattr(_FakeAnki, "SPLIT_SEED", 1)
    builder = _FakeAnki(data_dir=tmp_path / "tfds")
    with pytest.raises(DatasetError, match="no longer gives the split of version"):
        prepare_builder(builder, "fake", folder)
    assert not builder.is_prepared()


def test_a_line_without_a_tab_is_named(tmp_path, monkeypatch):
    folder = _fake_archive(tmp_path, [*FAKE_LINES[:3], "no tab here"], monkeypatch)
    with pytest.raises(DatasetError, match="line 3 of fra.txt has 1 tab-separated"):
        prepare_builder(_FakeAnki(data_dir=tmp_path / "tfds"), "fake", folder)


def test_a_wrong_archive_is_rejected(tmp_path):
    folder = tmp_path / "manual"
    folder.mkdir()
    shutil.copyfile(shared_folder("zoo_ag_news_subset") / "test.csv", folder / ARCHIVE)
    with pytest.raises(DatasetError, match=f"{ARCHIVE} has sha256 .* expected"):
        prepare(ANKI, tmp_path / "tfds", folder)
    with pytest.raises(DatasetError, match=f"lacks {ARCHIVE}.*GitHub"):
        prepare(ANKI, tmp_path / "tfds", shared_folder("zoo_ag_news_subset"))


# ---------------------------------------------------------------------------
# load_seq2seq: teacher-forcing batches
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def anki_small():
    """A load of 3,000 training and 300 test pairs, read once."""
    return load_seq2seq(ANKI, data_dir=data_dir(ANKI), batch_size=32, **SMALL)


def _rows(ids):
    """Each row's ids without the padding."""
    return [[int(i) for i in row if i] for row in np.asarray(ids)]


def test_shift_targets():
    ids = tf.ragged.constant([[7, 8, 9], [5], []], dtype=tf.int32)
    decoder_input, labels = shift_targets(ids, 3)
    assert decoder_input.to_list() == [[2, 7, 8], [2, 5], [2]]
    assert labels.to_list() == [[7, 8, 9], [5, 3], [3]]


def test_batches_shapes_and_dtypes(anki_small):
    train_ds, test_ds, info = anki_small
    batches = list(train_ds)
    assert len(batches) == 3000 // 32 + 1
    for inputs, labels in (*batches, *test_ds):
        assert set(inputs) == {"source", "target"}
        for tensor in (inputs["source"], inputs["target"], labels):
            assert tensor.dtype == tf.int32 and tensor.shape.rank == 2
        assert inputs["target"].shape == labels.shape
        assert inputs["source"].shape[0] == labels.shape[0]
        # Padded to the batch's longest, no further.
        assert (inputs["source"].numpy()[:, -1] != 0).any()
        assert (labels.numpy()[:, -1] != 0).any()
    assert batches[0][1].shape[0] == 32


def test_start_and_end_placement(anki_small):
    train_ds, _, info = anki_small
    assert (info.start_id, info.end_id) == (text.START_ID, text.END_ID) == (2, 3)
    for inputs, labels in train_ds.take(10):
        for decoder_input, label in zip(
            _rows(inputs["target"]), _rows(labels), strict=True
        ):
            assert decoder_input[0] == 2 and 2 not in decoder_input[1:]
            assert label[-1] == 3 and 3 not in label[:-1] and 2 not in label
            assert 3 not in decoder_input
            assert decoder_input[1:] == label[:-1]  # labels: inputs shifted by one


def test_batches_are_the_test_texts_tokenized(anki_small):
    _, test_ds, info = anki_small
    sources, targets = next(iter(info.test_texts))
    inputs, labels = next(iter(test_ds))
    expected_source = text.tokenize(info.source_vectorizer, sources, lowercase=True)
    assert _rows(inputs["source"]) == _rows(expected_source)
    expected_target = text.tokenize(info.target_vectorizer, targets, lowercase=False)
    assert [row[:-1] for row in _rows(labels)] == _rows(expected_target)
    assert sources.shape == (32,) and targets.dtype == tf.string


def test_truncation():
    _, test_ds, info = load_seq2seq(
        ANKI, data_dir=data_dir(ANKI), max_source_length=3, max_target_length=4, **SMALL
    )
    long = 0
    for (inputs, labels), (_, targets) in zip(test_ds, info.test_texts, strict=True):
        assert inputs["source"].shape[1] <= 3 and labels.shape[1] <= 4
        full = _rows(text.tokenize(info.target_vectorizer, targets, False))
        for decoder_input, label, ids in zip(
            _rows(inputs["target"]), _rows(labels), full, strict=True
        ):
            assert decoder_input == [2, *ids][:4]
            assert label == [*ids, 3][:4]
            long += len(ids) >= 4
    assert long > 100  # cut labels (no END) were seen


def test_vocabularies_come_from_the_training_split_only():
    builder = get_builder(ANKI, data_dir(ANKI))
    _, _, info = load_seq2seq(
        ANKI,
        data_dir=data_dir(ANKI),
        train_split="train[:2000]",
        test_split="test[:100]",
        validation_split=0.5,
        source_vocabulary_size=100_000,
        target_vocabulary_size=100_000,
    )
    assert info.splits == {
        "train": "train[0:1000]",
        "test": "test[:100]",
        "validation": "train[1000:2000]",
    }
    assert (info.train_examples, info.validation_examples) == (1000, 1000)
    train = builder.as_dataset(split="train[0:1000]")
    for side, feature, lowercase in (("source", "en", True), ("target", "fr", False)):
        counts = text.count_words(train.map(lambda ex, f=feature: ex[f]), lowercase)
        vocabulary = getattr(info, f"{side}_vectorizer").get_vocabulary()
        assert vocabulary[:4] == list(text.RESERVED)
        assert set(vocabulary[4:]) == set(counts), side
        assert getattr(info, f"{side}_vocabulary_size") == len(counts) + 4
    batches = list(info.validation_ds)
    assert sum(labels.shape[0] for _, labels in batches) == 1000


def test_training_order_is_deterministic_and_reshuffled():
    def load(seed):
        return load_seq2seq(
            ANKI,
            data_dir=data_dir(ANKI),
            batch_size=32,
            seed=seed,
            train_split="train[:1000]",
            test_split="test[:10]",
        )[0]

    def epoch(ds):
        return [labels.numpy() for _, labels in ds]

    def same(a, b):
        return len(a) == len(b) and all(
            x.shape == y.shape and (x == y).all() for x, y in zip(a, b, strict=True)
        )

    train_ds = load(0)
    first = epoch(train_ds)
    assert same(epoch(load(0)), first)
    assert not same(epoch(load(1)), first)
    assert not same(epoch(train_ds), first)  # the next epoch: reshuffled


def test_info_of_a_translation_load(anki_small):
    info = anki_small[2]
    assert (info.name, info.source_feature, info.target_feature) == (ANKI, "en", "fr")
    assert info.french_spacing and info.source_lowercase and not info.target_lowercase
    assert (info.train_examples, info.test_examples) == (3000, 300)
    assert (info.max_source_length, info.max_target_length) == (32, 32)
    assert info.source_vocabulary_size == info.source_vectorizer.vocabulary_size()
    assert info.splits == {
        "train": "train[:3000]",
        "test": "test[:300]",
        "validation": None,
    }
    assert info.validation_ds is None and info.validation_examples == 0


def test_given_vectorizers_are_used_as_is(anki_small):
    _, test_ds, info = anki_small
    vectorizers = {
        "source_vectorizer": info.source_vectorizer,
        "target_vectorizer": info.target_vectorizer,
    }
    _, again, reused = load_seq2seq(
        ANKI,
        data_dir=data_dir(ANKI),
        batch_size=32,
        adapt=False,
        **vectorizers,
        **SMALL,
    )
    assert reused.source_vectorizer is info.source_vectorizer
    assert reused.target_vectorizer is info.target_vectorizer
    for (a, _), (b, _) in zip(test_ds, again, strict=True):
        np.testing.assert_array_equal(a["target"], b["target"])


def test_adapt_false_without_vocabularies_loads_only_the_texts():
    train_ds, test_ds, info = load_seq2seq(
        ANKI, data_dir=data_dir(ANKI), adapt=False, **SMALL
    )
    assert train_ds is None and test_ds is None and info.source_vectorizer is None
    assert (info.source_vocabulary_size, info.target_vocabulary_size) == (0, 0)
    assert sum(int(t.shape[0]) for _, t in info.test_texts) == 300


# ---------------------------------------------------------------------------
# load_seq2seq: AG News headlines
# ---------------------------------------------------------------------------


def test_ag_news_headlines():
    name = "zoo_ag_news_subset"
    folder = data_dir(name)
    train_ds, test_ds, info = load_seq2seq(
        name,
        data_dir=folder,
        batch_size=200,
        shuffle_buffer=200,
        source_vocabulary_size=8_000,
        target_vocabulary_size=6_000,
        max_source_length=64,
        max_target_length=24,
    )
    assert (info.source_feature, info.target_feature) == ("description", "title")
    assert (info.train_examples, info.test_examples) == (6_000, 1_600)
    assert not info.french_spacing and not info.target_lowercase
    assert (info.source_vocabulary_size, info.target_vocabulary_size) == (8_000, 6_000)
    builder = get_builder(name, folder)
    stored = builder.as_dataset(split="test", shuffle_files=False).batch(1600)
    titles = _strings(next(iter(stored))["title"])
    texts = [t for _, targets in info.test_texts for t in _strings(targets)]
    assert texts == [" ".join(t.split()) for t in titles]  # the same order
    inputs, labels = next(iter(train_ds))
    assert inputs["source"].shape[0] == 200 and inputs["source"].shape[1] <= 64
    assert labels.shape[1] <= 24
    assert sum(int(labels.shape[0]) for _, labels in test_ds) == 1_600


# ---------------------------------------------------------------------------
# load_seq2seq: errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"shuffle_buffer": -1}, "shuffle_buffer=-1"),
        ({"source_vocabulary_size": 4}, "source_vocabulary_size=4"),
        ({"target_vocabulary_size": 1.5}, "target_vocabulary_size=1.5"),
        ({"max_source_length": 0}, "max_source_length=0"),
        ({"max_target_length": None}, "max_target_length=None"),
        ({"source_lowercase": "yes"}, "source_lowercase='yes'"),
        ({"adapt": 1}, "adapt=1"),
        ({"validation_split": 1.5}, "validation_split=1.5"),
        ({"seed": "0"}, "seed='0'"),
        ({"source_vectorizer": "vocab"}, "source_vectorizer='vocab'"),
    ],
)
def test_bad_arguments_are_named(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        load_seq2seq(ANKI, data_dir=tmp_path, **kwargs)


def test_one_vectorizer_without_adapt_is_refused(anki_small, tmp_path):
    with pytest.raises(ValueError, match="Received: target_vectorizer=None"):
        load_seq2seq(
            ANKI,
            data_dir=tmp_path,
            adapt=False,
            source_vectorizer=anki_small[2].source_vectorizer,
        )


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("zoo_anki_fra", {}, "Unknown dataset 'zoo_anki_fra'.*zoo_anki_fra_eng"),
        ("mnist", {}, "'mnist' is not a sequence-to-sequence dataset"),
        ("zoo_sst2", {}, "'zoo_sst2' is not a sequence-to-sequence dataset"),
        (ANKI, {"source_feature": "de"}, r"`source_feature`.*\['en', 'fr'\].*'de'"),
        ("zoo_ag_news_subset", {"target_feature": "label"}, "target_feature='label'"),
    ],
)
def test_unsuitable_datasets_are_named(name, kwargs, message, tmp_path):
    with pytest.raises(DatasetError, match=message):
        load_seq2seq(name, data_dir=tmp_path, **kwargs)


def test_no_default_features_asks_for_them(tmp_path, monkeypatch):
    monkeypatch.setattr(seq2seq_data, "DEFAULT_FEATURES", {})
    with pytest.raises(DatasetError, match="no default source: pass `source_feature`"):
        load_seq2seq("zoo_ag_news_subset", data_dir=tmp_path)


def test_the_same_feature_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="source_feature='en', target_feature='en'"):
        load_seq2seq(ANKI, data_dir=tmp_path, target_feature="en")


@pytest.mark.parametrize(
    "feature, french",
    [("fr", True), ("fr-CA", True), ("FR", True), ("en", False), ("title", False)],
)
def test_is_french(feature, french):
    assert is_french(feature) is french
