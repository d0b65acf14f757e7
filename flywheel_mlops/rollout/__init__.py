"""Safe rollout: gate a retrained candidate, give it a canary share, promote or roll back."""

from flywheel_mlops.rollout.controller import (
    RolloutAction,
    RolloutDecision,
    RolloutLog,
    gate_candidate,
    judge_canary,
)
from flywheel_mlops.rollout.router import (
    KServeRouter,
    LocalRouter,
    TrafficRouter,
)
from flywheel_mlops.rollout.step import RolloutOptions, rollout_step

__all__ = [
    "KServeRouter",
    "LocalRouter",
    "RolloutAction",
    "RolloutDecision",
    "RolloutLog",
    "RolloutOptions",
    "TrafficRouter",
    "gate_candidate",
    "judge_canary",
    "rollout_step",
]
