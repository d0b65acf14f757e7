"""The backtest's options: windows, the policies it compares, and how a schedule triggers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flywheel_mlops.durations import window_offset
from flywheel_mlops.errors import ConfigError
from flywheel_mlops.loop.backtest import parse_policy, window_edges
from flywheel_mlops.monitoring.policy import NeverPolicy, SchedulePolicy
from flywheel_mlops.serving.routing import serves_canary

START = datetime(2012, 1, 1, tzinfo=UTC)


def test_calendar_months_follow_the_calendar_and_the_last_window_ends_at_the_history() -> None:
    end = datetime(2012, 3, 15, tzinfo=UTC)
    edges = window_edges(START, end, window_offset("1mo"))
    assert [e.date().isoformat() for e in edges] == [
        "2012-01-01", "2012-02-01", "2012-03-01", "2012-03-15",
    ]  # fmt: skip
    assert window_edges(START, START + timedelta(days=2), window_offset("12h"))[1] == (
        START + timedelta(hours=12)
    )
    assert len(window_edges(START, START + timedelta(days=14), window_offset("1w"))) == 3


@pytest.mark.parametrize("text", ["", "0d", "7", "month", "1y", "-1d", "1.5d"])
def test_a_window_that_is_not_a_count_and_a_unit_is_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(ConfigError, match=r"e\.g\. 12h, 1d, 7d, 2w or 1mo"):
        window_offset(text)


@pytest.mark.parametrize(
    ("text", "label"),
    [("drift", "drift"), ("drift:3", "drift:3"), ("never", "never"),
     ("schedule:7d", "schedule:7d"), ("schedule:1mo", "schedule:1mo")],
)  # fmt: skip
def test_policies_parse_to_their_own_label(text: str, label: str) -> None:
    assert parse_policy(text).label == label


@pytest.mark.parametrize("text", ["weekly", "drift:0", "drift:x", "schedule", "never:1"])
def test_an_unknown_policy_is_refused_naming_the_choices(text: str) -> None:
    with pytest.raises(ConfigError, match=r"drift, drift:N .* schedule:<window> .* never"):
        parse_policy(text)


def test_a_schedule_triggers_on_its_clock_whatever_the_verdict(tmp_path: Path) -> None:
    policy = SchedulePolicy(tmp_path / "s.json", timedelta(days=7), since=START)
    verdicts = ["ok", "ok", "drift", "ok", "error", "ok"]
    days = [3, 7, 10, 14, 21, 22]
    fired = [
        policy.decide({"verdict": v, "model": {"version": "v1"}}, START + timedelta(days=d)).trigger
        for v, d in zip(verdicts, days, strict=True)
    ]
    # day 7: a week after the first champion; day 14: a week after; day 21 failed, so day 22.
    assert fired == [False, True, False, True, False, True]
    assert not policy.needs_bad_window


def test_never_never_triggers(tmp_path: Path) -> None:
    policy = NeverPolicy(tmp_path / "s.json")
    assert not any(
        policy.decide({"verdict": "drift", "model": {}}, START + timedelta(days=d)).trigger
        for d in range(10)
    )


def test_the_canary_share_is_the_predictors_share_of_request_ids() -> None:
    ids = [f"r-{i}" for i in range(20_000)]
    share = sum(serves_canary(i, 25) for i in ids) / len(ids)
    assert 0.23 < share < 0.27
    assert not any(serves_canary(i, 0) for i in ids[:500])
    assert all(serves_canary(i, 100) for i in ids[:500])
    # Pinned buckets (blake2b of the id, two bytes, mod 100): r-0 is 28, r-4 is 19, r-1 is 97.
    assert [serves_canary(i, 25) for i in ("r-0", "r-4", "r-1")] == [False, True, False]
    assert serves_canary("r-0", 29)
    assert not serves_canary("r-0", 28)


def test_a_monthly_schedule_fires_every_calendar_month_however_long(tmp_path: Path) -> None:
    policy = SchedulePolicy(tmp_path / "s.json", window_offset("1mo"), since=START)
    ends = window_edges(START, datetime(2012, 7, 1, tzinfo=UTC), window_offset("1mo"))[1:]
    fired = [policy.decide({"verdict": "ok", "model": {}}, end).trigger for end in ends]
    assert fired == [True] * 6  # February is shorter than January: it still fires on Mar 1


def test_month_edges_count_from_the_start_not_from_the_last_clamped_edge() -> None:
    start = datetime(2012, 1, 31, tzinfo=UTC)
    edges = window_edges(start, datetime(2012, 4, 30, tzinfo=UTC), window_offset("1mo"))
    assert [e.date().isoformat() for e in edges] == [
        "2012-01-31", "2012-02-29", "2012-03-31", "2012-04-30",
    ]  # fmt: skip


def test_the_same_policy_twice_is_refused(tmp_path: Path) -> None:
    from flywheel_mlops.loop.backtest import BacktestConfig
    from flywheel_mlops.spec import load_spec

    with pytest.raises(ConfigError, match="a policy is given twice"):
        BacktestConfig(load_spec("bike_sharing"), "x.csv", START, policies=("drift", "drift:1"))


def test_nan_anywhere_in_a_window_becomes_null() -> None:
    from flywheel_mlops.loop.backtest import WindowRecord

    record = WindowRecord("a", "b", drift_by_feature={"tmin": float("nan"), "pn": 0.5})
    assert record.to_dict()["drift_by_feature"] == {"tmin": None, "pn": 0.5}
    assert record.to_dict()["mae"] is None
