"""TF Serving's `models.config` and an example `batching.config` for `saved_models/`."""

import os

_HEADER = "# Written by zoo.export.write_models_config; regenerate rather than edit.\n"

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


def exported_models(root="saved_models"):
    """Sorted names of the models under `root` with at least one version.

    A version is a numeric directory holding a `saved_model.pb`.
    """
    if not os.path.isdir(root):
        return []
    return sorted(
        name
        for name in os.listdir(root)
        if os.path.isdir(os.path.join(root, name))
        and any(
            version.isdigit()
            and os.path.isfile(os.path.join(root, name, version, "saved_model.pb"))
            for version in os.listdir(os.path.join(root, name))
        )
    )


def write_models_config(root="saved_models", mount="/models", batching=True):
    """Writes `ROOT/models.config` serving every model exported under `root`.

    Each model `NAME` is served from `MOUNT/NAME` (where the container sees
    `root`), with TF Serving's default version policy (the latest version).
    Also writes the example `ROOT/batching.config` (see `BATCHING_PARAMETERS`)
    for `--enable_batching --batching_parameters_file=MOUNT/batching.config`.

    Args:
        root: the directory holding `NAME/VERSION/` SavedModels.
        mount: the path of `root` inside the model server's container (or the
            absolute path of `root` for a server running on the host).
        batching: also write `batching.config`.

    Returns:
        The path of `models.config`.
    """
    os.makedirs(root, exist_ok=True)
    entries = "".join(
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "{mount.rstrip("/")}/{name}"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        for name in exported_models(root)
    )
    path = os.path.join(root, "models.config")
    with open(path, "w") as f:
        f.write(f"{_HEADER}model_config_list {{\n{entries}}}\n")
    if batching:
        with open(os.path.join(root, "batching.config"), "w") as f:
            f.write(_HEADER + _batching_text(BATCHING_PARAMETERS))
    return path


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
