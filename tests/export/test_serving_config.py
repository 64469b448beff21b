"""`update_serving_config` adds a model to `models.config`, keeps the rest."""

import os
import stat
from pathlib import Path

import pytest
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
)
from tensorflow_serving.config import model_server_config_pb2

from zoo.export import is_version_name, update_serving_config
from zoo.export.serving_config import exported_models


def _batching_parameters_class():
    """TF Serving's `BatchingParameters` (session_bundle_config.proto), which
    tensorflow-serving-api does not ship."""
    file = descriptor_pb2.FileDescriptorProto(
        name="test_batching_parameters.proto",
        package="test_serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = file.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    wrapped = [
        ("max_batch_size", ".google.protobuf.Int64Value"),
        ("batch_timeout_micros", ".google.protobuf.Int64Value"),
        ("max_enqueued_batches", ".google.protobuf.Int64Value"),
        ("num_batch_threads", ".google.protobuf.Int64Value"),
        ("thread_pool_name", ".google.protobuf.StringValue"),
    ]
    for number, (name, type_name) in enumerate(wrapped, start=1):
        message.field.add(
            name=name, number=number, type=field.TYPE_MESSAGE, type_name=type_name
        )
    message.field.add(
        name="allowed_batch_sizes",
        number=6,
        type=field.TYPE_INT64,
        label=field.LABEL_REPEATED,
    )
    message.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL)
    pool = descriptor_pool.Default()
    try:
        descriptor = pool.FindMessageTypeByName("test_serving.BatchingParameters")
    except KeyError:
        descriptor = pool.Add(file).message_types_by_name["BatchingParameters"]
    return message_factory.GetMessageClass(descriptor)


def _export(root, *names):
    """Fake exports: `NAME/1/saved_model.pb` under `root`."""
    for name in names:
        (root / name / "1").mkdir(parents=True)
        (root / name / "1" / "saved_model.pb").write_bytes(b"")


def _read_config(path):
    return text_format.Parse(
        path.read_text(), model_server_config_pb2.ModelServerConfig()
    )


def _served(path):
    configs = _read_config(path).model_config_list.config
    return [(c.name, c.base_path, c.model_platform) for c in configs]


def _is_one_insertion(before, after):
    """Whether `after` is `before` with one piece of text inserted."""
    prefix = len(os.path.commonprefix([before, after]))
    suffix = len(os.path.commonprefix([before[prefix:][::-1], after[prefix:][::-1]]))
    return prefix + suffix == len(before) and len(after) > len(before)


USER_CONFIG = """\
# My models. Tuned by hand: keep.
model_config_list {
  config {
    name: "b"  # the old one
    base_path: "/srv/b"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 3 versions: 4 } }
    version_labels { key: "stable" value: 3 }
  }
  # more models below
}
# end of file
"""


def test_creates_both_files_when_asked(tmp_path):
    _export(tmp_path, "a")
    lines = update_serving_config(tmp_path, "a", create=True)
    assert _served(tmp_path / "models.config") == [("a", "/models/a", "tensorflow")]
    assert lines == [
        f"wrote {tmp_path / 'models.config'} serving a",
        f"wrote {tmp_path / 'batching.config'} (example batching parameters)",
    ]
    assert sorted(os.listdir(tmp_path)) == ["a", "batching.config", "models.config"]


def test_adds_an_entry_and_keeps_every_other_byte(tmp_path):
    _export(tmp_path, "a", "b")
    (tmp_path / "models.config").write_text(USER_CONFIG)
    lines = update_serving_config(tmp_path, "a", mount="/srv/")
    assert lines[0] == f"added a to {tmp_path / 'models.config'}"
    after = (tmp_path / "models.config").read_text()
    assert _is_one_insertion(USER_CONFIG, after), after
    assert _served(tmp_path / "models.config") == [
        ("b", "/srv/b", "tensorflow"),
        ("a", "/srv/a", "tensorflow"),
    ]
    b = _read_config(tmp_path / "models.config").model_config_list.config[0]
    assert list(b.model_version_policy.specific.versions) == [3, 4]
    assert dict(b.version_labels) == {"stable": 3}


@pytest.mark.parametrize(
    "text",
    [
        "model_config_list {}",
        "model_config_list: { }\n",
        'model_config_list { config { name: "b" base_path: "/m/b" } }',
        "model_config_list <\n  config < name: 'b' base_path: '/m/}>b' >\n>\n",
        "# a { brace } in a comment\nmodel_config_list {\n  # } {\n  config {\n"
        '    name: "b{"\n    base_path: "/m/\\"}"\n  }\n}\n',
    ],
)
def test_adds_an_entry_to_any_layout(tmp_path, text):
    _export(tmp_path, "a")
    (tmp_path / "models.config").write_text(text)
    before = _read_config(tmp_path / "models.config").model_config_list.config
    update_serving_config(tmp_path, "a")
    after = (tmp_path / "models.config").read_text()
    assert _is_one_insertion(text, after), after
    configs = _read_config(tmp_path / "models.config").model_config_list.config
    assert list(configs[:-1]) == list(before)
    assert (configs[-1].name, configs[-1].base_path) == ("a", "/models/a")


def test_second_update_of_the_same_name_is_a_no_op(tmp_path):
    _export(tmp_path, "a")
    update_serving_config(tmp_path, "a", create=True)
    path = tmp_path / "models.config"
    path.write_text(path.read_text() + "# my note\n")
    before = path.read_bytes(), os.stat(path).st_ino, os.stat(path).st_mtime_ns
    lines = update_serving_config(tmp_path, "a", mount="/elsewhere", create=True)
    assert lines == [
        f"{path} already serves a: unchanged",
        f"kept {tmp_path / 'batching.config'}",
    ]
    assert (path.read_bytes(), os.stat(path).st_ino, os.stat(path).st_mtime_ns) == (
        before
    )


def test_batching_config_is_never_rewritten(tmp_path):
    _export(tmp_path, "a")
    mine = "# tuned\nmax_batch_size { value: 8 }\nallowed_batch_sizes: 8\n"
    (tmp_path / "batching.config").write_text(mine)
    lines = update_serving_config(tmp_path, "a", create=True)
    assert lines[1] == f"kept {tmp_path / 'batching.config'}"
    assert (tmp_path / "batching.config").read_text() == mine


def test_nothing_is_written_without_create(tmp_path):
    _export(tmp_path, "a")
    lines = update_serving_config(tmp_path, "a")
    assert lines == [
        f"no models.config in {tmp_path}: none written",
        f"no batching.config in {tmp_path}: none written",
    ]
    assert os.listdir(tmp_path) == ["a"]


@pytest.mark.parametrize(
    "text",
    [
        "model_config_list { config { name: 'a' ",
        "models { name: 'a' }",
        "model_config_list { config { nmae: 'a' } }",
        "custom_model_config { }",
        "",
        "# only a comment\n",
        "\xff\xfe",
    ],
)
def test_invalid_models_config_is_refused_and_left_as_it_is(tmp_path, text):
    _export(tmp_path, "a")
    path = tmp_path / "models.config"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=f"{path}.*valid TF Serving"):
        update_serving_config(tmp_path, "a", create=True)
    assert path.read_bytes() == text.encode("latin-1")
    assert sorted(os.listdir(tmp_path)) == ["a", "models.config"]


def test_files_get_the_umask_and_keep_their_mode(tmp_path):
    _export(tmp_path, "a", "b")
    old = os.umask(0o022)
    try:
        update_serving_config(tmp_path, "a", create=True)
    finally:
        os.umask(old)
    for name in ("models.config", "batching.config"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
    os.chmod(tmp_path / "models.config", 0o640)
    update_serving_config(tmp_path, "b")
    assert stat.S_IMODE(os.stat(tmp_path / "models.config").st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == [
        "a",
        "b",
        "batching.config",
        "models.config",
    ]


def test_a_symlinked_config_is_edited_in_place(tmp_path):
    _export(tmp_path / "root", "a")
    (tmp_path / "real.config").write_text("model_config_list {\n}\n")
    (tmp_path / "root" / "models.config").symlink_to(tmp_path / "real.config")
    update_serving_config(tmp_path / "root", "a")
    assert (tmp_path / "root" / "models.config").is_symlink()
    assert _served(tmp_path / "real.config") == [("a", "/models/a", "tensorflow")]


def test_argument_errors(tmp_path):
    _export(tmp_path, "a")
    (tmp_path / "b" / "latest").mkdir(parents=True)
    (tmp_path / "b" / "latest" / "saved_model.pb").write_bytes(b"")
    for name in ("", "..", "a/1"):
        with pytest.raises(ValueError, match="Argument `name`"):
            update_serving_config(tmp_path, name, create=True)
    with pytest.raises(TypeError, match="name=None"):
        update_serving_config(tmp_path, None, create=True)
    with pytest.raises(TypeError, match="root=3"):
        update_serving_config(3, "a", create=True)
    for name in ("b", "c"):
        with pytest.raises(FileNotFoundError, match=f"name='{name}'"):
            update_serving_config(tmp_path, name, create=True)
    with pytest.raises(ValueError, match="mount=''"):
        update_serving_config(tmp_path, "a", mount="", create=True)
    with pytest.raises(TypeError, match="create='yes'"):
        update_serving_config(tmp_path, "a", create="yes")
    with pytest.raises(FileNotFoundError, match="root="):
        update_serving_config(tmp_path / "nowhere", "a", create=True)
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_batching_config_parses_and_is_consistent(tmp_path):
    _export(tmp_path, "a")
    update_serving_config(tmp_path, "a", create=True)
    parameters = text_format.Parse(
        (tmp_path / "batching.config").read_text(), _batching_parameters_class()()
    )
    sizes = list(parameters.allowed_batch_sizes)
    assert sizes == sorted(set(sizes)) and sizes[0] >= 1
    # TF Serving refuses a config whose last allowed size is not the maximum.
    assert sizes[-1] == parameters.max_batch_size.value
    assert parameters.batch_timeout_micros.value > 0
    assert parameters.num_batch_threads.value >= 1
    assert parameters.max_enqueued_batches.value >= 1


@pytest.mark.parametrize(
    "name, expected",
    [
        ("1", True),
        ("20", True),
        ("0", True),
        (str(2**63 - 1), True),
        (str(2**63), False),
        ("\u00b2", False),  # superscript two: str.isdigit() is True
        ("\u0663", False),  # Arabic-Indic three
        ("\uff11", False),  # fullwidth one
        ("1 ", False),
        ("-1", False),
        ("v1", False),
        ("", False),
        (1, False),
    ],
)
def test_version_names_are_ascii_int64(name, expected):
    assert is_version_name(name) is expected


def test_exported_models_count_only_served_versions(tmp_path):
    for path in ["a/1", "a/20", "b/1", "c/tmp", "a/.3-staging", "d/2", "e/\u00b2"]:
        (tmp_path / path).mkdir(parents=True)
    for path in ["a/1", "a/20", "c/tmp", "a/.3-staging", "d/2", "e/\u00b2"]:
        (tmp_path / path / "saved_model.pb").write_bytes(b"")
    (tmp_path / "f" / str(2**63)).mkdir(parents=True)
    (tmp_path / "f" / str(2**63) / "saved_model.pb").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a model")
    assert exported_models(tmp_path) == ["a", "d"]
    assert exported_models(tmp_path / "nowhere") == []


def test_committed_configs_parse():
    root = Path(__file__).resolve().parents[2] / "saved_models"
    configs = _read_config(root / "models.config").model_config_list.config
    assert all(c.base_path == f"/models/{c.name}" for c in configs)
    text_format.Parse(
        (root / "batching.config").read_text(), _batching_parameters_class()()
    )
