"""Start a retraining run on a Kubeflow Pipelines cluster for a monitor decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from flywheel_mlops.errors import ConfigError
from flywheel_mlops.registry import Alias
from flywheel_mlops.registry.bundle import SPEC, Bundle
from flywheel_mlops.spec import DatasetSpec
from flywheel_mlops.training.kfp_client import SubmittedRun, submit_training_run
from flywheel_mlops.training.request import TrainingRequest

if TYPE_CHECKING:
    from flywheel_mlops.training.local_runner import RunOutcome


def retrain_spec(bundle: Bundle) -> DatasetSpec:
    """The dataset spec a retrain of `bundle` trains with: the one the bundle was trained with."""
    if bundle.spec is None:
        raise ConfigError(
            f"{bundle.name} {bundle.version} carries no {SPEC} (it predates specs in bundles): "
            "train it again with `flywheel train --dataset SPEC` before the loop can retrain it"
        )
    return bundle.spec


def retrain_request(
    bundle: Bundle, registry: str, data: str, side: str, start: datetime, end: datetime, why: str
) -> TrainingRequest:
    """The training run a retrain decision asks for: the served bundle's own spec, a fresh
    window, the decision's reasons, and `candidate` as the alias it may move."""
    if not data:
        raise ConfigError("a retrain needs --retrain-data (FLYWHEEL_RETRAIN_DATA)")
    return TrainingRequest(
        retrain_spec(bundle),
        data,
        registry,
        side_uri=side,
        start=start.isoformat(),
        end=end.isoformat(),
        reason=why,
        promote_alias=Alias.CANDIDATE,
    )


def run_local_retrain(request: TrainingRequest, runs: Path, log_path: Path) -> RunOutcome:
    """Run the retrain through the KFP local runner (no KFP host): the same components."""
    from flywheel_mlops.training.local_runner import run_training

    return run_training(request, runs, log_path=log_path)


def submit_retrain(
    host: str,
    bundle: Bundle,
    registry: str,
    data: str,
    side: str,
    start: datetime,
    end: datetime,
    why: str,
) -> SubmittedRun:
    """Start the training pipeline on a fresh window through the KFP API, with the why.

    The run trains with the served bundle's own dataset spec and registers its model as
    `candidate`; the champion moves only after the gate and a canary.
    """
    request = retrain_request(bundle, registry, data, side, start, end, why)
    return submit_training_run(host, request.arguments())


@dataclass(frozen=True)
class RetrainStart:
    """How a decided retrain was started (or why not), and the sentence that says so."""

    how: Literal["kfp", "local", "not_started"]
    said: str
    run: SubmittedRun | None = None
    outcome: RunOutcome | None = None


def start_retrain(
    bundle: Bundle,
    registry: str,
    host: str,
    data: str,
    side: str,
    start: datetime,
    end: datetime,
    why: str,
    local: bool,
    runs: Path,
) -> RetrainStart:
    """Submit the retrain to KFP at `host`; with no host, run it here through the KFP local
    runner when `local` and `data` allow; otherwise say plainly that it was not started."""
    if host:
        run = submit_retrain(host, bundle, registry, data, side, start, end, why)
        return RetrainStart("kfp", f"retraining run {run.run_id} started: {run.url}", run=run)
    if not local or not data:
        missing = "--retrain-data" if local else "--local-retrain"
        return RetrainStart(
            "not_started",
            "a retrain was decided but not started: no --pipelines-host "
            f"(FLYWHEEL_PIPELINES_HOST) to submit it to, and {missing} is not given to run it "
            "here with the KFP local runner",
        )
    log_path = runs / "retrain.log"
    outcome = run_local_retrain(
        retrain_request(bundle, registry, data, side, start, end, why), runs, log_path
    )
    state = "registered as candidate" if outcome.promoted else "registered, not better"
    return RetrainStart(
        "local",
        f"retraining here with the KFP local runner (log: {log_path}): "
        f"{outcome.version or '-'} {state}",
        outcome=outcome,
    )
