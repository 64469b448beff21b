"""TF Serving's `models.config` and an example `batching.config`, kept by hand.

`update_serving_config` adds a model to `ROOT/models.config` and leaves the
rest of the file (comments, other models, version policies) as it was; it
never rewrites `batching.config`. Both files belong to the user once written.
"""

import os
import re
import tempfile

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

MODELS_CONFIG = "models.config"
BATCHING_CONFIG = "batching.config"

# TF Serving reads a version directory name as an int64.
_MAX_VERSION = 2**63 - 1

# TF Serving `BatchingParameters`. Requests are merged into batches padded to
# the next allowed size, which also bounds the shapes XLA compiles for.
BATCHING_PARAMETERS = {
    "max_batch_size": 64,
    "batch_timeout_micros": 2000,
    "max_enqueued_batches": 100,
    "num_batch_threads": 4,
    "allowed_batch_sizes": (1, 2, 4, 8, 16, 32, 64),
    "pad_variable_length_inputs": False,
}

_MODELS_HEADER = (
    "# TF Serving models (a ModelServerConfig text proto), first written by\n"
    "# zoo.export.update_serving_config. Edit freely: later exports only add\n"
    "# models that have no entry yet and keep everything else.\n"
)
_BATCHING_HEADER = (
    "# Example TF Serving BatchingParameters, written by\n"
    "# zoo.export.update_serving_config when absent. Edit freely: it is never\n"
    "# rewritten.\n"
)


def is_version_name(name):
    """Whether `name` is a version directory that TF Serving serves.

    TF Serving reads versions as int64 numbers: only names of ASCII digits
    (`"1"`, `"20"`) whose value fits in an int64 count. `str.isdigit` is not
    enough: it also accepts `"²"` or `"٣"`, which the server ignores.

    Args:
        name: a directory name.

    Returns:
        True for a version name, False otherwise (also for non-strings).
    """
    return (
        isinstance(name, str)
        and re.fullmatch(r"[0-9]+", name) is not None
        and int(name) <= _MAX_VERSION
    )


def exported_models(root="saved_models"):
    """Sorted names of the models under `root` with at least one version.

    Args:
        root: the directory holding `NAME/VERSION/` SavedModels.

    Returns:
        The names `NAME` with a version directory (see `is_version_name`)
        holding a `saved_model.pb`; `[]` when `root` does not exist.
    """
    if not os.path.isdir(root):
        return []
    return sorted(
        name
        for name in os.listdir(root)
        if os.path.isdir(os.path.join(root, name)) and _has_version(root, name)
    )


def _has_version(root, name):
    folder = os.path.join(root, name)
    return any(
        is_version_name(version)
        and os.path.isfile(os.path.join(folder, version, "saved_model.pb"))
        for version in os.listdir(folder)
    )


