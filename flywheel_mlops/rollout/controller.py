"""Rollout decisions: a candidate must beat the champion on recent labelled data, then live."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flywheel_mlops.registry.bundle import Bundle
from flywheel_mlops.scoring import error_summary, mae

ACTUAL = "actual"


class RolloutAction(StrEnum):
    """What one step of a rollout did."""

    CANARY = "canary"  # the gate passed: the candidate serves a share of traffic
    PROMOTE = "promote"  # the canary won on live traffic and became the champion
    ROLLBACK = "rollback"  # the canary lost on live traffic and was withdrawn
    REJECT = "reject"  # the gate failed: the candidate never serves
    WAIT = "wait"  # not enough labelled rows to decide yet
    IDLE = "idle"  # nothing to decide: no candidate and no canary


@dataclass(frozen=True)
class RolloutDecision:
    """One step of a rollout and why it was taken."""

    action: RolloutAction
    candidate: str
    champion: str
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


def gate_candidate(
    candidate: Bundle,
    champion: Bundle,
    labelled: pd.DataFrame,
    margin: float = 0.02,
    min_rows: int = 200,
) -> RolloutDecision:
    """Offline gate: both models score the same recent labelled records (not their own test
    splits, which come from different windows); the candidate must win by `margin`.

    Rows with a category either model never saw are left out: both score the same rows."""
    rows = labelled.dropna(subset=[ACTUAL])
    rows = rows[champion.known_rows(rows) & candidate.known_rows(rows)]
    if len(rows) < min_rows:
        return RolloutDecision(
            RolloutAction.WAIT,
            candidate.version,
            champion.version,
            f"{len(rows)} labelled rows, {min_rows} needed to compare",
        )
    actual = rows[ACTUAL].to_numpy(dtype=np.float64)
    ours = error_summary(actual, candidate.predict(rows))
    theirs = error_summary(actual, champion.predict(rows))
    numbers = {"rows": len(rows), "candidate_mae": ours["mae"], "champion_mae": theirs["mae"]}
    if ours["mae"] <= (1 - margin) * theirs["mae"]:
        return RolloutDecision(
            RolloutAction.CANARY,
            candidate.version,
            champion.version,
            f"on {len(rows)} recent labelled trips {candidate.version} has MAE {ours['mae']:.2f}"
            f" vs {theirs['mae']:.2f} for {champion.version}: worth a canary",
            numbers,
        )
    return RolloutDecision(
        RolloutAction.REJECT,
        candidate.version,
        champion.version,
        f"on {len(rows)} recent labelled trips {candidate.version} has MAE {ours['mae']:.2f} "
        f"vs {theirs['mae']:.2f}: not better by {margin:.0%}",
        numbers,
    )


def judge_canary(
    window: pd.DataFrame,
    candidate: str,
    champion: str,
    margin: float = 0.0,
    min_rows: int = 100,
) -> RolloutDecision:
    """Live verdict: each version's MAE on the labelled traffic it actually served."""
    labelled = window.dropna(subset=[ACTUAL])
    maes: dict[str, float] = {}
    counts: dict[str, int] = {}
    for version in (candidate, champion):
        served = labelled[labelled["model_version"] == version]
        counts[version] = len(served)
        maes[version] = mae(served[ACTUAL], served["prediction"])
    numbers = {"rows": counts, "mae": maes}
    if min(counts.values()) < min_rows:
        return RolloutDecision(
            RolloutAction.WAIT,
            candidate,
            champion,
            f"labelled rows so far {counts}; {min_rows} each needed",
            numbers,
        )
    if maes[candidate] <= (1 - margin) * maes[champion]:
        return RolloutDecision(
            RolloutAction.PROMOTE,
            candidate,
            champion,
            f"canary {candidate} served {counts[candidate]} labelled trips at MAE "
            f"{maes[candidate]:.2f} vs {maes[champion]:.2f} for {champion}",
            numbers,
        )
    return RolloutDecision(
        RolloutAction.ROLLBACK,
        candidate,
        champion,
        f"canary {candidate} is worse live: MAE {maes[candidate]:.2f} on {counts[candidate]} "
        f"trips vs {maes[champion]:.2f} for {champion}",
        numbers,
    )


class RolloutLog:
    """Every rollout decision, one JSON line each, so the story can be told afterwards."""

    def __init__(self, path: Path):
        self.path = path

    def record(self, decision: RolloutDecision) -> RolloutDecision:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(asdict(decision), default=float) + "\n")
        return decision

    def read(self) -> list[RolloutDecision]:
        if not self.path.exists():
            return []
        return [
            _decision(json.loads(line))
            for line in self.path.read_text().splitlines()
            if line.strip()
        ]


def _decision(entry: dict[str, Any]) -> RolloutDecision:
    return RolloutDecision(**{**entry, "action": RolloutAction(entry["action"])})
