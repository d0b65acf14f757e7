"""Each monitor run's decision and report, kept beside the registry after its pod is gone."""

from __future__ import annotations

from datetime import datetime

from flywheel_mlops.monitoring import MonitorResult
from flywheel_mlops.registry import Registry

#: Folder, under a model's registry folder, holding one folder per monitor run.
MONITOR_FOLDER = "monitor"


def archive_run(registry_uri: str, model: str, at: datetime, result: MonitorResult) -> str:
    """Copy decision.json and report.html to `<registry>/<model>/monitor/<run time>/`.

    The registry is object storage on a cluster, so the files outlive the CronJob's pod; the
    run time (UTC, to the second) names the folder and sorts runs in time order. Returns the
    folder's URI.
    """
    registry = Registry(registry_uri)
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    folder = f"{registry.root.rstrip('/')}/{model}/{MONITOR_FOLDER}/{stamp}"
    registry.fs.makedirs(folder, exist_ok=True)
    for path in (result.decision_path, result.report_path):
        registry.fs.put_file(str(path), f"{folder}/{path.name}")
    return folder if registry.local else f"{registry.uri.split('://')[0]}://{folder}"