def update_serving_config(root, name, mount="/models", create=False):
    """Adds model `name` to `ROOT/models.config`, keeping what is there.

    - `ROOT/models.config` exists: when it has no entry named `name`, one is
      added (`base_path` `MOUNT/NAME`, `model_platform` `"tensorflow"`, the
      default version policy) and every other byte of the file is kept
      (comments, other models, version policies); when it has one, the file
      is left as it is. A file that is not a valid `model_config_list` text
      proto is refused and left as it is.
    - It does not exist: it is written (serving `name`) only when `create`.
    - `ROOT/batching.config` is never rewritten; when absent and `create`,
      the example `BATCHING_PARAMETERS` are written, for
      `--enable_batching --batching_parameters_file=MOUNT/batching.config`.

    Files are written to a temporary file beside them and renamed into place,
    so a server polling `models.config` never reads half of one. A file that
    is replaced keeps its permissions; a new one gets the umask's.

    Args:
        root: the directory holding the `NAME/VERSION/` SavedModels, and the
            config files.
        name: the model to serve: `ROOT/NAME` must hold a version (see
            `exported_models`).
        mount: the path of `root` as the model server sees it (the
            container's mount, or the absolute path of `root` for a server
            running on the host).
        create: write the files that do not exist. Without it, nothing is
            written when `ROOT/models.config` is absent.

    Returns:
        A list of short lines saying what was done to each file, e.g.
        `"added NAME to ROOT/models.config"`, for the user to read.

    Raises:
        ValueError: a bad `name` or `mount`, or a `models.config` that is not
            a valid `model_config_list` text proto (left as it is).
        TypeError: arguments of the wrong type.
        FileNotFoundError: `root` is not a directory, or `ROOT/NAME` holds no
            exported version.
    """
    root = _check_root(root)
    _check_name(name)
    if not isinstance(mount, str) or not mount.strip("/"):
        raise ValueError(
            "Argument `mount` must be the path of `root` for the model server "
            f"(e.g. '/models'). Received: mount={mount!r}"
        )
    if not isinstance(create, bool):
        raise TypeError(
            f"Argument `create` must be a bool. Received: create={create!r}"
        )
    if not os.path.isdir(os.path.join(root, name)) or not _has_version(root, name):
        raise FileNotFoundError(
            f"Argument `name` must be a model exported under root={root!r} "
            f"(a {name}/VERSION folder holding saved_model.pb). Received: name={name!r}"
        )
    entry = model_server_config_pb2.ModelConfig(
        name=name, base_path=f"{mount.rstrip('/')}/{name}", model_platform="tensorflow"
    )
    return [
        _update_models_config(os.path.join(root, MODELS_CONFIG), root, entry, create),
        _update_batching_config(os.path.join(root, BATCHING_CONFIG), root, create),
    ]


def _check_root(root):
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(
            f"Argument `root` must be a path. Received: root={root!r} "
            f"of type {type(root).__name__}"
        )
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"Argument `root` must be an existing directory. Received: root={root!r}"
        )
    return root


def _check_name(name):
    if not isinstance(name, str):
        raise TypeError(
            f"Argument `name` must be a model name (a str). Received: name={name!r}"
        )
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(
            "Argument `name` must be a model directory name (no '/'). "
            f"Received: name={name!r}"
        )


def _update_models_config(path, root, entry, create):
    # The file a symlink points to is edited; the link stays.
    target = os.path.realpath(path)
    if not os.path.lexists(path):
        if not create:
            return f"no {MODELS_CONFIG} in {root}: none written"
        text = f"{_MODELS_HEADER}model_config_list {{\n{_entry_text(entry, '  ')}}}\n"
        if _create(target, text.encode("utf-8")):
            return f"wrote {path} serving {entry.name}"
        # Written by someone else meanwhile: add to that one.
    data, config = _read_models_config(path, target)
    if any(c.name == entry.name for c in config.model_config_list.config):
        return f"{path} already serves {entry.name}: unchanged"
    text = _with_entry(data.decode("utf-8"), entry, path, config)
    _replace(target, text.encode("utf-8"))
    return f"added {entry.name} to {path}"


def _update_batching_config(path, root, create):
    if os.path.lexists(path):
        return f"kept {path}"
    if not create:
        return f"no {BATCHING_CONFIG} in {root}: none written"
    text = _BATCHING_HEADER + _batching_text(BATCHING_PARAMETERS)
    if _create(os.path.realpath(path), text.encode("utf-8")):
        return f"wrote {path} (example batching parameters)"
    return f"kept {path}"


def _read_models_config(path, target):
    if not os.path.isfile(target):
        raise ValueError(f"{path} must be a file holding TF Serving's model config.")
    with open(target, "rb") as f:
        data = f.read()
    refused = (
        f"{path} must hold a valid TF Serving `model_config_list` text proto; "
        "it is left as it is (fix it, or move it away to write a new one)"
    )
    try:
        config = text_format.Parse(
            data.decode("utf-8"), model_server_config_pb2.ModelServerConfig()
        )
    except (UnicodeDecodeError, text_format.ParseError) as error:
        raise ValueError(f"{refused}. {_one_line(error)}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{refused}. It has no model_config_list.")
    return data, config


