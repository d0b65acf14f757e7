"""The retraining policy: debounce, cooldown and a daily cap over the decision history."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from flywheel_mlops.files import write_atomic
from flywheel_mlops.monitoring.decision import Decision
from flywheel_mlops.monitoring.thresholds import Thresholds

BAD = ("drift", "degraded")
HISTORY_KEPT = 50


@dataclass(frozen=True)
class TriggerDecision:
    """Whether to retrain now, and the sentence that says why (or why not)."""

    trigger: bool
    why: str


@dataclass
class PolicyState:
    """What the policy remembers between runs (a small JSON file)."""

    consecutive_bad: int = 0
    triggers: list[str] = field(default_factory=list)
    """ISO times of past triggers, newest last."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """The last decisions seen: time, model version, verdict, trigger."""


class StateStore(Protocol):
    """Where a policy keeps its state between runs, with a revision for compare-and-swap."""

    def describe(self) -> str: ...

    def load(self) -> tuple[dict[str, Any] | None, int]:
        """The stored state (None when there is none yet) and its revision."""
        ...

    def save(self, state: dict[str, Any], revision: int) -> int:
        """Store `state` if still at `revision`; the new revision. Raises on a conflict."""
        ...


class FileState:
    """State in a local JSON file, for one process at a time (a local run, a test).

    A cluster's monitor keeps its state in the loop database instead (`loop.state`): a pod's
    scratch folder is new in every run.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def describe(self) -> str:
        return str(self.path)

    def load(self) -> tuple[dict[str, Any] | None, int]:
        if not self.path.is_file():
            return None, 0
        try:
            return json.loads(self.path.read_text()), 1
        except ValueError as exc:
            raise ValueError(f"policy state {self.path} is not JSON: {exc}") from exc

    def save(self, state: dict[str, Any], revision: int) -> int:
        # A killed run leaves the old state or the new one.
        write_atomic(self.path, json.dumps(state, indent=2))
        return revision + 1


class RetrainPolicy:
    """Turns decisions into retrain triggers, remembering past windows in its state store.

    Rules, in order: a failed run, too little data or a good window never triggers (a good
    window resets the streak; a failed or empty one leaves it as it was); a bad window
    (`drift`/`degraded`) triggers once `debounce` bad windows came in a row, unless the last
    trigger is younger than `cooldown` or `daily_cap` triggers already happened that UTC day.
    """

    def __init__(
        self,
        state: Path | StateStore,
        thresholds: Thresholds | None = None,
        debounce: int = 2,
        cooldown: timedelta = timedelta(hours=6),
        daily_cap: int = 2,
    ):
        if debounce < 1:
            raise ValueError(f"debounce must be >= 1, got {debounce}")
        if daily_cap < 0:
            raise ValueError(f"daily_cap must be >= 0, got {daily_cap}")
        if cooldown < timedelta(0):
            raise ValueError(f"cooldown must be >= 0, got {cooldown}")
        self.state: StateStore = FileState(state) if isinstance(state, Path) else state
        self.thresholds = thresholds or Thresholds()
        self.debounce = debounce
        self.cooldown = cooldown
        self.daily_cap = daily_cap

    #: A trigger counts only on a bad window (drift or degraded); a schedule ignores the verdict.
    needs_bad_window = True

    def settings(self) -> dict[str, Any]:
        """The policy's own settings, as the decision records them."""
        return {
            "debounce": self.debounce,
            "cooldown_hours": self.cooldown.total_seconds() / 3600,
            "daily_cap": self.daily_cap,
        }

    def load_state(self) -> tuple[PolicyState, int]:
        """The remembered state and its revision; nothing stored is a fresh start."""
        stored, revision = self.state.load()
        if stored is None:
            return PolicyState(), revision
        try:
            return PolicyState(**stored), revision
        except TypeError as exc:
            raise ValueError(
                f"policy state {self.state.describe()} must hold consecutive_bad, triggers "
                f"and history; could not read it: {exc}"
            ) from exc

    def decide(self, decision: Decision | Mapping[str, Any], now: datetime) -> TriggerDecision:
        """Record a decision in the state store and say whether it triggers a retrain.

        The save is a compare-and-swap: when another run saved since this one read the state,
        the store raises and this run's trigger never happens.
        """
        verdict, version = _verdict_and_version(decision)
        state, revision = self.load_state()
        result = self._apply(state, verdict, now)
        state.history.append(
            {
                "at": now.isoformat(),
                "model_version": version,
                "verdict": verdict,
                "trigger": result.trigger,
                "consecutive_bad": state.consecutive_bad,
            }
        )
        state.history = state.history[-HISTORY_KEPT:]
        self.state.save(asdict(state), revision)
        return result

    def _apply(self, state: PolicyState, verdict: str, now: datetime) -> TriggerDecision:
        if verdict == "error":
            return TriggerDecision(False, "The monitor run failed, so nothing triggers.")
        if verdict == "insufficient_data":
            return TriggerDecision(False, "The window had too little data, so nothing triggers.")
        if verdict not in BAD:
            state.consecutive_bad = 0
            return TriggerDecision(False, f"The window is {verdict}: no retrain needed.")
        state.consecutive_bad += 1
        if state.consecutive_bad < self.debounce:
            return TriggerDecision(
                False,
                f"{state.consecutive_bad} bad window(s) in a row; a retrain needs "
                f"{self.debounce} (debounce).",
            )
        if state.triggers:
            last = datetime.fromisoformat(state.triggers[-1])
            if now - last < self.cooldown:
                return TriggerDecision(
                    False,
                    f"{state.consecutive_bad} bad windows in a row, but the last retrain was at "
                    f"{last.isoformat()}; cooldown lasts until "
                    f"{(last + self.cooldown).isoformat()}.",
                )
        today = [t for t in state.triggers if datetime.fromisoformat(t).date() == now.date()]
        if len(today) >= self.daily_cap:
            return TriggerDecision(
                False,
                f"{state.consecutive_bad} bad windows in a row, but {len(today)} retrain(s) "
                f"already ran on {now.date().isoformat()} (daily cap {self.daily_cap}).",
            )
        state.triggers = [*state.triggers, now.isoformat()][-HISTORY_KEPT:]
        streak, state.consecutive_bad = state.consecutive_bad, 0
        return TriggerDecision(
            True, f"Retrain: {streak} bad windows in a row ({verdict}), outside cooldown and cap."
        )


