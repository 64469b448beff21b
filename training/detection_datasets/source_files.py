"""The files a detection builder reads: verified through a pinned SHA256SUMS.

A detection folder holds hundreds of images. Rather than pinning each image's
sha256 in the builder, a builder pins the sha256 of the folder's `SHA256SUMS`
(in `MANUAL_FILES`, checked with `verified_manual_files` like the text
builders' files), and then every other file it reads is checked against its
line in that `SHA256SUMS`:

1. `read_sha256sums` parses the (already verified) `SHA256SUMS`;
2. `check_listing` requires the files of each folder read (`images/...`,
   `labels/...`) to be exactly those listed, so that an added, missing or
   renamed file is named rather than silently skipped;
3. `verified_bytes` reads a listed file once, checks its sha256 and returns
   its bytes, so the bytes checked are the bytes used.

Any difference raises `DatasetError` naming the file.
"""

import hashlib
import io
import os

import numpy as np
from PIL import Image

from training.dataset_error import DatasetError
from training.text_datasets.manual_files import manual_instructions

SHA256SUMS = "SHA256SUMS"


def read_sha256sums(builder, path):
    """`{relative path: sha256}` of a `sha256sum` file (`"./"` prefixes dropped).

    Args:
        builder: the `tfds.core.DatasetBuilder` reading it (for messages).
        path: the `SHA256SUMS` file, already checked against its pinned sha256.

    Returns:
        The digests by path relative to the manual folder, e.g.
        `{"images/train2017/000000000009.jpg": "35cd..."}`.

    Raises:
        DatasetError: a line is not `<64 hex digits>  <path>`.
    """
    sums = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            parts = line.split(maxsplit=1)
            if not parts:
                continue
            if len(parts) != 2 or len(parts[0]) != 64:
                raise DatasetError(
                    f"Dataset {builder.name!r}: line {number} of {path} is not "
                    f"'<sha256>  <file>'. Received: {line.rstrip()!r}"
                )
            name = parts[1].strip().lstrip("*")
            sums[name.removeprefix("./")] = parts[0].lower()
    return sums


def check_listing(builder, folder, subfolders, sums):
    """Raises unless the files under `subfolders` are exactly those of `sums`.

    Args:
        builder: the `tfds.core.DatasetBuilder` (for messages).
        folder: the manual folder.
        subfolders: relative folders whose files are read, e.g.
            `["images/train2017", "labels/train2017"]`.
        sums: `read_sha256sums` of the folder.

    Raises:
        DatasetError: a folder is missing, or holds a file that `SHA256SUMS`
            does not list, or lacks one it lists (the message names them).
    """
    for sub in subfolders:
        where = os.path.join(os.fspath(folder), sub)
        listed = {n for n in sums if os.path.dirname(n) == sub}
        if not os.path.isdir(where):
            raise DatasetError(
                f"Dataset {builder.name!r}: the manual folder {folder} lacks the "
                f"folder {sub}/. {manual_instructions(builder)}"
            )
        present = {f"{sub}/{n}" for n in os.listdir(where)}
        extra, missing = sorted(present - listed), sorted(listed - present)
        if extra:
            raise DatasetError(
                f"Dataset {builder.name!r}: {folder} holds {', '.join(extra[:5])}"
                f"{' ...' if len(extra) > 5 else ''}, not listed in its "
                f"{SHA256SUMS}: it is not the original folder of this dataset. "
                f"{manual_instructions(builder)}"
            )
        if missing:
            raise DatasetError(
                f"Dataset {builder.name!r}: the manual folder {folder} lacks "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
                f"(listed in its {SHA256SUMS}). {manual_instructions(builder)}"
            )


def verified_bytes(builder, folder, name, sums):
    """The bytes of file `name` of the manual folder, checked against `sums`.

    Args:
        builder: the `tfds.core.DatasetBuilder` (for messages).
        folder: the manual folder.
        name: the file's path relative to `folder`, as listed in `sums`.
        sums: `read_sha256sums` of the folder.

    Returns:
        The file's contents (`bytes`).

    Raises:
        DatasetError: `name` is not listed, or its sha256 differs (the message
            names the file, its sha256 and the expected one).
    """
    path = os.path.join(os.fspath(folder), name)
    if name not in sums:
        raise DatasetError(
            f"Dataset {builder.name!r}: {path} is not listed in {SHA256SUMS}. "
            f"{manual_instructions(builder)}"
        )
    with open(path, "rb") as f:
        data = f.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sums[name]:
        raise DatasetError(
            f"Dataset {builder.name!r}: {path} has sha256 {actual}, expected "
            f"{sums[name]}: it is not the original {name} of this dataset, or it "
            f"is corrupt. {manual_instructions(builder)}"
        )
    return data


def rgb_image(builder, name, data):
    """An encoded image for `tfds.features.Image`, with 3 channels, and its size.

    RGB files are kept as they are (their original bytes); any other mode
    (grayscale `L`, palette, CMYK) is converted to RGB with PIL and passed as
    a `uint8` array, which tfds stores losslessly (PNG).

    Args:
        builder: the `tfds.core.DatasetBuilder` (for messages).
        name: the file's name, for messages.
        data: the file's bytes.

    Returns:
        `(image, height, width)`: `image` is `io.BytesIO` of the original
        bytes or a `(height, width, 3)` `uint8` array.

    Raises:
        DatasetError: PIL cannot read the image.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if image.mode == "RGB":
                return io.BytesIO(data), height, width
            return np.asarray(image.convert("RGB"), dtype=np.uint8), height, width
    except OSError as e:
        raise DatasetError(
            f"Dataset {builder.name!r}: {name} is not a readable image: {e}"
        ) from e
