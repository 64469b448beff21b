"""Where tfds datasets come from: a data directory, a manual folder, the network.

In order:

1. a prepared copy in the data directory: argument `data_dir`, else the
   environment variable `TFDS_DATA_DIR`, else tfds' default
   (`~/tensorflow_datasets`);
2. offline, the original files in a manual folder: argument `manual_dir`, else
   the environment variable `ZOO_MANUAL_DIR` (the repository carries MNIST's in
   `data/mnist`); tfds prepares the dataset from them once;
3. online, tfds' own download (after a quick check that its host answers, so
   that a machine without network fails at once rather than after minutes of
   retries).

Every preparation extracts into a folder of its own, removed afterwards: tfds'
shared extraction cache (`DATA_DIR/downloads/extracted/GZIP.<file name>`) is
keyed by the file name alone for files in a manual folder, so a dataset whose
files share names with one prepared earlier (MNIST, Fashion-MNIST, KMNIST all
ship `train-images-idx3-ubyte.gz`) would silently get the earlier one's data.
Downloads still go to tfds' cache, `DATA_DIR/downloads/<dataset>/`, whose file
names hold the url and the checksum.

The project's own builders (`training.text_datasets` and
`training.detection_datasets`, registered on import) have no download: they
declare the files they read in the manual folder in a class attribute
`MANUAL_FILES`, `{file name: sha256}`, and check each file's sha256
themselves. Without a manual folder they fail at once, naming the files.

Anything missing raises `DatasetError` with the fix in its message.
"""

import difflib
import os
import socket
import urllib.parse
import uuid

import tensorflow_datasets as tfds

import training.detection_datasets  # noqa: F401  (registers the project's builders)
import training.text_datasets  # noqa: F401
from training.dataset_error import DatasetError
from training.text_datasets.manual_files import manual_instructions

MANUAL_DIR_ENV = "ZOO_MANUAL_DIR"
DATA_DIR_ENV = "TFDS_DATA_DIR"
CATALOG_URL = "https://www.tensorflow.org/datasets/catalog/overview"
# Where tfds downloads and extracts, under the data directory (tfds' defaults).
DOWNLOADS = "downloads"
EXTRACTED = "extracted"


def resolve_manual_dir(manual_dir=None):
    """`manual_dir`, else `$ZOO_MANUAL_DIR`, else `None`."""
    return manual_dir or os.environ.get(MANUAL_DIR_ENV) or None


def resolve_data_dir(data_dir=None):
    """`data_dir`, else `$TFDS_DATA_DIR`, else `None` (tfds' default)."""
    return data_dir or os.environ.get(DATA_DIR_ENV) or None


