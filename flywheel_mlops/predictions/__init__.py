"""The prediction log and delayed ground truth: storage, KServe payload-logger events, a client."""

from __future__ import annotations

from flywheel_mlops.predictions.records import (
    FeedbackConflict,
    FeedbackItem,
    FeedbackResult,
    PredictionRow,
)
from flywheel_mlops.predictions.store import DatabaseUnavailable, PredictionStore

__all__ = [
    "DatabaseUnavailable",
    "FeedbackConflict",
    "FeedbackItem",
    "FeedbackResult",
    "PredictionRow",
    "PredictionStore",
]
