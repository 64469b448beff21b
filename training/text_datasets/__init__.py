"""The project's tfds builders of text datasets, read from manual folders.

Importing this package registers them with tensorflow-datasets (it is imported
by `training.data_source`, so `prepare("zoo_sst2", ...)` finds them):

- `zoo_sst2` (catalog `glue/sst2`): train 67,349 / validation 872 / test 1,821
  (an unofficial labelled test file);
- `zoo_imdb_reviews` (catalog `imdb_reviews/plain_text`): train 25,000 / test
  25,000;
- `zoo_ag_news_subset` (catalog `ag_news_subset`): train 6,000 / test 1,600, a
  stratified split of AG News' official test split;
- `zoo_anki_fra_eng` (translation, `Translation(languages=("en", "fr"))`):
  train 137,786 / test 5,001 English-French pairs of Tatoeba
  (manythings.org/anki), split by English sentence.

Each reads the files of its `MANUAL_FILES` (`{file name: sha256}`) from a manual
folder (the shared data folders, `../shared/data/<dataset>` beside the repository)
after checking their checksums; none downloads (the catalog has the online
versions).
"""

from training.text_datasets.zoo_ag_news_subset import ZooAgNewsSubset
from training.text_datasets.zoo_anki_fra_eng import ZooAnkiFraEng
from training.text_datasets.zoo_imdb_reviews import ZooImdbReviews
from training.text_datasets.zoo_sst2 import ZooSst2

__all__ = ["ZooAgNewsSubset", "ZooAnkiFraEng", "ZooImdbReviews", "ZooSst2"]