def get_builder(name, data_dir=None):
    """The tfds builder of dataset `name` (e.g. `"mnist"`, `"cifar10:3.*"`).

    `name` is a catalog dataset or one of the project's builders
    (`training.text_datasets`, e.g. `"zoo_sst2"`; `training.detection_datasets`,
    e.g. `"zoo_raccoon"`).

    Raises:
        DatasetError: if `name` is neither.
    """
    if not isinstance(name, str) or not name:
        raise DatasetError(
            "Argument `name` must be a tensorflow-datasets name. "
            f"Received: name={name!r}"
        )
    try:
        return tfds.builder(name, data_dir=resolve_data_dir(data_dir))
    except tfds.core.registered.DatasetNotFoundError:
        base = name.split(":")[0].split("/")[0]
        close = difflib.get_close_matches(base, tfds.list_builders(), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise DatasetError(
            f"Unknown dataset {name!r}: not in the tensorflow-datasets catalog "
            "nor among the project's builders (training.text_datasets, "
            f"training.detection_datasets).{hint} "
            f"See {CATALOG_URL}"
        ) from None


def _can_reach(url, timeout=5.0):
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def prepare(name, data_dir=None, manual_dir=None):
    """Prepares dataset `name` (once) and returns its tfds builder.

    A prepared copy in the data directory is used as is. Otherwise the
    original files are read from the manual folder when one is given (no
    network), else downloaded.

    Args:
        name: a tensorflow-datasets name.
        data_dir: where prepared datasets live (default `$TFDS_DATA_DIR` or
            tfds' default).
        manual_dir: folder of the original files (default `$ZOO_MANUAL_DIR`).

    Returns:
        The prepared `tfds.core.DatasetBuilder`.

    Raises:
        DatasetError: unknown name, files missing, or no network.
    """
    return prepare_builder(get_builder(name, data_dir), name, manual_dir)


def prepare_builder(builder, name, manual_dir=None):
    """Prepares the dataset of tfds `builder` once (see `prepare`).

    The one path by which every dataset is prepared. A prepared copy is used
    as is, without looking at the manual folder or the network. Otherwise the
    original files are extracted into a fresh folder of this preparation
    (`_extraction_dir`), removed when it ends, so no dataset reads another's
    extracted files.

    Args:
        builder: a `tfds.core.DatasetBuilder`.
        name: the dataset name, for messages.
        manual_dir: folder of the original files (default `$ZOO_MANUAL_DIR`;
            `None`: download them).

    Returns:
        `builder`, prepared.

    Raises:
        DatasetError: files missing, no network, or preparation failed.
    """
    if builder.is_prepared():
        return builder
    manual_dir = resolve_manual_dir(manual_dir)
    where = f"in {builder.data_dir}"
    if manual_dir is not None:
        manual_dir = os.path.abspath(os.path.expanduser(os.fspath(manual_dir)))
        _check_manual_dir(name, builder, manual_dir, where)
    else:
        _check_network(name, builder, where)
    extract_dir = _extraction_dir(builder)
    config = tfds.download.DownloadConfig(
        manual_dir=manual_dir,
        extract_dir=extract_dir,
        # With a manual folder, the dataset comes from its files, not from a
        # copy tfds may host prepared on GCS.
        try_download_gcs=manual_dir is None,
    )
    try:
        builder.download_and_prepare(download_config=config)
    except DatasetError:
        raise  # A project builder's own message (e.g. a wrong checksum).
    except Exception as e:
        source = f"the manual folder {manual_dir}" if manual_dir else "the network"
        detail = " ".join(str(e).split())[:400]
        raise DatasetError(
            f"Could not prepare dataset {name!r} from {source}: "
            f"{type(e).__name__}: {detail}"
        ) from e
    finally:
        if extract_dir.exists():
            extract_dir.rmtree()
    return builder


def _extraction_dir(builder):
    """A new, unique folder for one preparation's extracted files.

    `DATA_DIR/downloads/extracted/<dataset>.<random hex>.tmp`: next to tfds'
    own extraction cache (same disk), never a name tfds uses there
    (`GZIP.<file>`, `ZIP.<file>`, ...), and unique so that two preparations,
    even in two processes at once, never share extracted files.

    Args:
        builder: a `tfds.core.DatasetBuilder`.

    Returns:
        The folder's path (an `etils.epath.Path`, not created yet).
    """
    folder = f"{builder.name}.{uuid.uuid4().hex}.tmp"
    return builder.data_dir_root / DOWNLOADS / EXTRACTED / folder


def _manual_files(builder):
    """The file names `builder` reads from a manual folder: those of its
    registered urls, and a project builder's `MANUAL_FILES`."""
    names = [i.filename for i in (builder.url_infos or {}).values() if i.filename]
    return names + list(getattr(builder, "MANUAL_FILES", None) or {})


def _check_manual_dir(name, builder, manual_dir, where):
    if builder.url_infos or not _manual_files(builder):
        fix = ", or unset the manual folder to download them."
    else:  # No download: where the files come from.
        fix = f"; it has no download. {manual_instructions(builder)}"
    if not os.path.isdir(manual_dir):
        raise DatasetError(
            f"Dataset {name!r} is not prepared {where} and its manual folder "
            f"{manual_dir} does not exist. Put the original files there (argument "
            f"`manual_dir`, --manual-dir or ${MANUAL_DIR_ENV}){fix}"
        )
    missing = sorted(
        f
        for f in _manual_files(builder)
        if not os.path.exists(os.path.join(manual_dir, f))
    )
    if missing:
        raise DatasetError(
            f"Dataset {name!r} is not prepared {where} and the manual folder "
            f"{manual_dir} lacks {', '.join(missing)}. Copy the original files "
            f"there{fix}"
        )


def _check_network(name, builder, where):
    urls = list(builder.url_infos or {})
    files = _manual_files(builder)
    if not urls and files:
        raise DatasetError(
            f"Dataset {name!r} is not prepared {where} and has no download: it "
            f"is prepared from {', '.join(files)} in a manual folder. Pass it "
            f"with `manual_dir` (--manual-dir or ${MANUAL_DIR_ENV}), or set "
            f"`data_dir` (${DATA_DIR_ENV}) to a prepared copy. "
            f"{manual_instructions(builder)}"
        )
    if urls and not _can_reach(urls[0]):
        host = urllib.parse.urlsplit(urls[0]).hostname
        raise DatasetError(
            f"Dataset {name!r} is not prepared {where} and cannot be downloaded: "
            f"no connection to {host}. Pass a folder of the original files with "
            f"`manual_dir` (--manual-dir or ${MANUAL_DIR_ENV}; data/mnist holds "
            f"MNIST's), or set `data_dir` (${DATA_DIR_ENV}) to a prepared copy."
        )
