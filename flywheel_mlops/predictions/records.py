"""What goes into the prediction log and what recording feedback answers: plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PredictionRow:
    """One predicted record: `request_id` and `row` (its index in the request) are the key."""

    request_id: str
    row: int
    model_name: str
    model_version: str
    features: dict[str, Any]
    prediction: float
    logged_at: datetime | None = None  # None: the time it is stored (UTC)
    event_time: datetime | None = None  # when the event happened; None: the arrival time
    call_rows: int | None = None  # records in the call it came from; None: not checked


@dataclass(frozen=True)
class FeedbackItem:
    """An actual outcome for one predicted record, posted after the fact."""

    request_id: str
    actual: float
    row: int = 0


@dataclass(frozen=True)
class FeedbackConflict:
    """Feedback for a key that already has a different actual; the stored value is kept."""

    request_id: str
    row: int
    stored: float
    received: float

    def message(self) -> str:
        """A sentence naming the key and both values."""
        return (
            f"request_id {self.request_id!r} row {self.row} already has actual "
            f"{self.stored}, got {self.received}; the stored value is kept"
        )


@dataclass
class FeedbackResult:
    """How a batch of feedback was recorded; every item lands in exactly one count."""

    joined: int = 0  # stored, and its prediction is in the log
    pending: int = 0  # stored, waiting for its prediction (joins when it arrives)
    duplicates: int = 0  # same key and same value as already stored: nothing to do
    conflicts: list[FeedbackConflict] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Items accounted for."""
        return self.joined + self.pending + self.duplicates + len(self.conflicts)

    def add(self, other: FeedbackResult) -> None:
        """Add another result's counts to this one."""
        self.joined += other.joined
        self.pending += other.pending
        self.duplicates += other.duplicates
        self.conflicts.extend(other.conflicts)
