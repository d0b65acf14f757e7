"""What happened each simulated day, as the story's report and summary read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass
class DayRecord:
    """One day of live traffic: what was served, what the monitor measured, what was decided."""

    day: date
    requests: int = 0
    rejected: int = 0
    served_by_version: dict[str, int] = field(default_factory=dict)
    mae_by_version: dict[str, float] = field(default_factory=dict)
    mae: float = float("nan")
    closure_zones_mae: float = float("nan")
    verdict: str = ""
    drift_share: float = float("nan")
    drift_by_feature: dict[str, float] = field(default_factory=dict)
    retrain: bool = False
    events: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "day": self.day.isoformat()}