def _with_entry(text, entry, path, config):
    """`text` with `entry` inserted at the end of its `model_config_list`."""
    close = _closing_brace(text)
    expected = model_server_config_pb2.ModelServerConfig()
    expected.CopyFrom(config)
    expected.model_config_list.config.add().CopyFrom(entry)
    if close is not None:
        line_start = text.rfind("\n", 0, close) + 1
        indent = text[line_start:close]
        if indent.strip():
            # The brace ends a line with content: the entry goes on new lines
            # before it (and before the spaces in front of it).
            end = len(text[:close].rstrip(" \t"))
            new = f"{text[:end]}\n{_entry_text(entry, '  ')}{text[end:]}"
        else:
            block = _entry_text(entry, indent + "  ")
            new = text[:line_start] + block + text[line_start:]
        try:
            parsed = text_format.Parse(new, model_server_config_pb2.ModelServerConfig())
        except text_format.ParseError:
            parsed = None
        if parsed == expected:
            return new
    raise ValueError(
        f"Could not add {entry.name} to {path} without changing its other "
        "entries; it is left as it is. Add this entry to its model_config_list "
        f"by hand:\n{_entry_text(entry, '  ')}"
    )


def _closing_brace(text):
    """Index of the `}` (or `>`) closing the top-level `model_config_list`.

    Skips comments and quoted strings; None when there is none.
    """
    depth, last_word, inside, i = 0, None, False, 0
    while i < len(text):
        char = text[i]
        if char == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif char in "\"'":
            i += 1
            while i < len(text) and text[i] != char:
                i += 2 if text[i] == "\\" else 1
        elif char in "{<":
            if depth == 0:
                inside = last_word == "model_config_list"
            depth += 1
        elif char in "}>":
            depth -= 1
            if depth == 0 and inside:
                return i
        elif char.isalnum() or char == "_":
            end = i
            while end < len(text) and (text[end].isalnum() or text[end] in "_."):
                end += 1
            if depth == 0:
                last_word = text[i:end]
            i = end - 1
        i += 1
    return None


def _entry_text(entry, indent):
    fields = text_format.MessageToString(entry, as_utf8=True).splitlines()
    inner = "".join(f"{indent}  {line}\n" for line in fields)
    return f"{indent}config {{\n{inner}{indent}}}\n"


def _batching_text(parameters):
    lines = []
    for key, value in parameters.items():
        if isinstance(value, bool):
            lines.append(f"{key}: {str(value).lower()}")
        elif isinstance(value, (tuple, list)):
            lines.extend(f"{key}: {v}" for v in value)
        else:
            lines.append(f"{key} {{ value: {value} }}")
    return "\n".join(lines) + "\n"


def _one_line(error):
    return " ".join(str(error).split())[:300]


def _temporary_copy(target, data, mode):
    folder, base = os.path.split(target)
    handle, temporary = tempfile.mkstemp(prefix=f".{base}-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, mode)
    except BaseException:
        os.remove(temporary)
        raise
    return temporary


def _replace(target, data):
    """Replaces the file `target` by `data` in one rename, keeping its mode."""
    mode = os.stat(target).st_mode & 0o7777
    temporary = _temporary_copy(target, data, mode)
    try:
        os.replace(temporary, target)
    except BaseException:
        os.remove(temporary)
        raise


def _create(target, data):
    """Writes the new file `target` in one step; False if it exists already."""
    temporary = _temporary_copy(target, data, 0o666 & ~current_umask())
    try:
        # A hard link never replaces an existing file (os.replace would).
        os.link(temporary, target)
    except FileExistsError:
        return False
    except OSError:
        # A file system without hard links.
        if os.path.lexists(target):
            return False
        os.replace(temporary, target)
    finally:
        if os.path.lexists(temporary):
            os.remove(temporary)
    return True


def current_umask():
    """The process's umask (the permission bits new files do not get).

    Returns:
        An int, e.g. `0o022`.
    """
    # Read by setting it: a strict one meanwhile, so that nothing another
    # thread creates in between gets looser permissions than intended.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask
