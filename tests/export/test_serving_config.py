"""`models.config` and `batching.config` parse as TF Serving's protos."""

from pathlib import Path

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
)
from tensorflow_serving.config import model_server_config_pb2

from zoo.export.serving_config import exported_models, write_models_config


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


def _make_root(root):
    for path in ["a/1", "a/20", "b/1", "c/tmp", "a/.3-staging", "d/2"]:
        (root / path).mkdir(parents=True)
    for path in ["a/1", "a/20", "c/tmp", "a/.3-staging", "d/2"]:
        (root / path / "saved_model.pb").write_bytes(b"")
    (root / "notes.txt").write_text("not a model")


def _read_config(path):
    return text_format.Parse(
        path.read_text(), model_server_config_pb2.ModelServerConfig()
    )


def test_models_config_serves_every_exported_model(tmp_path):
    _make_root(tmp_path)
    assert exported_models(tmp_path) == ["a", "d"]
    path = write_models_config(tmp_path)
    assert path == str(tmp_path / "models.config")
    configs = _read_config(tmp_path / "models.config").model_config_list.config
    assert [(c.name, c.base_path, c.model_platform) for c in configs] == [
        ("a", "/models/a", "tensorflow"),
        ("d", "/models/d", "tensorflow"),
    ]


def test_models_config_mount_and_empty_root(tmp_path):
    _make_root(tmp_path / "root")
    write_models_config(tmp_path / "root", mount="/srv/zoo/", batching=False)
    configs = _read_config(tmp_path / "root" / "models.config").model_config_list.config
    assert [c.base_path for c in configs] == ["/srv/zoo/a", "/srv/zoo/d"]
    assert not (tmp_path / "root" / "batching.config").exists()
    write_models_config(tmp_path / "empty")
    assert (
        len(_read_config(tmp_path / "empty" / "models.config").model_config_list.config)
        == 0
    )


def test_batching_config_parses_and_is_consistent(tmp_path):
    write_models_config(tmp_path)
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


def test_committed_configs_parse():
    root = Path(__file__).resolve().parents[2] / "saved_models"
    configs = _read_config(root / "models.config").model_config_list.config
    assert all(c.base_path == f"/models/{c.name}" for c in configs)
    text_format.Parse(
        (root / "batching.config").read_text(), _batching_parameters_class()()
    )
