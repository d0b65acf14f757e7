"""Start a retraining run on a Kubeflow Pipelines cluster for a monitor decision."""

from __future__ import annotations

from datetime import datetime

from flywheel_mlops.errors import ConfigError
from flywheel_mlops.registry import Alias
from flywheel_mlops.spec import load_spec
from flywheel_mlops.training.kfp_client import SubmittedRun, submit_training_run
from flywheel_mlops.training.request import TrainingRequest


def submit_retrain(
    host: str, registry: str, data: str, side: str, start: datetime, end: datetime, why: str
) -> SubmittedRun:
    """Start the training pipeline on a fresh window through the KFP API, with the why.

    The run registers its model as `candidate`; the champion moves only after a canary.
    """
    if not data:
        raise ConfigError("a retrain needs --retrain-data (FLYWHEEL_RETRAIN_DATA)")
    request = TrainingRequest(
        load_spec("ride_hailing"),
        data,
        registry,
        side_uri=side,
        start=start.date().isoformat(),
        end=end.date().isoformat(),
        reason=why,
        promote_alias=Alias.CANDIDATE,
    )
    return submit_training_run(host, request.arguments())
