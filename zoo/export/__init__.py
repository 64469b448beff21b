"""SavedModel export for TF Serving: named signatures, an XLA path, raw inputs."""

from zoo.export.exported_model import ExportedModel
from zoo.export.exporter import export_model
from zoo.export.serving_config import write_models_config
from zoo.export.serving_requests import predict_request, rest_body
from zoo.export.serving_signature import ServingSignature
from zoo.export.tasks import SIGNATURE_BUILDERS, serving_signatures

__all__ = [
    "SIGNATURE_BUILDERS",
    "ExportedModel",
    "ServingSignature",
    "export_model",
    "predict_request",
    "rest_body",
    "serving_signatures",
    "write_models_config",
]
