"""Safe rollout: the offline gate, the live canary verdict, and what each router changes."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from kubernetes.client.exceptions import ApiException

from flywheel_mlops.errors import ConfigError, FlywheelError, NotFoundError
from flywheel_mlops.rollout import (
    KServeRouter,
    LocalRouter,
    RolloutLog,
    gate_candidate,
    judge_canary,
)
from tests.unit.rollout_fixtures import (
    MODEL,
    RecordingCustomObjectsApi,
    served,
)


def test_gate_rejects_a_candidate_worse_on_recent_labelled_data(registry, labelled):
    decision = gate_candidate(
        registry.load(MODEL, "v0002"), registry.load(MODEL, "v0001"), labelled
    )
    assert decision.action == "reject"
    assert decision.numbers["candidate_mae"] > decision.numbers["champion_mae"]


def test_gate_sends_a_better_candidate_to_canary(registry, labelled):
    decision = gate_candidate(
        registry.load(MODEL, "v0001"), registry.load(MODEL, "v0002"), labelled
    )
    assert decision.action == "canary"
    assert "worth a canary" in decision.reason


def test_gate_waits_for_enough_labelled_rows(registry, labelled):
    decision = gate_candidate(
        registry.load(MODEL, "v0002"), registry.load(MODEL, "v0001"), labelled.head(20)
    )
    assert decision.action == "wait"


def test_a_canary_worse_on_the_same_rows_is_rolled_back_and_the_champion_untouched(
    registry, labelled, tmp_path
):
    router, log = LocalRouter(registry, MODEL), RolloutLog(tmp_path / "rollouts.jsonl")
    router.start_canary("v0002", 20, "gate passed")
    assert registry.alias(MODEL, "canary").traffic_percent == 20
    weak, good = registry.load(MODEL, "v0002"), registry.load(MODEL, "v0001")
    decision = log.record(judge_canary(weak, good, served(labelled), min_rows=50))
    assert decision.action == "rollback"
    assert decision.numbers["upper"] < 0
    router.roll_back("v0002", decision.reason)
    assert registry.alias(MODEL, "canary") is None
    assert registry.resolve(MODEL) == "v0001"
    assert [d.action for d in log.read()] == ["rollback"]
    assert "the canary is worse" in log.read()[0].reason


def test_a_canary_better_on_the_same_rows_is_promoted(registry, labelled):
    router = LocalRouter(registry, MODEL)
    router.start_canary("v0001", 20, "gate passed")
    good, weak = registry.load(MODEL, "v0001"), registry.load(MODEL, "v0002")
    traffic = served(labelled, canary="v0001", champion="v0002")
    decision = judge_canary(good, weak, traffic, min_rows=50)
    assert decision.action == "promote"
    assert decision.numbers["lower"] > decision.numbers["margin"] * decision.numbers["champion_mae"]
    assert decision.numbers["rows"] == len(labelled), "every labelled row, served by either"
    router.promote("v0001", decision.reason)
    assert registry.resolve(MODEL) == "v0001"
    assert registry.alias(MODEL, "canary") is None


def test_canary_verdict_waits_for_enough_paired_labelled_rows(registry, labelled):
    weak, good = registry.load(MODEL, "v0002"), registry.load(MODEL, "v0001")
    decision = judge_canary(weak, good, served(labelled.head(40)), min_rows=50)
    assert decision.action == "wait"
    assert decision.numbers["rows_needed"] == 10


def test_a_canary_undecided_at_the_row_cap_is_rolled_back_keeping_the_champion(registry, labelled):
    good, weak = registry.load(MODEL, "v0001"), registry.load(MODEL, "v0002")
    traffic = served(labelled.head(100), canary="v0001", champion="v0002")
    # A margin no real improvement reaches: the bound can only stay undecided.
    decision = judge_canary(good, weak, traffic, margin=5.0, min_rows=50, max_rows=100)
    assert decision.action == "rollback"
    assert "inconclusive after 100 rows: keep the champion" in decision.reason


def test_kserve_router_patches_model_dir_and_canary_share(registry):
    api = RecordingCustomObjectsApi(["--model_name=pickup-eta", "--model_dir=s3://m/v0001"])
    router = KServeRouter(api, "flywheel", "pickup-eta", registry, MODEL)
    router.start_canary("v0002", 10, "gate passed")
    assert registry.alias(MODEL, "canary").traffic_percent == 10, "the next run must see it"
    (patch,) = api.patches
    args = patch["spec"]["predictor"]["containers"][0]["args"]
    assert args[0] == "--model_name=pickup-eta"
    assert args[-1].endswith("/pickup-eta/versions/v0002")
    assert patch["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert patch["metadata"]["resourceVersion"] == "1", "refused if the object changed since"
    router.roll_back("v0002", "worse live")
    assert api.patches[-1]["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert api.patches[-1]["spec"]["predictor"]["containers"][0]["args"][-1].endswith(
        "/versions/v0001"
    )
    assert registry.resolve(MODEL) == "v0001"
    assert registry.alias(MODEL, "canary") is None


def test_kserve_router_keeps_the_rest_of_the_predictor_container(registry):
    """A merge patch replaces the containers list whole: everything but the args goes back."""
    api = RecordingCustomObjectsApi(["--model_name=pickup-eta", "--model_dir=s3://m/v0001"])
    api.spec["predictor"]["containers"][0] |= {"image": "predictor:1", "env": [{"name": "A"}]}
    api.spec["predictor"]["containers"].append({"name": "sidecar"})
    KServeRouter(api, "flywheel", "pickup-eta", registry, MODEL).start_canary("v0002", 10, "ok")
    first, second = api.spec["predictor"]["containers"]
    assert (first["image"], first["env"], second) == (
        "predictor:1",
        [{"name": "A"}],
        {"name": "sidecar"},
    )


class RefusingCustomObjectsApi(RecordingCustomObjectsApi):
    """MOCK: an API server answering every call with one HTTP error status."""

    def __init__(self, status: int):
        super().__init__([])
        self.status = status

    def get_namespaced_custom_object(self, *args):
        raise ApiException(status=self.status, reason="refused")


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (403, ConfigError, "may not get inferenceservice flywheel/pickup-eta"),
        (404, NotFoundError, "inferenceservice flywheel/pickup-eta does not exist"),
        (500, FlywheelError, "get inferenceservice flywheel/pickup-eta failed: HTTP 500"),
    ],
)
def test_kserve_router_names_the_object_when_the_api_refuses(registry, status, error, message):
    router = KServeRouter(
        RefusingCustomObjectsApi(status), "flywheel", "pickup-eta", registry, MODEL
    )
    with pytest.raises(error, match=message):
        router.start_canary("v0002", 10, "gate passed")
    assert registry.alias(MODEL, "canary") is None


def test_kserve_router_says_so_when_the_api_server_cannot_be_reached(registry):
    """The real Kubernetes client, pointed at a loopback port nothing listens on (as when a
    NetworkPolicy drops the monitor's traffic to the API server)."""
    import socket

    from kubernetes import client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = 0
    api = client.CustomObjectsApi(client.ApiClient(configuration))
    router = KServeRouter(api, "flywheel", "pickup-eta", registry, MODEL)
    with pytest.raises(ConfigError, match="Kubernetes API did not answer the get"):
        router.start_canary("v0002", 10, "gate passed")
    assert registry.alias(MODEL, "canary") is None


def seen(bundle, fitted, selected=(None, None)):
    """`bundle` as if it had been fitted on events `fitted` and selected on `selected`."""
    metadata = {**bundle.metadata, "trained_on": list(fitted), "selected_on": list(selected)}
    return replace(bundle, metadata=metadata)


def test_the_gate_scores_only_rows_neither_model_was_fitted_or_selected_on(registry, labelled):
    times = pd.date_range("2026-03-01", periods=len(labelled), freq="h", tz="UTC")
    labelled = labelled.assign(event_time=times)
    stamp = lambda i: times[i].isoformat()  # noqa: E731
    candidate = seen(
        registry.load(MODEL, "v0001"), (stamp(0), stamp(299)), (stamp(300), stamp(399))
    )
    champion = seen(registry.load(MODEL, "v0002"), (stamp(0), stamp(99)))
    decision = gate_candidate(candidate, champion, labelled, min_rows=100)
    assert decision.numbers["rows_seen_in_training"] == 400
    assert decision.numbers["rows"] + decision.numbers["rows_unseen_categories"] == 200
    assert pd.Timestamp(decision.numbers["rows_from"]) == times[400]
    # The champion's window alone, past the candidate's, is left out too.
    late_champion = seen(champion, (stamp(450), stamp(599)))
    decision = gate_candidate(candidate, late_champion, labelled, min_rows=10)
    assert decision.numbers["rows_seen_in_training"] == 550
    assert pd.Timestamp(decision.numbers["rows_until"]) < times[450]


def test_the_gate_waits_when_every_labelled_row_was_trained_on(registry, labelled):
    times = pd.date_range("2026-03-01", periods=len(labelled), freq="h", tz="UTC")
    candidate = seen(registry.load(MODEL, "v0001"), (times[0].isoformat(), times[-1].isoformat()))
    decision = gate_candidate(
        candidate, registry.load(MODEL, "v0002"), labelled.assign(event_time=times)
    )
    assert decision.action == "wait"
    assert "600 left out: trained on" in decision.reason


def test_the_gate_refuses_rows_without_event_times_when_it_must_hold_out(registry, labelled):
    candidate = seen(registry.load(MODEL, "v0001"), ("2026-03-01", "2026-03-02"))
    with pytest.raises(ValueError, match="'event_time' column"):
        gate_candidate(candidate, registry.load(MODEL, "v0002"), labelled)
