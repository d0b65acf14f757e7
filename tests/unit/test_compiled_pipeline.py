"""The compiled pipeline: the committed YAML matches the code, retries and caching as intended."""

import json
from pathlib import Path

import pytest
import yaml

from flywheel_mlops.registry import Registry
from flywheel_mlops.training import steps
from flywheel_pipelines.training import COMPILED, compile_pipeline


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> str:
    """The pipeline as the code compiles it now."""
    return compile_pipeline(tmp_path_factory.mktemp("compiled") / "training.yaml").read_text()


@pytest.fixture(scope="module")
def compiled(fresh: str) -> dict:
    return yaml.safe_load(fresh)


def _tasks(compiled: dict) -> dict:
    tasks = dict(compiled["root"]["dag"]["tasks"])
    for component in compiled["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def test_committed_yaml_matches_what_the_code_compiles(fresh: str):
    assert fresh == COMPILED.read_text(), (
        f"{COMPILED.relative_to(COMPILED.parents[2])} is stale: run `make compile` and commit it"
    )


def test_every_stage_is_a_task_in_order(compiled):
    tasks = _tasks(compiled)
    assert set(tasks) >= {
        "ingest",
        "clean",
        "validate",
        "featurize",
        "split",
        "train",
        "evaluate",
        "register",
    }
    assert tasks["featurize"]["dependentTasks"] == ["validate"]


def test_reading_object_storage_retries(compiled):
    policy = _tasks(compiled)["ingest"]["retryPolicy"]
    assert policy["maxRetryCount"] == 3


@pytest.mark.parametrize("task", ["clean", "validate", "featurize", "split", "train", "evaluate"])
def test_steps_without_side_effects_run_again_if_their_process_dies(compiled, task):
    assert _tasks(compiled)[task]["retryPolicy"]["maxRetryCount"] == 1


def test_a_publication_is_never_retried(compiled):
    assert "retryPolicy" not in _tasks(compiled)["register"]


@pytest.mark.parametrize("task", ["evaluate", "register"])
def test_steps_with_side_effects_never_come_from_cache(compiled, task):
    assert _tasks(compiled)[task]["cachingOptions"] == {}


def test_pure_steps_may_be_cached(compiled):
    assert _tasks(compiled)["clean"]["cachingOptions"] == {"enableCache": True}


def test_the_run_declares_what_was_registered_and_the_evaluation_as_outputs(compiled):
    outputs = compiled["root"]["outputDefinitions"]
    assert set(outputs["parameters"]) == {"version", "promoted"}
    assert set(outputs["artifacts"]) == {"evaluation"}


def test_a_model_that_loses_to_the_baseline_is_not_published(tmp_path: Path, spec):
    evaluation = tmp_path / "evaluation.json"
    evaluation.write_text(json.dumps({"beats_baseline": False, "test": {"mae": 9.0}}))
    registry = tmp_path / "registry"
    missing = str(tmp_path / "never-read")
    done = steps.register(
        spec.model_dump_json(), str(registry), missing, missing, missing, missing, missing,
        str(evaluation), lineage={},
    )  # fmt: skip
    assert (done.version, done.promoted) == ("", False)
    assert "baseline" in done.reason
    assert Registry(registry).versions(spec.name) == []


def test_steps_install_nothing_at_run_time(compiled):
    for executor in compiled["deploymentSpec"]["executors"].values():
        script = " ".join(executor["container"]["command"])
        assert "pip install" not in script
        assert executor["container"]["image"].startswith("ghcr.io/flywheel-mlops/")


def test_compiled_yaml_is_committed_next_to_the_code():
    assert Path(COMPILED).name == "training.yaml"
    assert Path(COMPILED).exists()