def _verdict_and_version(decision: Decision | Mapping[str, Any]) -> tuple[str, str | None]:
    if isinstance(decision, Decision):
        return decision.verdict, decision.model.get("version")
    return str(decision["verdict"]), decision.get("model", {}).get("version")


class SchedulePolicy(RetrainPolicy):
    """Retrain every `every` of the loop's clock (event time), whatever the windows say: the
    fixed schedule a team runs before it trusts drift, kept to compare policies on one history.

    `every` is a timedelta or a calendar offset (`pd.DateOffset(months=1)`: the same day of the
    next month, however long the month). Its first trigger comes `every` after `since` (the first
    champion's training end)."""

    needs_bad_window = False

    def __init__(
        self,
        state: Path | StateStore,
        every: timedelta | pd.DateOffset,
        since: datetime,
        thresholds: Thresholds | None = None,
    ):
        if (pd.Timestamp(since) + every) <= pd.Timestamp(since):
            raise ValueError(f"a schedule's interval must be > 0, got {every}")
        super().__init__(state, thresholds, debounce=1, cooldown=timedelta(0), daily_cap=1_000_000)
        self.every, self.since = every, since

    def settings(self) -> dict[str, Any]:
        return {"schedule": str(self.every)}

    def _apply(self, state: PolicyState, verdict: str, now: datetime) -> TriggerDecision:
        if verdict == "error":
            return TriggerDecision(False, "The monitor run failed, so nothing triggers.")
        last = datetime.fromisoformat(state.triggers[-1]) if state.triggers else self.since
        due = (pd.Timestamp(last) + self.every).to_pydatetime()
        if now < due:
            return TriggerDecision(
                False, f"The schedule retrains every {self.every}; next at {due}."
            )
        state.triggers = [*state.triggers, now.isoformat()][-HISTORY_KEPT:]
        return TriggerDecision(True, f"Retrain: the schedule retrains every {self.every}.")


class NeverPolicy(RetrainPolicy):
    """Never retrain: the stale model's baseline that every other policy is measured against."""

    def __init__(self, state: Path | StateStore, thresholds: Thresholds | None = None):
        super().__init__(state, thresholds)

    def settings(self) -> dict[str, Any]:
        return {"never": True}

    def _apply(self, state: PolicyState, verdict: str, now: datetime) -> TriggerDecision:
        return TriggerDecision(False, "The policy never retrains.")
