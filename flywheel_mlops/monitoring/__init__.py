"""The monitor: Evidently drift and live error over a logged window, a decision, a policy."""

from __future__ import annotations

from flywheel_mlops.monitoring.decision import Decision, Verdict
from flywheel_mlops.monitoring.policy import RetrainPolicy, TriggerDecision
from flywheel_mlops.monitoring.run import MonitorResult, run_monitor
from flywheel_mlops.monitoring.thresholds import Thresholds
from flywheel_mlops.monitoring.window import CorruptWindowError

__all__ = [
    "CorruptWindowError",
    "Decision",
    "MonitorResult",
    "RetrainPolicy",
    "Thresholds",
    "TriggerDecision",
    "Verdict",
    "run_monitor",
]
