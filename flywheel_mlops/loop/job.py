"""One run of the monitor job, as a cluster's CronJob takes it: judge the window, keep the
decision where the next pod finds it, start a decided retrain, take one rollout step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from flywheel_mlops.loop.archive import archive_run
from flywheel_mlops.loop.retrain import RetrainStart, start_retrain
from flywheel_mlops.loop.rollout import RouterKind, take_rollout_step
from flywheel_mlops.loop.state import LoopDatabase
from flywheel_mlops.monitoring import RetrainPolicy, run_monitor
from flywheel_mlops.monitoring.run import MonitorResult
from flywheel_mlops.registry import Registry
from flywheel_mlops.rollout import RolloutDecision, RolloutOptions


@dataclass(frozen=True)
class MonitorJob:
    """Everything one run needs: what to judge, where the loop keeps its state, what may follow."""

    model: str
    registry_uri: str
    database_url: str
    folder: Path
    at: datetime
    start: datetime
    end: datetime
    policy: RetrainPolicy
    cache_dir: Path
    runs: Path
    ref: str = "champion"
    window: Path | None = None
    """A Parquet window instead of the prediction log's [start, end)."""
    pipelines_host: str = ""
    retrain_data: str = ""
    retrain_side: str = ""
    retrain_since: datetime | None = None
    local_retrain: bool = True
    rollout: RouterKind | None = None
    rollout_options: RolloutOptions = field(default_factory=RolloutOptions)
    namespace: str = ""
    inference_service: str = ""


@dataclass(frozen=True)
class JobResult:
    """What the run decided, where the decision is kept, and what followed from it."""

    monitored: MonitorResult
    archived: str
    retrain: RetrainStart | None = None
    rollout: RolloutDecision | None = None


def run_job(
    job: MonitorJob, decided: Callable[[MonitorResult, str], None] = lambda *_: None
) -> JobResult:
    """Judge, record and archive (then `decided(result, archived)`), retrain when the policy
    says so, and take one rollout step when asked. A run whose decision is `error` stops after
    the record: the registry and log the rest would read are the ones that just failed. A
    retrain started here registers its candidate later, so a later run gates it."""
    bundle = Registry(job.registry_uri).load(job.model, job.ref)
    source = job.window if job.window is not None else prediction_log_window(job)
    result = run_monitor(bundle, source, job.policy, job.folder, job.at, cache_dir=job.cache_dir)
    LoopDatabase(job.database_url).record(job.model, "decision", job.at, result.decision.to_dict())
    archived = archive_run(job.registry_uri, job.model, job.at, result)
    decided(result, archived)
    if result.verdict == "error":
        return JobResult(result, archived)
    retrain = None
    if result.retrain:
        retrain = start_retrain(
            bundle,
            job.registry_uri,
            job.pipelines_host,
            job.retrain_data,
            job.retrain_side,
            job.retrain_since or job.start,
            job.at,
            " ".join(result.decision.why),
            job.local_retrain,
            job.runs,
        )
    rollout = None
    if job.rollout is not None:
        rollout = take_rollout_step(
            job.rollout,
            job.model,
            job.registry_uri,
            job.database_url,
            job.folder,
            job.at,
            job.rollout_options,
            namespace=job.namespace,
            inference_service=job.inference_service,
        )
    return JobResult(result, archived, retrain, rollout)


def prediction_log_window(job: MonitorJob) -> Callable[[], pd.DataFrame]:
    """A loader for the prediction log's window, called inside the run so failures are recorded."""

    def load() -> pd.DataFrame:
        from flywheel_mlops.predictions import PredictionStore

        return PredictionStore(job.database_url).window(job.start, job.end, model_name=job.model)

    load.description = f"prediction log [{job.start.isoformat()}, {job.end.isoformat()})"  # type: ignore[attr-defined]
    return load
