"""One monitor run: window -> drift and live error -> decision -> policy -> files."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from flywheel_mlops.errors import FlywheelError
from flywheel_mlops.monitoring import reference_stats
from flywheel_mlops.monitoring.decision import Decision, drift_section, judge
from flywheel_mlops.monitoring.drift import DriftResult, measure_drift
from flywheel_mlops.monitoring.live_error import live_error, slice_names
from flywheel_mlops.monitoring.policy import BAD, RetrainPolicy
from flywheel_mlops.monitoring.prometheus import write_metrics
from flywheel_mlops.monitoring.report import write_report
from flywheel_mlops.monitoring.window import (
    batches_of_frame,
    batches_of_parquet,
    required_columns,
    summarise,
)
from flywheel_mlops.registry.bundle import Bundle

log = logging.getLogger(__name__)

DECISION_FILE = "decision.json"
REPORT_FILE = "report.html"
METRICS_FILE = "monitor.prom"
HISTORY_FILE = "decisions.jsonl"


@dataclass(frozen=True)
class MonitorResult:
    """What a run decided and where it wrote it."""

    decision: Decision
    decision_path: Path
    report_path: Path
    metrics_path: Path
    reference_stats_cached: bool | None
    """True: reference stats came from the cache; False: computed now; None: failed first."""

    @property
    def verdict(self) -> str:
        """The decision's verdict."""
        return self.decision.verdict

    @property
    def retrain(self) -> bool:
        """Whether the policy triggered a retrain."""
        return self.decision.retrain


WindowSource = pd.DataFrame | Path | Callable[[], pd.DataFrame]


def run_monitor(
    bundle: Bundle,
    window: WindowSource,
    policy: RetrainPolicy,
    out_dir: Path,
    now: datetime,
    cache_dir: Path | None = None,
) -> MonitorResult:
    """Judge one window of traffic against the champion bundle and let the policy decide.

    Args:
        bundle: the model being monitored (its reference, schema and test metrics).
        window: the prediction-log window: a frame, a Parquet file (read in batches), or a
            function returning the frame (e.g. a database query), so a failed read is an
            `error` decision too.
        policy: thresholds and the retraining policy; its state file is updated.
        out_dir: where decision.json, report.html, monitor.prom and decisions.jsonl go.
        now: the time of this run (UTC, timezone-aware), for the decision and the policy.
        cache_dir: where reference statistics are cached; default `<out_dir>/../reference-cache`.

    Returns:
        The decision and its files. Any failure while reading or measuring becomes an `error`
        decision (written, never triggering) instead of an exception: the next run starts clean.
    """
    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir else out_dir.parent / "reference-cache"
    thresholds = policy.thresholds
    model = {"name": bundle.name, "version": bundle.version}
    source = _describe(window)
    cached: bool | None = None
    snapshot: Any = None
    try:
        stats, cached = reference_stats.load_or_compute(bundle, cache)
        model["manifest_sha256"] = stats.manifest_sha256
        slices = slice_names(bundle.metrics)
        if isinstance(window, Path):
            batches = batches_of_parquet(window, [*required_columns(stats), "logged_at"])
        elif isinstance(window, pd.DataFrame):
            batches = batches_of_frame(window)
        else:
            batches = batches_of_frame(window())
        summary = summarise(batches, stats, slices, thresholds.sample_rows, thresholds.seed)
        drift: DriftResult | None = None
        if summary.rows >= thresholds.min_rows and summary.sample is not None:
            drift = measure_drift(
                bundle.reference(),
                summary.sample,
                stats,
                summary.histograms,
            )
            snapshot = drift.snapshot
        error = live_error(summary, bundle.metrics, thresholds)
        verdict, why = judge(summary.rows, drift, error, thresholds)
        decision = Decision(
            verdict=verdict,
            why=why,
            measured_at=now,
            model=model,
            window={
                "source": source,
                "start": summary.start.isoformat() if summary.start is not None else None,
                "end": summary.end.isoformat() if summary.end is not None else None,
                "rows": summary.rows,
                "labelled_rows": summary.labelled_rows,
            },
            thresholds={**thresholds.to_dict(), **policy.settings()},
            drift=drift_section(drift, thresholds) if drift else None,
            live_error=error.to_dict() if error.labelled_rows else None,
        )
    except Exception as exc:
        log.error("monitor run failed:\n%s", traceback.format_exc())
        snapshot = None
        decision = Decision(
            verdict="error",
            why=[
                f"The monitor run failed ({type(exc).__name__}: {exc}); nothing was judged and "
                "no retrain is asked for. The next run starts from scratch."
            ],
            measured_at=now,
            model=model,
            window={
                "source": source,
                "start": None,
                "end": None,
                "rows": None,
                "labelled_rows": None,
            },
            thresholds={**thresholds.to_dict(), **policy.settings()},
            error={"type": type(exc).__name__, "message": str(exc)},
        )
    _apply_policy(decision, policy, now)
    return _write(decision, out_dir, snapshot, cached)


def _describe(window: WindowSource) -> str:
    if isinstance(window, Path):
        return str(window)
    if isinstance(window, pd.DataFrame):
        return "dataframe"
    return getattr(window, "description", "loader")


def _apply_policy(decision: Decision, policy: RetrainPolicy, now: datetime) -> None:
    try:
        trigger = policy.decide(decision, now)
    except (OSError, ValueError, FlywheelError) as exc:
        # Without its memory the policy cannot debounce: it must not trigger, and it says so.
        decision.retrain = False
        decision.policy = {"trigger": False, "why": f"policy state unusable: {exc}"}
        decision.why.append(f"The retraining policy could not run ({exc}), so nothing triggers.")
        return
    bad = decision.verdict in BAD
    decision.retrain = (
        trigger.trigger and decision.verdict != "error" and (bad or not policy.needs_bad_window)
    )
    decision.policy = {"trigger": decision.retrain, "why": trigger.why, **policy.settings()}
    decision.why.append(trigger.why)


def _write(decision: Decision, out_dir: Path, snapshot: Any, cached: bool | None) -> MonitorResult:
    import json

    paths = {
        "decision": out_dir / DECISION_FILE,
        "report_html": out_dir / REPORT_FILE,
        "metrics_prom": out_dir / METRICS_FILE,
    }
    decision.outputs = {name: str(path) for name, path in paths.items()}
    document = decision.to_dict()
    write_report(paths["report_html"], document, snapshot)
    write_metrics(paths["metrics_prom"], document)
    decision.write(paths["decision"])
    with (out_dir / HISTORY_FILE).open("a") as history:
        history.write(json.dumps(document, default=str) + "\n")
    return MonitorResult(
        decision, paths["decision"], paths["report_html"], paths["metrics_prom"], cached
    )
