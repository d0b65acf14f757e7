"""Prometheus metrics of a monitor run, written as a node-exporter textfile (`.prom`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

VERDICTS = ("ok", "drift", "degraded", "insufficient_data", "error")


def build_registry(decision: dict[str, Any]) -> CollectorRegistry:
    """Gauges for one decision, in a registry of their own (nothing global is touched)."""
    registry = CollectorRegistry()
    model = decision.get("model", {})
    labels = {"model": str(model.get("name", "")), "version": str(model.get("version", ""))}
    names = list(labels)

    def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"flywheel_monitor_{name}", doc, [*names, *extra], registry=registry)

    verdict = gauge("verdict", "1 for the verdict of the last run, 0 for the others.", ("verdict",))
    for name in VERDICTS:
        verdict.labels(**labels, verdict=name).set(1.0 if decision["verdict"] == name else 0.0)
    gauge("retrain", "1 when the last run triggered a retrain.").labels(**labels).set(
        1.0 if decision.get("retrain") else 0.0
    )
    gauge("last_run_timestamp_seconds", "Unix time of the last run.").labels(**labels).set(
        datetime.fromisoformat(decision["measured_at"]).timestamp()
    )
    window = decision.get("window", {})
    gauge("window_rows", "Rows in the window.").labels(**labels).set(window.get("rows") or 0)
    gauge("labelled_rows", "Rows with ground truth.").labels(**labels).set(
        window.get("labelled_rows") or 0
    )
    drift = decision.get("drift")
    if drift:
        gauge("drift_share", "Share of drifted features.").labels(**labels).set(drift["share"])
        score = gauge(
            "feature_drift_score", "Evidently drift score per column.", ("feature", "method")
        )
        for entry in [*drift["features"].values(), drift["prediction"]]:
            score.labels(**labels, feature=entry["column"], method=entry["method"]).set(
                entry["score"]
            )
    live = decision.get("live_error")
    if live and live.get("mae") is not None:
        gauge("live_mae", "Live MAE on labelled rows.").labels(**labels).set(live["mae"])
        gauge("live_mae_ratio", "Live MAE / test MAE.").labels(**labels).set(live["ratio"])
        ratio = gauge("slice_mae_ratio", "Live MAE / test MAE per slice.", ("slice", "value"))
        for name, values in live.get("slices", {}).items():
            for value, entry in values.items():
                ratio.labels(**labels, slice=name, value=value).set(entry["ratio"])
    return registry


def write_metrics(path: Path, decision: dict[str, Any]) -> None:
    """Write the textfile (prometheus_client writes a temp file and renames it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), build_registry(decision))
