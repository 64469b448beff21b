"""English-French sentence pairs of Tatoeba (manythings.org/anki), split by English."""

import hashlib
import zipfile

import numpy as np
import tensorflow_datasets as tfds

from training.dataset_error import DatasetError
from training.text_datasets.manual_files import verified_manual_files

ARCHIVE = "fra-eng.zip"
PAIRS_FILE = "fra.txt"

_DESCRIPTION = """\
English-French sentence pairs from the Tatoeba Project, as published by
manythings.org/anki (fra-eng.zip of 2017-09-29, the file of the classic Keras
lstm_seq2seq example): 142,787 pairs (lines of fra.txt, English<TAB>French),
98,659 distinct English sentences, several of which have more than one French
translation. Features as the catalog's translation datasets
(`Translation(languages=("en", "fr"))`, supervised keys `("en", "fr")`).

Splits, by English sentence so that no English sentence is in both: `train`
137,786 pairs (95,183 distinct English sentences), `test` 5,001 pairs (3,476
distinct English sentences). The rule: the distinct English sentences, in the
order of their first line, are permuted by
`numpy.random.default_rng(2017).permutation`; `test` takes every pair of the
first sentences of the permutation, one sentence at a time, until it holds at
least 5,000 pairs; the other pairs are `train`. The key of an example is its
line number in fra.txt (0-based); tfds stores each split in the order of its
keys' hashes, the same on every preparation (so not the file's order, which
runs from short to long sentences). The builder checks the `test` lines
against a recorded sha256, so that the split cannot change silently.

One normalisation, of both sides: every run of whitespace, Unicode's included
(U+00A0 no-break space, U+202F narrow no-break space, U+2009 thin space, as
Python's `str.split` has them), becomes one plain space, and the ends are
stripped (`" ".join(text.split())`): the French text's "Cours\\u202f!" reads
"Cours !". Nothing else is changed (case, punctuation, the apostrophes `'`
and `’`, the 5 duplicated lines are kept).

Licence: CC BY 2.0 FR (the Tatoeba Project's, https://tatoeba.org/eng/terms_of_use);
attribution required: "www.manythings.org/anki and tatoeba.org". The data
"contains errors" (the archive's _about.txt): only sentences by native speakers
and proofread sentences were included.
"""

_CITATION = """\
@misc{tatoeba_anki_fra_eng,
  title={Tab-delimited Bilingual Sentence Pairs: French - English (fra-eng.zip,
    2017-09-29)},
  author={{Tatoeba Project} and {ManyThings.org}},
  howpublished={\\url{http://www.manythings.org/anki/}},
  note={From the Tatoeba Project (tatoeba.org), CC BY 2.0 FR. Attribution:
    www.manythings.org/anki and tatoeba.org},
  year={2017}
}
"""

_INSTRUCTIONS = """\
Put fra-eng.zip in the manual folder (the shared data folder anki_fra_eng/
holds it): GitHub genimind/seq2seq, commit
4f3f8eb0adde54fcc8b89394336b002e7961244c, path fra-eng.zip (2,951,390 bytes,
the archive as published by manythings.org/anki on 2017-09-29, with fra.txt
and _about.txt).
"""


def normalize(text):
    """Every run of whitespace (Unicode's included) as one space, ends stripped."""
    return " ".join(text.split())


