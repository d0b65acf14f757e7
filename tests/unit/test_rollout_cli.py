"""`flywheel rollout --router kserve` and `flywheel monitor --rollout kserve` send exactly these
merge patches to the InferenceService.

No Kubernetes cluster exists on this machine: the Kubernetes API is a recording fake object
(RecordingCustomObjectsApi) put where the command builds its CustomObjectsApi. Everything else is
real: the registry and the SQLite prediction log under tmp_path, the CLI, the rollout step.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel_mlops.cli import app
from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.registry import Registry
from tests.unit.rollout_fixtures import (
    MODEL,
    RecordingCustomObjectsApi,
    log_traffic,
    served,
)


def moves(patches: list[dict]) -> list[tuple[list[str] | None, int]]:
    """Each patch as (the predictor's new args or None, its canary share)."""
    return [
        (
            p["spec"]["predictor"]["containers"][0]["args"]
            if "containers" in p["spec"]["predictor"]
            else None,
            p["spec"]["predictor"]["canaryTrafficPercent"],
        )
        for p in patches
    ]


@pytest.fixture
def cluster(tmp_path: Path, registry: Registry, labelled, monkeypatch) -> RecordingCustomObjectsApi:
    """A weak champion (v0002), a better `candidate` (v0001) with an hour-old labelled window,
    the FLYWHEEL_* environment the chart's CronJob sets, and the fake API."""
    registry.set_alias(MODEL, "v0002", reason="the weak model is champion here")
    registry.set_alias(MODEL, "v0001", "candidate", reason="retrained")
    database = f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    log_traffic(
        PredictionStore(database),
        labelled.assign(
            model_version="v0002", prediction=registry.load(MODEL, "v0002").predict(labelled)
        ),
        datetime.now(UTC) - timedelta(hours=1),
    )
    api = RecordingCustomObjectsApi(["--model_name=pickup-eta", "--model_dir=s3://m/v0002"])
    monkeypatch.setattr("flywheel_mlops.loop.rollout.kubernetes_api", lambda: api)
    for key, value in {
        "FLYWHEEL_HOME": str(tmp_path / "home"),
        "FLYWHEEL_REGISTRY_URI": registry.uri,
        "FLYWHEEL_DATABASE_URL": database,
        "FLYWHEEL_NAMESPACE": "flywheel",
        "FLYWHEEL_INFERENCESERVICE": "pickup-eta",
    }.items():
        monkeypatch.setenv(key, value)
    return api


def rollout(*args: str) -> str:
    result = CliRunner().invoke(app, ["rollout", "--router", "kserve", *args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # the console wraps long reasons


def rollout_log(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "home" / "monitor" / MODEL / "rollouts.jsonl").read_text().splitlines()
    return [json.loads(line)["action"] for line in lines]


@pytest.mark.parametrize(
    ("judge_args", "action", "last_move"),
    [
        ((), "promote", (None, 100)),
        # A margin the better canary cannot clear, and a cap it reaches: inconclusive.
        (
            ("--canary-margin", "5", "--canary-max-rows", "300"),
            "rollback",
            (["--model_name=pickup-eta", "V2"], 0),
        ),
    ],
    ids=["better", "inconclusive"],
)
def test_kserve_rollout_patches_the_inference_service_run_after_run(
    cluster, registry, labelled, tmp_path, judge_args, action, last_move
):
    v1_dir = f"--model_dir={registry.version_uri(MODEL, 'v0001')}"
    v2_dir = f"--model_dir={registry.version_uri(MODEL, 'v0002')}"

    assert "rollout canary" in rollout("--canary-percent", "10")
    # One read to check the aliases against the cluster, one for the args the patch keeps.
    assert cluster.gets == [("flywheel", "pickup-eta")] * 2
    assert moves(cluster.patches) == [(["--model_name=pickup-eta", v1_dir], 10)]

    assert "rollout wait" in rollout()  # no live labels yet: nothing is patched
    assert len(cluster.patches) == 1

    store = PredictionStore(f"sqlite:///{tmp_path / 'predictions.sqlite'}")
    live = served(labelled.head(300), canary="v0001", champion="v0002")
    log_traffic(store, live, datetime.now(UTC) + timedelta(seconds=1))
    later = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    assert f"rollout {action}" in rollout("--now", later, "--canary-min-rows", "50", *judge_args)
    expected = json.loads(json.dumps(last_move).replace('"V2"', json.dumps(v2_dir)))
    assert moves(cluster.patches)[-1] == tuple(expected)
    assert len(cluster.patches) == 2
    assert registry.resolve(MODEL) == ("v0001" if action == "promote" else "v0002")
    assert rollout_log(tmp_path) == ["canary", "wait", action]


def test_monitor_takes_the_rollout_step_after_its_decision(cluster, registry, tmp_path):
    result = CliRunner().invoke(
        app,
        ["monitor", "--rollout", "kserve", "--canary-percent", "10", "--min-labelled-rows", "50"],
    )
    assert result.exit_code == 0, result.output
    assert "rollout canary" in result.output
    assert [share for _, share in moves(cluster.patches)] == [10]
    assert (tmp_path / "home" / "monitor" / MODEL / "decision.json").exists()
    assert rollout_log(tmp_path) == ["canary"]


def test_kserve_without_a_namespace_is_a_broken_setup(cluster, monkeypatch):
    monkeypatch.delenv("FLYWHEEL_NAMESPACE")
    result = CliRunner().invoke(app, ["rollout", "--router", "kserve"])
    assert result.exit_code == 2
    assert "--router kserve needs --namespace (FLYWHEEL_NAMESPACE)" in result.output
    assert cluster.patches == []


def _serving(cluster: RecordingCustomObjectsApi, registry: Registry, version: str, share: int):
    """The cluster as a patch left it: `version` in --model_dir at `share` percent."""
    uri = registry.version_uri(MODEL, version)
    cluster.spec["predictor"]["containers"][0]["args"] = [f"--model_dir={uri}"]
    cluster.spec["predictor"]["canaryTrafficPercent"] = share


def test_a_canary_patch_whose_alias_write_was_lost_is_recognised(cluster, registry):
    """The canary patch went through, the run died before setting the alias: the next run must
    see the canary that is serving, not gate the candidate again."""
    _serving(cluster, registry, "v0001", 10)

    output = rollout()

    assert "rollout wait" in output  # the canary is judged (no live labels yet), not re-gated
    assert "canary alias set to v0001" in output
    canary = registry.alias(MODEL, "canary")
    assert canary is not None
    assert (canary.version, canary.traffic_percent) == ("v0001", 10)
    assert cluster.patches == []


def test_a_promotion_whose_alias_write_was_lost_is_finished(cluster, registry):
    """All traffic went to v0001 but the champion alias still says v0002: the next run must not
    judge (and maybe roll back) a canary that is already serving everything."""
    _serving(cluster, registry, "v0001", 100)
    registry.set_alias(MODEL, "v0001", "canary", reason="started", traffic_percent=10)

    output = rollout()

    assert "champion alias moved from v0002 to v0001" in output
    assert registry.resolve(MODEL) == "v0001"
    assert registry.alias(MODEL, "canary") is None
    assert cluster.patches == []


def test_a_rollback_whose_alias_write_was_lost_does_not_send_the_version_out_again(
    cluster, registry
):
    _serving(cluster, registry, "v0002", 0)
    registry.set_alias(MODEL, "v0001", "canary", reason="started", traffic_percent=10)

    output = rollout()

    assert "stale canary alias (v0001) removed" in output
    assert "rollout idle" in output
    assert registry.alias(MODEL, "canary") is None
    assert registry.alias(MODEL, "candidate") is None
    assert registry.resolve(MODEL) == "v0002"
    assert cluster.patches == []
