"""The retraining policy: debounce, cooldown, daily cap, failures never trigger, state survives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flywheel_mlops.monitoring import RetrainPolicy, Thresholds

START = datetime(2026, 3, 16, 0, 0, tzinfo=UTC)


def _decision(verdict: str) -> dict[str, object]:
    return {"verdict": verdict, "model": {"name": "pickup-eta", "version": "v0001"}}


def _feed(policy: RetrainPolicy, verdicts: list[str], step: timedelta) -> list[bool]:
    return [policy.decide(_decision(v), START + i * step).trigger for i, v in enumerate(verdicts)]


@pytest.mark.parametrize(
    ("debounce", "verdicts", "expected"),
    [
        (1, ["ok", "degraded"], [False, True]),
        (2, ["degraded", "ok", "degraded", "degraded"], [False, False, False, True]),
        (2, ["drift", "degraded"], [False, True]),
        (3, ["degraded", "error", "degraded", "insufficient_data", "degraded"],
         [False, False, False, False, True]),
    ],
    ids=["one-bad-window", "ok-resets-streak", "drift-and-degraded-both-bad",
         "failures-neither-count-nor-reset"],
)  # fmt: skip
def test_debounce_needs_bad_windows_in_a_row(
    tmp_path: Path, debounce: int, verdicts: list[str], expected: list[bool]
) -> None:
    policy = RetrainPolicy(tmp_path / "state.json", debounce=debounce, cooldown=timedelta(0))
    assert _feed(policy, verdicts, timedelta(hours=1)) == expected


@pytest.mark.parametrize("verdict", ["error", "insufficient_data", "ok"])
def test_a_failed_empty_or_good_window_never_triggers(tmp_path: Path, verdict: str) -> None:
    policy = RetrainPolicy(tmp_path / "state.json", debounce=1, cooldown=timedelta(0))
    assert _feed(policy, [verdict] * 5, timedelta(hours=1)) == [False] * 5


def test_cooldown_holds_after_a_retrain(tmp_path: Path) -> None:
    policy = RetrainPolicy(
        tmp_path / "s.json", debounce=1, cooldown=timedelta(hours=6), daily_cap=9
    )
    triggers = _feed(policy, ["degraded"] * 8, timedelta(hours=1))
    assert triggers == [True, False, False, False, False, False, True, False]
    why = policy.decide(_decision("degraded"), START + timedelta(hours=8)).why
    assert "cooldown" in why


def test_daily_cap_holds_within_a_utc_day(tmp_path: Path) -> None:
    policy = RetrainPolicy(tmp_path / "s.json", debounce=1, cooldown=timedelta(0), daily_cap=2)
    triggers = _feed(policy, ["degraded"] * 23, timedelta(hours=1))
    assert sum(triggers) == 2
    capped = policy.decide(_decision("degraded"), START + timedelta(hours=23, minutes=30))
    assert not capped.trigger
    assert "daily cap" in capped.why
    assert policy.decide(_decision("degraded"), START + timedelta(days=1, hours=1)).trigger


def test_state_survives_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    RetrainPolicy(path, debounce=2).decide(_decision("degraded"), START)
    again = RetrainPolicy(path, debounce=2).decide(
        _decision("degraded"), START + timedelta(hours=1)
    )
    assert again.trigger
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temp file left behind


def test_an_unreadable_state_file_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"state\.json"):
        RetrainPolicy(path).decide(_decision("degraded"), START)


@pytest.mark.parametrize(
    ("field", "value"),
    [("drift_share", 0.0), ("mae_ratio", 1.0), ("slice_mae_ratio", 0.9), ("min_rows", 0)],
)
def test_thresholds_reject_values_that_cannot_judge(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        Thresholds(**{field: value})


@pytest.mark.parametrize(("field", "value"), [("debounce", 0), ("daily_cap", -1)])
def test_policy_rejects_impossible_settings(tmp_path: Path, field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        RetrainPolicy(tmp_path / "s.json", **{field: value})
