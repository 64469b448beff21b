"""The project's tfds builders of object-detection datasets, from manual folders.

Importing this package registers them with tensorflow-datasets (it is imported
by `training.data_source`, so `prepare("zoo_raccoon", ...)` finds them):

- `zoo_coco128` (catalog `coco` layout): train 128 images / 929 boxes,
  validation 128 / 898, 80 classes (config.yaml's names, ids 0-79);
- `zoo_raccoon` (catalog `voc` box layout): train 160 images / 173 boxes,
  test 40 / 44, one class `raccoon`.

Both have `image` (3 channels), `image/filename` and `objects` with `bbox`
(normalised `[ymin, xmin, ymax, xmax]`) and `label`; one example per image in
file-name order (`disable_shuffling`), keyed by the file name.

A folder of hundreds of images is verified through its `SHA256SUMS`: the
builder pins that file's sha256 (and those of the few files it reads whole) in
`MANUAL_FILES`, checked by `verified_manual_files` as the text builders' are;
every image and label file is then checked against its line in `SHA256SUMS`
when it is read, and the folders read must hold exactly the files listed
(`training.detection_datasets.source_files`). None downloads.
"""

from training.detection_datasets.zoo_coco128 import ZooCoco128
from training.detection_datasets.zoo_raccoon import ZooRaccoon

__all__ = ["ZooCoco128", "ZooRaccoon"]
