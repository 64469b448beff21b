"""SavedModel export for TF Serving: named signatures, an XLA path, raw inputs."""

from zoo.export.exported_model import ExportedModel
from zoo.export.exporter import export_model
from zoo.export.image_classification import MAX_IMAGE_PIXELS
from zoo.export.serving_config import (
    exported_models,
    is_version_name,
    update_serving_config,
)
from zoo.export.serving_requests import predict_request, rest_body
from zoo.export.serving_signature import ServingSignature
from zoo.export.tasks import SIGNATURE_BUILDERS, serving_signatures

__all__ = [
    "MAX_IMAGE_PIXELS",
    "SIGNATURE_BUILDERS",
    "ExportedModel",
    "ServingSignature",
    "export_model",
    "exported_models",
    "is_version_name",
    "predict_request",
    "rest_body",
    "serving_signatures",
    "update_serving_config",
]
