"""The prediction service: KServe payload-logger sink and feedback API over the prediction log."""

from __future__ import annotations

from flywheel_mlops.predictions.service.app import create_app
from flywheel_mlops.predictions.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
