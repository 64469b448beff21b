"""AG News, with the catalog's `ag_news_subset` layout, split from its test file."""

import csv
import hashlib

import numpy as np
import tensorflow_datasets as tfds

from training.dataset_error import DatasetError
from training.text_datasets.manual_files import verified_manual_files

LABELS = ["World", "Sports", "Business", "Sci/Tech"]

_DESCRIPTION = """\
AG's News Topic Classification (Zhang, Zhao, LeCun 2015): news items (title and
description) of 4 classes, World, Sports, Business, Sci/Tech. Same features as
the catalog's `ag_news_subset`, but only the official TEST split's 7,600 rows
(1,900 per class; the 120,000 training rows are not included), split here into
`train` (6,000: 1,500 per class) and `test` (1,600: 400 per class).

The split: one `rng = numpy.random.default_rng(2015)` permutes the rows of
each class (in file order) with `rng.permutation`, for class 1, 2, 3, 4 in
turn (World, Sports, Business, Sci/Tech); the first 400 rows of each
permutation are `test`, the other 1,500 `train`. The key of an example is its
row's number in test.csv (0-based, header excluded), unique over both splits.
The builder checks the result against a recorded sha256 of the test rows'
numbers, so that the split cannot change silently.

Text as in the file (with its quirks: backslash escapes, HTML entities such as
" #36;"); labels 1-4 of the file are 0-3. The file is a re-saved copy of the
official test.csv (header row added, standard CSV quoting): same rows and
labels, not the same bytes.

Licence: the AG corpus is provided "for research purposes ... and any other
non-commercial activity" (the dataset's readme.txt). Cite Zhang et al. 2015.
"""

_CITATION = """\
@misc{zhang2015characterlevel,
    title={Character-level Convolutional Networks for Text Classification},
    author={Xiang Zhang and Junbo Zhao and Yann LeCun},
    year={2015},
    eprint={1509.01626},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""

_INSTRUCTIONS = """\
Put test.csv of AG News in the manual folder (the shared data folder
ag_news_test/ holds it): GitHub
madhubandru/Text-Classification-on-News-Articles-using-BERT-Framework, commit
082f2db7c08a8fa3e19c46df0b4b5b0a5f81d1cd, path ag_news_csv/test.csv (1,831,781
bytes, header label,title,description).
"""


class ZooAgNewsSubset(tfds.core.GeneratorBasedBuilder):
    """AG News (`zoo_ag_news_subset`): topic classification, from a manual folder.

    The layout of the catalog's `ag_news_subset` (features `title` Text,
    `description` Text, `label` ClassLabel `["World", "Sports", "Business",
    "Sci/Tech"]`), from AG News' official test split only (test.csv of the
    shared data folder `ag_news_test/`, 7,600 rows), split by a fixed, seeded,
    stratified rule into `train` (6,000, 1,500 per class) and `test` (1,600,
    400 per class): see `split_rows`. test.csv is checked against its sha256
    (`MANUAL_FILES`) before it is read.

    There is no online download: the catalog's `ag_news_subset` is the online
    version (with the 120,000 training rows).

    Example:

    ```python
    from training.data_source import prepare

    builder = prepare("zoo_ag_news_subset", manual_dir="../shared/data/ag_news_test")
    ds = builder.as_dataset(split="train", as_supervised=True)
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First version: AG News' 7,600 test rows split 6,000 / 1,600, "
        "stratified, with numpy.random.default_rng(2015).",
    }
    MANUAL_FILES = {
        "test.csv": "72b844642f92fb74fe397f0d1dd8a46d4cfd6fff60bc5c1a214fe40c44708fd7",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    SPLIT_SEED = 2015
    TEST_PER_CLASS = 400
    # sha256 of the `test` rows' numbers, ascending, joined by ",".
    TEST_ROWS_SHA256 = (
        "e15869b3a286212ef7c4692345f2f6976b705278a46b576588fec95cc7bd478e"
    )

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "label": tfds.features.ClassLabel(names=LABELS),
                    "title": tfds.features.Text(),
                    "description": tfds.features.Text(),
                }
            ),
            supervised_keys=("description", "label"),
            homepage="https://arxiv.org/abs/1509.01626",
            citation=_CITATION,
            license="research and other non-commercial use (see the description)",
        )

    def _split_generators(self, dl_manager):
        path = verified_manual_files(self, dl_manager)["test.csv"]
        with open(path, encoding="utf-8", newline="") as f:
            rows = [
                (int(row["label"]) - 1, row["title"], row["description"])
                for row in csv.DictReader(f)
            ]
        test_rows = self.split_rows([label for label, _, _ in rows])
        fingerprint = _rows_sha256(test_rows)
        if fingerprint != self.TEST_ROWS_SHA256:
            raise DatasetError(
                f"Dataset {self.name!r}: the split of test.csv has test rows "
                f"sha256 {fingerprint}, expected {self.TEST_ROWS_SHA256}: "
                "numpy.random.default_rng's permutation no longer gives the "
                f"split of version {self.VERSION}."
            )
        return {
            "train": self._generate_examples(rows, test_rows, in_test=False),
            "test": self._generate_examples(rows, test_rows, in_test=True),
        }

    @classmethod
    def split_rows(cls, labels):
        """The numbers of the rows that go to `test` (the others: `train`).

        For each class in turn (0 to 3), its rows in file order are permuted by
        one `numpy.random.default_rng(SPLIT_SEED)`; the first `TEST_PER_CLASS`
        of the permutation go to `test`.

        Args:
            labels: the label (0-3) of each row, in file order.

        Returns:
            A sorted list of row numbers.
        """
        labels = np.asarray(labels)
        rng = np.random.default_rng(cls.SPLIT_SEED)
        test = []
        for label in range(len(LABELS)):
            rows = np.flatnonzero(labels == label)
            test.extend(rows[rng.permutation(len(rows))[: cls.TEST_PER_CLASS]])
        return sorted(int(i) for i in test)

    def _generate_examples(self, rows, test_rows, in_test):
        """`(row number, example)` of the rows of one split, in file order."""
        test_rows = set(test_rows)
        for i, (label, title, description) in enumerate(rows):
            if (i in test_rows) == in_test:
                yield i, {"label": label, "title": title, "description": description}


def _rows_sha256(rows):
    return hashlib.sha256(",".join(map(str, rows)).encode()).hexdigest()
