"""Kubeflow Pipelines on a cluster: upload the compiled pipeline and start a run through the API.

`flywheel pipeline submit` and the monitor's retraining trigger both come through here, so a
retrain started by drift looks exactly like one started by a person, with its reason attached.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel_mlops.errors import FlywheelError

EXPERIMENT = "flywheel"


@dataclass(frozen=True)
class SubmittedRun:
    """What the KFP API answered: ids to follow the run with."""

    run_id: str
    pipeline_id: str
    version_id: str
    experiment_id: str
    url: str


def submit_training_run(
    host: str,
    arguments: dict[str, Any],
    package: Path | None = None,
    experiment: str = EXPERIMENT,
    token: str | None = None,
    namespace: str | None = None,
) -> SubmittedRun:
    """Upload the compiled pipeline (once per content hash) and start a run with `arguments`.

    The pipeline is registered under its own name; each distinct compiled YAML becomes a
    pipeline version named by its sha256 prefix, so re-submitting the same code reuses it.
    """
    import kfp

    from flywheel_pipelines.training import COMPILED, PIPELINE_NAME

    package = package or COMPILED
    digest = hashlib.sha256(package.read_bytes()).hexdigest()[:12]
    version_name = f"{PIPELINE_NAME}-{digest}"
    # kfp prints links to its UI on stdout; a CronJob's log should carry our summary instead.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            client = kfp.Client(host=host, existing_token=token, namespace=namespace or "kubeflow")
            pipeline_id = client.get_pipeline_id(PIPELINE_NAME)
            if pipeline_id is None:
                pipeline_id = client.upload_pipeline(
                    str(package), PIPELINE_NAME, description="Flywheel training pipeline"
                ).pipeline_id
            versions = client.list_pipeline_versions(pipeline_id, page_size=200).pipeline_versions
            version = next((v for v in versions or [] if v.display_name == version_name), None)
            if version is None:
                version = client.upload_pipeline_version(
                    str(package), version_name, pipeline_id=pipeline_id
                )
            experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            run = client.run_pipeline(
                experiment_id,
                f"{PIPELINE_NAME}-{stamp}",
                params=arguments,
                pipeline_id=pipeline_id,
                version_id=version.pipeline_version_id,
            )
        except Exception as error:  # the KFP client raises many types; all mean "not submitted"
            raise FlywheelError(
                f"could not submit a run to Kubeflow Pipelines at {host}: "
                f"{type(error).__name__}: {error}"
            ) from error
    return SubmittedRun(
        run.run_id,
        pipeline_id,
        version.pipeline_version_id,
        experiment_id,
        f"{host.rstrip('/')}/#/runs/details/{run.run_id}",
    )
