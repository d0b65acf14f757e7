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

from flywheel_mlops.registry.bundle import Bundle, comparable_rows
from flywheel_mlops.rollout.paired import Verdict, paired_bound, rows_still_needed, verdict
from flywheel_mlops.scoring import error_summary

ACTUAL = "actual"
#: The prediction log's event time of each row (PredictionStore.window).
EVENT_TIME = "event_time"


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
    """Offline gate: both models score the same recent labelled records that neither was
    fitted or selected on (held out: outside both bundles' seen windows, by `event_time`); the
    candidate must win by `margin`.

    Rows with a category either model never saw are left out too: both score the same rows.
    The decision's numbers say how many rows each rule dropped."""
    rows = labelled.dropna(subset=[ACTUAL])
    same, seen, unknown = comparable_rows(rows, EVENT_TIME, candidate, champion)
    dropped = {"rows_seen_in_training": seen, "rows_unseen_categories": unknown}
    rows = rows[same]
    held_out = f"held-out labelled rows ({dropped['rows_seen_in_training']} left out: trained on)"
    if len(rows) < min_rows:
        return RolloutDecision(
            RolloutAction.WAIT,
            candidate.version,
            champion.version,
            f"{len(rows)} {held_out}, {min_rows} needed to compare",
            {"rows": len(rows), **dropped},
        )
    actual = rows[ACTUAL].to_numpy(dtype=np.float64)
    ours = error_summary(actual, candidate.predict(rows))
    theirs = error_summary(actual, champion.predict(rows))
    numbers: dict[str, Any] = {
        "rows": len(rows),
        **dropped,
        "candidate_mae": ours["mae"],
        "champion_mae": theirs["mae"],
    }
    if EVENT_TIME in rows:
        numbers["rows_from"] = str(rows[EVENT_TIME].min())
        numbers["rows_until"] = str(rows[EVENT_TIME].max())
    compared = (
        f"on {len(rows)} {held_out} {candidate.version} has MAE {ours['mae']:.2f} vs "
        f"{theirs['mae']:.2f} for {champion.version}"
    )
    if ours["mae"] <= (1 - margin) * theirs["mae"]:
        return RolloutDecision(
            RolloutAction.CANARY,
            candidate.version,
            champion.version,
            f"{compared}: worth a canary",
            numbers,
        )
    return RolloutDecision(
        RolloutAction.REJECT,
        candidate.version,
        champion.version,
        f"{compared}: not better by {margin:.0%}",
        numbers,
    )


def judge_canary(
    canary: Bundle,
    champion: Bundle,
    window: pd.DataFrame,
    margin: float = 0.01,
    alpha: float = 0.05,
    min_rows: int = 100,
    max_rows: int = 20_000,
) -> RolloutDecision:
    """Live verdict, paired: both models score every labelled row of the canary window (served
    by either version) from its logged features, and the mean of d = |champion error| -
    |canary error| is bounded by a confidence sequence (rollout/paired.py) valid at every run.

    PROMOTE when its lower bound exceeds `margin` x the champion's MAE on those rows, ROLLBACK
    when its upper bound is below zero, ROLLBACK as inconclusive (the champion stays) once
    `max_rows` rows decided neither, else WAIT; WAIT too below `min_rows` paired rows. Rows with
    a category either model never saw are left out and counted in `rows_dropped`."""
    labelled = window.dropna(subset=[ACTUAL])
    known = champion.known_rows(labelled) & canary.known_rows(labelled)
    rows = labelled[known]
    numbers: dict[str, Any] = {
        "rows": len(rows),
        "rows_dropped": int(len(labelled) - len(rows)),
        "alpha": alpha,
        "margin": margin,
    }
    names = (canary.version, champion.version)
    needed = max(min_rows, 2)  # a sample variance needs two rows
    if len(rows) < needed:
        return RolloutDecision(
            RolloutAction.WAIT,
            *names,
            f"{len(rows)} labelled rows both models can score since the canary started, "
            f"{min_rows} needed to compare",
            {**numbers, "rows_needed": needed - len(rows)},
        )
    actual = rows[ACTUAL].to_numpy(dtype=np.float64)
    champion_errors = np.abs(champion.predict(rows) - actual)
    canary_errors = np.abs(canary.predict(rows) - actual)
    bound = paired_bound(champion_errors - canary_errors, alpha)
    champion_mae = float(champion_errors.mean())
    numbers |= {
        "estimate": bound.mean,
        "relative_estimate": bound.mean / champion_mae if champion_mae else float("nan"),
        "lower": bound.lower,
        "upper": bound.upper,
        "champion_mae": champion_mae,
        "canary_mae": float(canary_errors.mean()),
        "rows_needed": rows_still_needed(bound, champion_mae, margin, max_rows),
    }
    said = (
        f"on the same {len(rows)} labelled rows {canary.version} has MAE "
        f"{numbers['canary_mae']:.2f} vs {champion_mae:.2f} for {champion.version}; the "
        f"{1 - alpha:.0%} bound on the mean improvement is [{bound.lower:.3f}, {bound.upper:.3f}]"
    )
    match verdict(bound, champion_mae, margin, max_rows):
        case Verdict.BETTER:
            action, why = RolloutAction.PROMOTE, f"above {margin:.0%} of the champion's MAE"
        case Verdict.WORSE:
            action, why = RolloutAction.ROLLBACK, "below zero: the canary is worse"
        case Verdict.INCONCLUSIVE:
            action = RolloutAction.ROLLBACK
            why = f"inconclusive after {len(rows)} rows: keep the champion"
        case Verdict.UNDECIDED:
            action = RolloutAction.WAIT
            why = f"not decided yet, about {numbers['rows_needed']} more rows needed"
    return RolloutDecision(action, *names, f"{said}: {why}", numbers)


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
