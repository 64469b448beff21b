"""IMDB reviews, with the catalog's `imdb_reviews` layout, from a manual folder."""

import re

import tensorflow_datasets as tfds

from training.text_datasets.manual_files import verified_manual_files

ARCHIVE = "aclImdb_labelled.tar.gz"
# A labelled review in the archive: aclImdb/<split>/<neg|pos>/<id>_<rating>.txt.
_REVIEW = re.compile(r"aclImdb/(?P<split>train|test)/(?P<label>neg|pos)/\d+_\d+\.txt")

_DESCRIPTION = """\
The Large Movie Review Dataset v1.0 (Maas et al., ACL 2011): 50,000 labelled
IMDb reviews, highly polar (negative: rating 1-4, positive: 7-10). Same
features and labelled splits as the catalog's `imdb_reviews/plain_text`:
`train` and `test`, 25,000 reviews each, 12,500 per class (the unlabelled 50,000
`unsupervised` reviews are not included).

The text is each review file as is, UTF-8 (HTML line breaks `<br /><br />`
included); the key is the file's path in the archive,
`aclImdb/<split>/<neg|pos>/<id>_<rating>.txt`.

Files: aclImdb_labelled.tar.gz, the labelled part of aclImdb, from GitHub
dax44/AMLM, commit 05fb2144cdac27a88f277b3969df58e2ae041af6 (data/aclImdb/; its
5,000 reviews moved to val/ put back into train/, contents untouched).

Licence: none formal; the dataset's README asks users to cite Maas et al.
(2011). The review text is from IMDb users.
"""

_CITATION = """\
@InProceedings{maas-EtAl:2011:ACL-HLT2011,
  author    = {Maas, Andrew L.  and  Daly, Raymond E.  and  Pham, Peter T.  and
    Huang, Dan  and  Ng, Andrew Y.  and  Potts, Christopher},
  title     = {Learning Word Vectors for Sentiment Analysis},
  booktitle = {Proceedings of the 49th Annual Meeting of the Association for
    Computational Linguistics: Human Language Technologies},
  month     = {June},
  year      = {2011},
  address   = {Portland, Oregon, USA},
  publisher = {Association for Computational Linguistics},
  pages     = {142--150},
  url       = {http://www.aclweb.org/anthology/P11-1015}
}
"""

_INSTRUCTIONS = """\
Put aclImdb_labelled.tar.gz in the manual folder (the shared data folder imdb/
holds it): the 50,000 labelled reviews of aclImdb v1.0, as
aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, from GitHub dax44/AMLM, commit
05fb2144cdac27a88f277b3969df58e2ae041af6, folder data/aclImdb/ (with val/ moved
back into train/). The original full archive is aclImdb_v1.tar.gz of
http://ai.stanford.edu/~amaas/data/sentiment/ (the catalog's `imdb_reviews`).
"""


class ZooImdbReviews(tfds.core.GeneratorBasedBuilder):
    """IMDB movie reviews (`zoo_imdb_reviews`): sentiment, from a manual folder.

    The layout of the catalog's `imdb_reviews/plain_text` (features `text`
    Text, `label` ClassLabel `["neg", "pos"]`; splits `train` and `test`,
    25,000 reviews each), read from aclImdb_labelled.tar.gz of the shared data
    folder `imdb/`, streamed (nothing is extracted to disk). The archive is
    checked against its sha256 (`MANUAL_FILES`) before it is read.

    There is no online download: the catalog's `imdb_reviews` is the online
    version (from the full 84 MB archive).

    Example:

    ```python
    from training.data_source import prepare

    builder = prepare("zoo_imdb_reviews", manual_dir="../shared/data/imdb")
    ds = builder.as_dataset(split="test", as_supervised=True)
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First version: the labelled train and test reviews of "
        "aclImdb v1.0, from aclImdb_labelled.tar.gz.",
    }
    MANUAL_FILES = {
        ARCHIVE: "7662598ed0b34375977d4bdc14cdd7fb158dd2be7b43b99dd1f985a23f868066",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "text": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["neg", "pos"]),
                }
            ),
            supervised_keys=("text", "label"),
            homepage="http://ai.stanford.edu/~amaas/data/sentiment/",
            citation=_CITATION,
            license="none formal; cite Maas et al. (2011) (see the description)",
        )

    def _split_generators(self, dl_manager):
        archive = verified_manual_files(self, dl_manager)[ARCHIVE]
        return {
            split: self._generate_examples(dl_manager.iter_archive(archive), split)
            for split in ("train", "test")
        }

    def _generate_examples(self, members, split):
        """`(path, example)` for each review of `split` in the archive.

        Args:
            members: `(path, file object)` of each file of the archive, in
                archive order (`dl_manager.iter_archive`).
            split: `"train"` or `"test"`.
        """
        for path, f in members:
            match = _REVIEW.fullmatch(path)
            if match and match["split"] == split:
                yield path, {"text": f.read().decode("utf-8"), "label": match["label"]}
