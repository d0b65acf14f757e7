"""Same seed, same decisions: the story replayed twice, the second time with both cores busy.

The loop's clock is event time (the trips' request_time, recorded by the prediction log), so how
fast the machine runs must not move a single decision or number.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel_mlops.demo.run import StoryConfig, run_story

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pipeline,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]

# Small: the point is sameness, not healing (test_story.py runs the demo's own scenario).
SMALL = StoryConfig(rows=9_000, days=11, train_days=5, closure_day=7, debounce=2)
# Fields of a decision that name this run's files or bundle hashes rather than what was decided.
RUN_IDENTITY = ("outputs", "model")


@pytest.fixture
def busy_cores() -> Iterator[None]:
    """One spinning process per core for as long as the test runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def decisions(home: Path, result: Any) -> dict[str, Any]:
    """Every day's record, every rollout step, and every monitor decision of one run."""
    monitor = {
        path.parent.name: {
            k: v for k, v in json.loads(path.read_text()).items() if k not in RUN_IDENTITY
        }
        for path in sorted((result.folder / "monitor").glob("*/decision.json"))
    }
    return {
        "days": [day.to_dict() for day in result.days],
        "rollouts": result.rollouts,
        "monitor": monitor,
        "summary": {k: v for k, v in result.summary.items() if k != "versions"},
    }


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("quiet")
    return decisions(home, run_story(SMALL, home, say=lambda line: None))


def test_a_busy_machine_replays_the_story_to_the_same_decisions(
    quiet_run: dict[str, Any], busy_cores: None, tmp_path: Path
) -> None:
    busy = decisions(tmp_path, run_story(SMALL, tmp_path, say=lambda line: None))
    assert quiet_run["monitor"], "the monitor decided on some day"
    assert [d["verdict"] for d in busy["days"]] == [d["verdict"] for d in quiet_run["days"]]
    assert busy == quiet_run
