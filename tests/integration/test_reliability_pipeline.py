"""Pipeline steps that fail are retried as the pipeline declares, in the KFP local runner, and a
run that still fails promotes nothing.

The fault is injected from outside the code under test: the records the run reads appear only
once the runner has announced that the first ingest attempt failed (a data source that is
briefly unavailable), and a family name that no attempt can train makes `train` fail for good.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from flywheel_mlops.errors import FlywheelError
from flywheel_mlops.registry import Registry
from flywheel_mlops.simulator import SimulationConfig, simulate
from flywheel_mlops.spec import load_spec
from flywheel_mlops.training.local_runner import TrainingRequest, run_training

pytestmark = [pytest.mark.integration, pytest.mark.pipeline, pytest.mark.slow]

MODEL = "pickup-eta"
# The runner's own log lines, e.g. "03:03:12.102 - ERROR - Task 'ingest' finished with status
# FAILURE" and "03:03:22.104 - INFO - Executing task 'ingest'".
ANSI = re.compile(r"\x1b\[[0-9;]*m")
EVENT = re.compile(
    r"^(\d\d):(\d\d):(\d\d\.\d+) - \w+ - "
    r"(?:Executing task '([\w-]+)'|Task '([\w-]+)' finished with status (\w+))",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory):
    """A small clean batch of trips and its weather feed."""
    return simulate(
        SimulationConfig(rows=3000, days=7, seed=11, dirt=0),
        tmp_path_factory.mktemp("records"),
    )


class AppearsAfterFirstFailure(threading.Thread):
    """Copies `source` to `target` once `log` shows the first ingest attempt failed."""

    def __init__(self, log: Path, source: Path, target: Path, timeout: float = 120.0):
        super().__init__(daemon=True)
        self.log, self.source, self.target, self.timeout = log, source, target, timeout
        self.appeared_at: float | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if ("ingest", "FAILURE") in [(e[1], e[2]) for e in events(self.log)]:
                shutil.copyfile(self.source, self.target)
                self.appeared_at = time.monotonic()
                return
            time.sleep(0.05)


def events(log: Path) -> list[tuple[float, str, str]]:
    """(seconds of the day, task, "START" or its final status) in the runner's log, in order."""
    if not log.exists():
        return []
    found = []
    plain = ANSI.sub("", log.read_text(errors="replace"))  # the runner colours its lines
    for hours, minutes, seconds, started, finished, status in EVENT.findall(plain):
        at = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        found.append((at, started or finished, "START" if started else status))
    return found


def started_tasks(log: Path) -> list[str]:
    """Task names in the order the runner started them (a retried task appears once per try)."""
    return [task for _, task, what in events(log) if what == "START"]


def test_an_ingest_that_fails_once_is_retried_after_backoff_and_the_run_succeeds(
    records, tmp_path: Path
) -> None:
    late = tmp_path / "arrives-late" / "trips.parquet"
    late.parent.mkdir()
    log = tmp_path / "run.log"
    arrival = AppearsAfterFirstFailure(log, records.trips_path, late)
    arrival.start()
    request = TrainingRequest(
        load_spec("ride_hailing"),
        str(late),
        str(tmp_path / "registry"),
        side_uri=str(records.weather_path),
        families=("ridge",),
        margin=-1.0,
    )
    outcome = run_training(request, tmp_path / "runs", log_path=log)
    arrival.join(1)

    assert arrival.appeared_at is not None, log.read_text(errors="replace")[-3000:]
    ingest = [(at, what) for at, task, what in events(log) if task == "ingest"]
    assert [what for _, what in ingest] == ["START", "FAILURE", "START", "SUCCESS"]
    assert ingest[2][0] - ingest[1][0] >= 10.0  # the backoff the pipeline declares
    tasks = started_tasks(log)
    # Nothing downstream started before the retried ingest: the only outputs it saw are the
    # second attempt's.
    assert tasks.index("clean") > max(i for i, t in enumerate(tasks) if t == "ingest")
    assert all(tasks.count(t) == 1 for t in tasks if t != "ingest"), tasks
    assert outcome.version == "v0001"
    assert outcome.promoted
    assert Registry(str(tmp_path / "registry")).resolve(MODEL) == "v0001"


def test_a_step_that_fails_on_every_attempt_fails_the_run_and_promotes_nothing(
    records, tmp_path: Path
) -> None:
    registry_uri = str(tmp_path / "registry")
    log = tmp_path / "run.log"
    request = TrainingRequest(
        load_spec("ride_hailing"),
        str(records.trips_path),
        registry_uri,
        side_uri=str(records.weather_path),
        families=("no_such_family",),
        margin=-1.0,
    )
    with pytest.raises(FlywheelError, match="training pipeline failed"):
        run_training(request, tmp_path / "runs", log_path=log)

    train = [what for _, task, what in events(log) if task == "train"]
    assert train == ["START", "FAILURE", "START", "FAILURE"]  # set_retry(num_retries=1)
    tasks = started_tasks(log)
    assert "evaluate" not in tasks
    assert "register" not in tasks
    registry = Registry(registry_uri)
    assert registry.versions(MODEL) == []
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert not list(run_dir.glob("*/register*"))
