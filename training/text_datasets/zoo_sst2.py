"""SST-2 of GLUE, with the catalog's `glue/sst2` layout, from a manual folder."""

import csv

import numpy as np
import tensorflow_datasets as tfds

from training.text_datasets.manual_files import verified_manual_files

_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test-labeled.tsv"}

_DESCRIPTION = """\
SST-2, the binary Stanford Sentiment Treebank of GLUE (Socher et al. 2013):
sentences from movie reviews, lower-cased and PTB-tokenised, labelled negative
or positive. Same features as the catalog's `glue/sst2`.

Splits: `train` (train.tsv, 67,349 sentences: 29,780 negative / 37,569
positive) and `validation` (dev.tsv, 872: 428 / 444), both exactly GLUE's;
`test` (test-labeled.tsv, 1,821: 917 / 904) is NOT GLUE's test split, whose
labels are not public: it is an unofficial labelled file that came with the
AutoPrompt reproduction repository (eyalbd2/Reproducing-AutoPrompt, commit
6288fb5bec9c572f2492875ae0111df5b6daed11), the sentences of GLUE's test.tsv in
the same order, with label counts that differ slightly from the commonly cited
ones (909 / 912). Prefer `validation` for evaluation.

`idx` is the row number in the split's file (header excluded), as in the
catalog; sentences are stripped of the trailing space of the files.

Licence: SST has no explicit licence (GLUE lists it as unknown); the carrying
repository is Apache-2.0, which covers its code, not the data. Cite Socher et
al. 2013 and GLUE.
"""

_CITATION = """\
@inproceedings{socher2013recursive,
  title={Recursive deep models for semantic compositionality over a sentiment
    treebank},
  author={Socher, Richard and Perelygin, Alex and Wu, Jean and Chuang, Jason and
    Manning, Christopher D and Ng, Andrew and Potts, Christopher},
  booktitle={Proceedings of the 2013 conference on empirical methods in natural
    language processing},
  pages={1631--1642},
  year={2013}
}
@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural
    Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and
    Levy, Omer and Bowman, Samuel R.},
  note={In the Proceedings of ICLR.},
  year={2019}
}
"""

_INSTRUCTIONS = """\
Put train.tsv, dev.tsv and test-labeled.tsv of GLUE SST-2 in the manual folder
(the shared data folder sst2/ holds them). They come from GitHub
eyalbd2/Reproducing-AutoPrompt, commit 6288fb5bec9c572f2492875ae0111df5b6daed11:
glue_data/SST-2/train_full.tsv (renamed train.tsv), glue_data/SST-2/dev.tsv and
glue_data/SST-2/test-labeled.tsv, unchanged.
"""


class ZooSst2(tfds.core.GeneratorBasedBuilder):
    """GLUE SST-2 (`zoo_sst2`): sentence sentiment, from a manual folder.

    The layout of the catalog's `glue/sst2` (features `idx` int32, `sentence`
    Text, `label` ClassLabel `["negative", "positive"]`), read from the files
    of the shared data folder `sst2/`: `train` (train.tsv, 67,349), `validation`
    (dev.tsv, 872) and `test` (test-labeled.tsv, 1,821: an unofficial labelled
    file, not GLUE's test split; see the description). Each file is checked
    against its sha256 (`MANUAL_FILES`) before it is read.

    There is no online download: the catalog's `glue/sst2` is the online
    version (its test split unlabelled).

    Example:

    ```python
    from training.data_source import prepare

    builder = prepare("zoo_sst2", manual_dir="../shared/data/sst2")
    ds = builder.as_dataset(split="validation")
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First version: train.tsv, dev.tsv and test-labeled.tsv of "
        "the AutoPrompt reproduction repository's GLUE SST-2 copy.",
    }
    MANUAL_FILES = {
        "train.tsv": "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
        "dev.tsv": "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
        "test-labeled.tsv": (
            "c0efc56ade6e0598d0f8daca1976e232aee0bcabca8e599341cad290d9d10b3c"
        ),
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "idx": np.int32,
                    "sentence": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["negative", "positive"]),
                }
            ),
            homepage="https://nlp.stanford.edu/sentiment/index.html",
            citation=_CITATION,
            license="unknown (no explicit licence for SST; see the description)",
        )

    def _split_generators(self, dl_manager):
        paths = verified_manual_files(self, dl_manager)
        return {
            split: self._generate_examples(paths[name])
            for split, name in _FILES.items()
        }

    def _generate_examples(self, path):
        """`(idx, example)` for each row of TSV file `path` (header skipped).

        Rows are `sentence<TAB>label`, unquoted; `newline=""` lets the csv
        reader take test-labeled.tsv's CRLF line ends.
        """
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            next(reader)
            for idx, (sentence, label) in enumerate(reader):
                yield (
                    idx,
                    {"idx": idx, "sentence": sentence.strip(), "label": int(label)},
                )
