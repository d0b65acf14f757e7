"""Run the training pipeline through the KFP local runner: the same components as on a cluster."""

from __future__ import annotations

import contextlib
import json
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel_mlops.errors import FlywheelError, ValidationFailed
from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.training.request import TrainingRequest

__all__ = ["RunOutcome", "TrainingRequest", "run_training"]


@dataclass(frozen=True)
class RunOutcome:
    """The evaluation numbers and what register did (version None when the gate said no)."""

    run_dir: Path
    evaluation: dict[str, Any]
    version: str | None
    promoted: bool
    #: The alias the run moved when `promoted` (champion, or candidate in the loop).
    alias: str = Alias.CHAMPION.value


def run_training(
    request: TrainingRequest, pipeline_root: Path, log_path: Path | None = None
) -> RunOutcome:
    """Run the pipeline with `kfp.local`'s SubprocessRunner in this interpreter's environment.

    Each run gets a folder of its own under `pipeline_root`. With `log_path`, the runner's
    output (every step's log) goes to that file instead of the console. The outcome comes from
    the pipeline's declared outputs. A validation failure is raised as ValidationFailed with the
    gate's report (the validate step's `report` artifact), so callers see each failed check.
    """
    from kfp import local

    from flywheel_pipelines.training import training_pipeline

    _check_local_inputs(request)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_root = pipeline_root / f"{stamp}-{uuid.uuid4().hex[:8]}"
    run_root.mkdir(parents=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(run_root),
        raise_on_error=True,
    )
    try:
        with _output_to(log_path), warnings.catch_warnings():
            # The runner warns that steps name a container image; running them in this
            # interpreter is the point of the local mode, and the image holds the same code.
            warnings.filterwarnings("ignore", message=".*non-Python base image.*")
            run = training_pipeline(**request.arguments())
    except RuntimeError as failure:
        _raise_validation_failure(run_root, failure)
        where = f"; the steps' log: {log_path}" if log_path else ""
        raise FlywheelError(f"training pipeline failed: {failure}{where}") from failure
    outputs = run.outputs
    evaluation = json.loads(Path(outputs["evaluation"].path).read_text())
    version = str(outputs["version"]) or None
    promoted = bool(outputs["promoted"])
    return RunOutcome(run_root, evaluation, version, promoted, request.promote_alias)


def _check_local_inputs(request: TrainingRequest) -> None:
    """Fail at once, not after ingest's retries, on what cannot get better by waiting: a local
    data file that is not there, or a window bound that does not parse."""
    from fsspec.utils import get_protocol

    from flywheel_mlops.training.ingest import require_files, time_bound

    for uri in (request.data_uri, request.side_uri):
        if uri and get_protocol(uri) == "file":
            require_files(uri)
    for text, option in ((request.start, "--start"), (request.end, "--end")):
        if text:
            time_bound(text, option)


def _raise_validation_failure(run_root: Path, failure: RuntimeError) -> None:
    """Raise ValidationFailed when this run stopped at the validation gate."""
    for report in run_root.glob("*/validate/report"):
        data = json.loads(report.read_text())
        if not data.get("passed", True):
            lines = "\n".join(f"  - {m}" for m in data["failed"])
            raise ValidationFailed(
                f"batch failed {len(data['failed'])} validation check(s):\n{lines}", data
            ) from failure


@contextlib.contextmanager
def _output_to(log_path: Path | None) -> Iterator[None]:
    """Send what the runner prints (its own lines and each step's) to `log_path`."""
    if log_path is None:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as sink, contextlib.redirect_stdout(sink):
        yield
