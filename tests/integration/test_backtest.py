"""`flywheel backtest` on real data nobody here wrote: the hourly bike-sharing table."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from flywheel_mlops.loop.backtest import BacktestConfig, run_backtest
from flywheel_mlops.spec import load_spec

WINDOW_KEYS = {"window_start", "window_end", "verdict", "drift_share", "mae_by_version",
               "champion", "events"}  # fmt: skip


def test_policies_replay_the_same_rows_from_one_champion_and_decide_alike_twice(
    bikesharing_csv: Path, tmp_path: Path
) -> None:
    """Two months replayed under `never` and a monthly schedule, once through the command line
    and once in this process: the same JSON, so nothing depended on the run or the clock."""
    args = ["--dataset", "bike_sharing", "--data", str(bikesharing_csv),
            "--train-until", "2011-06-01", "--until", "2011-08-01", "--window", "1mo",
            "--policy", "never", "--policy", "schedule:1mo", "--families", "xgboost"]  # fmt: skip
    out = tmp_path / "cli"
    files = ["--json", str(out / "backtest.json"), "--report", str(out / "backtest.html"),
             "--work", str(out / "work")]  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "flywheel_mlops.cli", "backtest", *args, *files],
        check=True,
        capture_output=True,
        text=True,
    )
    document = json.loads((out / "backtest.json").read_text())
    config = BacktestConfig(
        load_spec("bike_sharing"),
        str(bikesharing_csv),
        datetime(2011, 6, 1, tzinfo=UTC),
        window="1mo",
        until=datetime(2011, 8, 1, tzinfo=UTC),
        policies=("never", "schedule:1mo"),
        families=("xgboost",),
    )
    again = run_backtest(config, tmp_path / "in-process", say=lambda _: None)
    assert again.to_dict(config) == document

    never, schedule = document["policies"]
    assert [w["window_start"][:10] for w in document["windows"]] == ["2011-06-01", "2011-07-01"]
    for replay in document["policies"]:
        for window in replay["windows"]:
            assert set(window) >= WINDOW_KEYS
        assert {"mae_overall", "retrains", "promotions"} <= set(replay["summary"])
    # The first window is served by the one first champion under every policy: the same rows.
    assert never["windows"][0]["mae_by_version"] == schedule["windows"][0]["mae_by_version"]
    assert never["windows"][0]["rows"] == schedule["windows"][0]["rows"] > 600
    assert never["summary"]["retrains"] == 0
    assert {w["champion"] for w in never["windows"]} == {document["first_champion"]}
    # The schedule asks for a retrain every window, whatever the verdict; one the rollout of
    # the last is still busy with waits (never two candidates at once).
    for window in schedule["windows"]:
        assert window["retrain"] or any("still being rolled out" in e for e in window["events"])
    assert schedule["windows"][0]["retrain"]
    gate = next(e for e in schedule["windows"][0]["events"] if e.startswith("gate"))
    assert "held-out" in gate  # the gate scored rows neither model trained on
    assert document["comparison"][1]["policy"] == "schedule:1mo"
    assert "schedule:1mo" in (out / "backtest.html").read_text()
