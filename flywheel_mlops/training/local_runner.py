"""Run the training pipeline through the KFP local runner: the same components as on a cluster."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from flywheel_mlops.errors import FlywheelError, ValidationFailed
from flywheel_mlops.spec import DatasetSpec


@dataclass(frozen=True)
class TrainingRequest:
    """Everything a training run needs; the pipeline parameters, typed."""

    spec: DatasetSpec
    data_uri: str
    registry_uri: str
    side_uri: str = ""
    start: str = ""
    end: str = ""
    families: tuple[str, ...] = ("xgboost", "hist_gbm", "ridge")
    margin: float = 0.02
    search_seconds: float = 0.0
    tolerance: float = 0.02
    seed: int = 0
    reason: str = "manual run"
    promote_alias: str = "champion"

    def arguments(self) -> dict[str, Any]:
        """The pipeline's parameters as KFP takes them."""
        return {
            "dataset_spec": self.spec.model_dump_json(),
            "data_uri": self.data_uri,
            "registry_uri": self.registry_uri,
            "side_uri": self.side_uri,
            "start": self.start,
            "end": self.end,
            "families": list(self.families),
            "margin": self.margin,
            "search_seconds": self.search_seconds,
            "tolerance": self.tolerance,
            "seed": self.seed,
            "reason": self.reason,
            "promote_alias": self.promote_alias,
        }


@dataclass(frozen=True)
class RunOutcome:
    """The evaluation numbers and what register did (version None when the gate said no)."""

    run_dir: Path
    evaluation: dict[str, Any]
    version: str | None
    promoted: bool


def run_training(
    request: TrainingRequest,
    pipeline_root: Path,
    log_path: Path | None = None,
    on_step: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run the pipeline with `kfp.local`'s SubprocessRunner in this interpreter's environment.

    With `log_path`, the runner's verbose output goes to that file instead of the console and
    `on_step` is called with each task's name as it starts (for a progress bar).
    A validation failure is raised as ValidationFailed with the gate's report, read back from
    the failed run's folder, so callers see each failed check rather than "task failed".
    """
    from flywheel_pipelines.training import training_pipeline
    from kfp import local

    pipeline_root.mkdir(parents=True, exist_ok=True)
    before = set(pipeline_root.iterdir())
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    try:
        with _captured(log_path, on_step), warnings.catch_warnings():
            # The runner warns that steps name a container image; running them in this
            # interpreter is the point of the local mode, and the image holds the same code.
            warnings.filterwarnings("ignore", message=".*non-Python base image.*")
            training_pipeline(**request.arguments())
    except RuntimeError as failure:
        run_dir = _new_run_dir(pipeline_root, before)
        report = _find(run_dir, "validate", "report")
        if report is not None:
            data = json.loads(report.read_text())
            if not data.get("passed", True):
                lines = "\n".join(f"  - {m}" for m in data["failed"])
                raise ValidationFailed(
                    f"batch failed {len(data['failed'])} validation check(s):\n{lines}", data
                ) from failure
        raise FlywheelError(f"training pipeline failed: {failure}") from failure
    finally:
        logging.getLogger().handlers.clear()
    run_dir = _new_run_dir(pipeline_root, before)
    evaluation_path = _find(run_dir, "evaluate", "evaluation")
    evaluation = json.loads(evaluation_path.read_text()) if evaluation_path else {}
    version, promoted = None, False
    for outputs in run_dir.glob("register*/executor_output.json"):
        params = json.loads(outputs.read_text()).get("parameterValues", {})
        version, promoted = params.get("version"), bool(params.get("promoted"))
    return RunOutcome(run_dir, evaluation, version, promoted)


_TASK_START = re.compile(r"Executing task '([\w-]+)'")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _StepWatcher(io.TextIOBase):
    """A stdout stand-in that keeps the runner's log in a file and reports task starts."""

    def __init__(self, sink: TextIO, on_step: Callable[[str], None] | None):
        self._sink, self._on_step = sink, on_step

    def write(self, text: str) -> int:
        plain = _ANSI.sub("", text)
        self._sink.write(plain)
        if self._on_step:
            for name in _TASK_START.findall(plain):
                self._on_step(name)
        return len(text)

    def flush(self) -> None:
        self._sink.flush()


@contextlib.contextmanager
def _captured(log_path: Path | None, on_step: Callable[[str], None] | None) -> Iterator[None]:
    if log_path is None:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as sink, contextlib.redirect_stdout(_StepWatcher(sink, on_step)):
        yield


def _new_run_dir(root: Path, before: set[Path]) -> Path:
    created = sorted(
        (p for p in set(root.iterdir()) - before if p.is_dir()), key=lambda p: p.stat().st_mtime
    )
    if not created:
        raise FlywheelError(f"the local runner wrote no run folder under {root}")
    return created[-1]


def _find(run_dir: Path, task: str, output: str) -> Path | None:
    matches = sorted(run_dir.glob(f"{task}*/{output}"))
    return matches[0] if matches else None