class ZooAnkiFraEng(tfds.core.GeneratorBasedBuilder):
    """Tatoeba English-French pairs (`zoo_anki_fra_eng`), from a manual folder.

    Features `Translation(languages=("en", "fr"))` and supervised keys
    `("en", "fr")`, as the catalog's translation datasets, read from
    fra-eng.zip of the shared data folder `anki_fra_eng/` (142,787 pairs,
    checked against its sha256, `MANUAL_FILES`) and split by English sentence,
    with a fixed seed, into `train` (137,786 pairs) and `test` (5,001 pairs):
    see `split_english`. Whitespace is normalised (`normalize`); nothing else
    is changed.

    There is no online download: fra-eng.zip comes from manythings.org, which
    tfds does not fetch; the catalog has no copy of this release.

    Example:

    ```python
    from training.data_source import prepare

    builder = prepare("zoo_anki_fra_eng", manual_dir="../shared/data/anki_fra_eng")
    ds = builder.as_dataset(split="test", as_supervised=True)  # (en, fr)
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First version: fra-eng.zip of 2017-09-29, split by English "
        "sentence with numpy.random.default_rng(2017), test >= 5,000 pairs.",
    }
    MANUAL_FILES = {
        ARCHIVE: "16c4f7d0df9e7c5e6c54cdb0447f3f4a18a55052ff5e2e0b27dd4a06c0e49d04",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    SPLIT_SEED = 2017
    MIN_TEST_PAIRS = 5_000
    # sha256 of the `test` lines' numbers, ascending, joined by ",".
    TEST_LINES_SHA256 = (
        "997e220cda51829598065e5a8bcb6b1c3e10ce1002209b75176b7b733dfb2632"
    )

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.Translation(languages=("en", "fr")),
            supervised_keys=("en", "fr"),
            homepage="http://www.manythings.org/anki/",
            citation=_CITATION,
            license="CC BY 2.0 FR; attribution: www.manythings.org/anki and "
            "tatoeba.org",
        )

    def _split_generators(self, dl_manager):
        path = verified_manual_files(self, dl_manager)[ARCHIVE]
        pairs = read_pairs(path)
        test_lines = self.split_english([en for en, _ in pairs])
        fingerprint = _lines_sha256(test_lines)
        if fingerprint != self.TEST_LINES_SHA256:
            raise DatasetError(
                f"Dataset {self.name!r}: the split of {PAIRS_FILE} has test "
                f"lines sha256 {fingerprint}, expected {self.TEST_LINES_SHA256}: "
                "numpy.random.default_rng's permutation no longer gives the "
                f"split of version {self.VERSION}."
            )
        return {
            "train": self._generate_examples(pairs, test_lines, in_test=False),
            "test": self._generate_examples(pairs, test_lines, in_test=True),
        }

    @classmethod
    def split_english(cls, english):
        """The numbers of the lines that go to `test` (the others: `train`).

        The distinct English sentences, in the order of their first line, are
        permuted by `numpy.random.default_rng(SPLIT_SEED)`; `test` takes all
        the lines of the first sentences of the permutation, one sentence at a
        time, until it has at least `MIN_TEST_PAIRS` lines.

        Args:
            english: the (normalised) English sentence of each line, in file
                order.

        Returns:
            A sorted list of line numbers.
        """
        lines = {}
        for i, sentence in enumerate(english):
            lines.setdefault(sentence, []).append(i)
        sentences = list(lines)
        rng = np.random.default_rng(cls.SPLIT_SEED)
        test = []
        for k in rng.permutation(len(sentences)):
            if len(test) >= cls.MIN_TEST_PAIRS:
                break
            test.extend(lines[sentences[k]])
        return sorted(test)

    def _generate_examples(self, pairs, test_lines, in_test):
        """`(line number, {"en", "fr"})` of the lines of one split, in order."""
        test_lines = set(test_lines)
        for i, (en, fr) in enumerate(pairs):
            if (i in test_lines) == in_test:
                yield i, {"en": en, "fr": fr}


def read_pairs(path):
    """The normalised `(english, french)` pairs of fra.txt in archive `path`.

    Raises:
        DatasetError: a line without exactly one tab.
    """
    with zipfile.ZipFile(path) as archive:
        text = archive.read(PAIRS_FILE).decode("utf-8")
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the file's last line end
    pairs = []
    for i, line in enumerate(lines):
        columns = line.split("\t")
        if len(columns) != 2:
            raise DatasetError(
                f"{path}: line {i} of {PAIRS_FILE} has {len(columns)} "
                f"tab-separated columns, expected 2 (English<TAB>French): "
                f"{line[:80]!r}"
            )
        pairs.append((normalize(columns[0]), normalize(columns[1])))
    return pairs


def _lines_sha256(lines):
    return hashlib.sha256(",".join(map(str, lines)).encode()).hexdigest()
