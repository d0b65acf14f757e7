"""`flywheel pipeline submit` against a stand-in KFP API on loopback (no cluster runs here)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flywheel_mlops.cli import app as cli
from flywheel_mlops.errors import FlywheelError
from flywheel_mlops.processes import free_port
from flywheel_mlops.training.kfp_client import submit_training_run
from flywheel_pipelines.training import COMPILED

pytestmark = pytest.mark.integration


def test_submit_uploads_the_compiled_pipeline_and_starts_a_run_with_its_reason(kfp_api):
    host, state = kfp_api
    result = CliRunner().invoke(
        cli,
        [
            "pipeline",
            "submit",
            "--host",
            host,
            "--data",
            "s3://bucket/trips/*.parquet",
            "--registry",
            "s3://models",
            "--reason",
            "drift in Z05: live MAE 2.1x test MAE",
        ],
    )
    assert result.exit_code == 0, result.output
    assert state["packages"][0] == COMPILED.read_bytes()
    (run,) = state["runs"]
    params = run["runtime_config"]["parameters"]
    assert params["data_uri"] == "s3://bucket/trips/*.parquet"
    assert params["reason"] == "drift in Z05: live MAE 2.1x test MAE"
    assert run["pipeline_version_reference"]["pipeline_version_id"] in {
        v["pipeline_version_id"] for v in state["versions"]
    }
    assert run["run_id"] in result.output


def test_resubmitting_the_same_code_reuses_its_pipeline_version(kfp_api):
    host, state = kfp_api
    arguments = {"dataset_spec": "{}", "data_uri": "x", "registry_uri": "y"}
    first = submit_training_run(host, arguments)
    second = submit_training_run(host, arguments)
    assert first.version_id == second.version_id
    assert first.run_id != second.run_id
    assert len(state["pipelines"]) == 1
    assert len(state["experiments"]) == 1


def test_an_unreachable_host_is_a_clear_error():
    with pytest.raises(FlywheelError, match="could not submit a run to Kubeflow Pipelines"):
        submit_training_run(f"http://127.0.0.1:{free_port()}", {})
