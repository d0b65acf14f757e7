"""The loop's memory outlives its process: monitor runs in fresh folders and fresh processes,
against one database, decide exactly as runs sharing one folder do; concurrent runs cannot
both act."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from flywheel_mlops.loop.state import DatabasePolicyState, LoopDatabase, StateConflict
from flywheel_mlops.monitoring import RetrainPolicy, run_monitor
from flywheel_mlops.registry import Registry
from flywheel_mlops.simulator import SimulationConfig, simulate
from flywheel_mlops.spec import DatasetSpec
from flywheel_mlops.testing.traffic import champion_and_days, end_of

pytestmark = pytest.mark.integration

CLOSURE_DAY, TRAIN_DAYS = 10, 8
#: Debounce 2 and a 3-day cooldown over four bad days: bad, trigger, streak reset, cooldown.
POLICY = {"debounce": 2, "cooldown_hours": 72.0}
EXPECTED = [False, True, False, False]


@pytest.fixture(scope="module")
def closure(spec: DatasetSpec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A champion trained before a highway closure and four logged days after it (Parquet)."""
    root = tmp_path_factory.mktemp("closure")
    raw = simulate(
        SimulationConfig(rows=14_000, days=14, closure_day=CLOSURE_DAY, dirt=0, seed=3),
        root / "raw",
    )
    bundle, days = champion_and_days(
        spec, str(raw.trips_path), str(raw.weather_path), str(root / "registry"), TRAIN_DAYS
    )
    after = days[CLOSURE_DAY - TRAIN_DAYS :][:4]
    files = []
    for index, day in enumerate(after):
        path = root / f"day-{index}.parquet"
        day.to_parquet(path, index=False)
        files.append(path)
    return {
        "bundle": bundle,
        "registry": root / "registry",
        "days": after,
        "files": files,
        "trips": raw.trips_path,
        "weather": raw.weather_path,
    }


def _monitor_in_a_fresh_process(
    closure, day: int, database: str, work: Path, *extra: str, debounce: int = POLICY["debounce"]
) -> tuple[str, str]:
    """`flywheel monitor` on one day, in a new empty folder, as a CronJob's new pod would;
    the decision JSON and what the command printed."""
    work.mkdir()
    command = [
        sys.executable, "-m", "flywheel_mlops.cli", "monitor",
        "--registry", str(closure["registry"]),
        "--window", str(closure["files"][day]),
        "--now", end_of(closure["days"][day]).isoformat(),
        "--database-url", database,
        "--debounce", str(debounce),
        "--cooldown-hours", str(POLICY["cooldown_hours"]),
        "--out", str(work / "out"),
        "--cache-dir", str(work / "cache"),
        *extra,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return (work / "out" / "decision.json").read_text(), done.stdout


@pytest.mark.timeout(1200)
def test_runs_in_fresh_pods_decide_as_runs_in_one_folder(closure, tmp_path: Path):
    database = f"sqlite:///{tmp_path / 'loop.sqlite'}"
    fresh = [
        _monitor_in_a_fresh_process(
            closure, day, database, tmp_path / f"pod-{day}", "--no-local-retrain"
        )
        for day in range(4)
    ]

    fresh_retrains = [json.loads(decision)["retrain"] for decision, _ in fresh]
    said = [printed for _, printed in fresh]
    assert "a retrain was decided but not started" in said[1], "it says plainly it did not"
    policy = RetrainPolicy(
        tmp_path / "one-folder" / "state.json",
        debounce=POLICY["debounce"],
        cooldown=timedelta(hours=POLICY["cooldown_hours"]),
    )
    one_folder = [
        run_monitor(closure["bundle"], day, policy, tmp_path / "one-folder", end_of(day)).retrain
        for day in closure["days"]
    ]
    assert one_folder == EXPECTED
    assert fresh_retrains == one_folder
    history = LoopDatabase(database).records(closure["bundle"].name, "decision")
    assert [d["retrain"] for d in history] == EXPECTED
    archived = sorted((closure["registry"] / closure["bundle"].name / "monitor").iterdir())
    assert len(archived) == 4
    assert all((run / "report.html").is_file() for run in archived)


@pytest.mark.pipeline
@pytest.mark.timeout(1200)
def test_with_no_kfp_host_a_decided_retrain_runs_through_the_local_runner(closure, tmp_path: Path):
    database = f"sqlite:///{tmp_path / 'loop.sqlite'}"
    registry = Registry(tmp_path / "registry")
    shutil.copytree(closure["registry"], tmp_path / "registry")
    local = {**closure, "registry": tmp_path / "registry"}
    _, said = _monitor_in_a_fresh_process(
        local, 0, database, tmp_path / "pod", "--retrain-data", str(closure["trips"]),
        "--retrain-side", str(closure["weather"]), "--retrain-days", "5", debounce=1,
    )  # fmt: skip
    assert "retraining here with the KFP local runner" in said
    name = closure["bundle"].name
    assert registry.versions(name) == ["v0001", "v0002"], "the local retrain registered v0002"
    assert registry.load(name, "v0002").spec == closure["bundle"].spec
    assert registry.resolve(name) == "v0001", "a retrain never promotes itself"


def test_of_two_runs_that_read_the_same_state_only_the_first_saves(tmp_path: Path):
    database = LoopDatabase(f"sqlite:///{tmp_path / 'loop.sqlite'}")
    first = DatabasePolicyState(database, "policy/m")
    second = DatabasePolicyState(database, "policy/m")
    assert first.load() == (None, 0)
    revision = first.save({"consecutive_bad": 1, "triggers": [], "history": []}, 0)
    state, seen = second.load()
    assert (state["consecutive_bad"], seen) == (1, revision)
    first.save({"consecutive_bad": 2, "triggers": [], "history": []}, revision)
    with pytest.raises(StateConflict, match="another monitor run"):
        second.save({"consecutive_bad": 0, "triggers": [], "history": []}, seen)
    assert first.load()[0]["consecutive_bad"] == 2
