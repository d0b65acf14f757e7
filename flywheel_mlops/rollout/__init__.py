"""Safe rollout: gate a retrained candidate, give it a canary share, promote or roll back."""

from flywheel_mlops.rollout.controller import (
    RolloutDecision,
    RolloutLog,
    gate_candidate,
    judge_canary,
)
from flywheel_mlops.rollout.router import KServeRouter, LocalRouter, TrafficRouter

__all__ = [
    "KServeRouter",
    "LocalRouter",
    "RolloutDecision",
    "RolloutLog",
    "TrafficRouter",
    "gate_candidate",
    "judge_canary",
]
