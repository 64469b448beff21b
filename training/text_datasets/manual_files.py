"""The original files a project builder reads from its manual folder, verified.

A project builder has no download urls: it declares the files it reads in its
class attribute `MANUAL_FILES`, `{file name: sha256}`. `training.data_source`
names the missing ones before a preparation starts, and the builder checks
every file's sha256 with `verified_manual_files` before reading it, as tfds
checks the registered checksums of its downloads, so that a wrong or corrupt
file, or the folder of another dataset, never becomes a dataset.
"""

import hashlib

from training.dataset_error import DatasetError

_CHUNK_BYTES = 1 << 20


def file_sha256(path):
    """The sha256 hex digest of the file at `path` (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def manual_instructions(builder):
    """`builder.MANUAL_DOWNLOAD_INSTRUCTIONS` on one line, for messages."""
    return " ".join((builder.MANUAL_DOWNLOAD_INSTRUCTIONS or "").split())


def verified_manual_files(builder, dl_manager):
    """The files of `builder.MANUAL_FILES` in the manual folder, each checked.

    Args:
        builder: a `tfds.core.DatasetBuilder` with `MANUAL_FILES`.
        dl_manager: the `tfds.download.DownloadManager` of its preparation.

    Returns:
        `{file name: path}` (`etils.epath.Path`), in `MANUAL_FILES`' order.

    Raises:
        DatasetError: a file is missing, or its sha256 is not the expected one
            (the message names the file, its sha256 and the expected one).
    """
    folder = dl_manager.manual_dir
    missing = [name for name in builder.MANUAL_FILES if not (folder / name).exists()]
    if missing:
        raise DatasetError(
            f"Dataset {builder.name!r}: the manual folder {folder} lacks "
            f"{', '.join(missing)}. {manual_instructions(builder)}"
        )
    paths = {}
    for name, expected in builder.MANUAL_FILES.items():
        path = folder / name
        actual = file_sha256(path)
        if actual != expected:
            raise DatasetError(
                f"Dataset {builder.name!r}: {path} has sha256 {actual}, expected "
                f"{expected}: it is not the original {name} of this dataset, or "
                f"it is corrupt. {manual_instructions(builder)}"
            )
        paths[name] = path
    return paths
