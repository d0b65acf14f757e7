"""The rollout step's state machine: what one run of the scheduled job does, and that the next
run picks up where it left off. Real registry and SQLite prediction log under tmp_path, the
LocalRouter (the registry aliases a local predictor follows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from flywheel_mlops.errors import NotFoundError
from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.registry import Alias, Registry
from flywheel_mlops.rollout import (
    LocalRouter,
    RolloutLog,
    RolloutOptions,
    rollout_step,
)
from tests.unit.rollout_fixtures import MODEL, log_traffic, served


@pytest.fixture
def store(tmp_path: Path) -> PredictionStore:
    return PredictionStore(f"sqlite:///{tmp_path / 'predictions.sqlite'}")


@pytest.fixture
def history(tmp_path: Path) -> RolloutLog:
    return RolloutLog(tmp_path / "monitor" / "rollouts.jsonl")


def step(registry: Registry, store: PredictionStore, history: RolloutLog, now: datetime):
    options = RolloutOptions(canary_percent=25, canary_min_rows=50)
    return rollout_step(registry, MODEL, store, LocalRouter(registry, MODEL), history, now, options)


def recent_traffic(store: PredictionStore, labelled: pd.DataFrame, now: datetime) -> None:
    log_traffic(
        store, labelled.assign(model_version="v0001", prediction=10.0), now - timedelta(hours=1)
    )


def test_a_better_candidate_gets_a_canary_and_the_next_run_waits_for_live_labels(
    registry, store, history, labelled
):
    now = datetime.now(UTC)
    registry.set_alias(MODEL, "v0002", reason="the weak model is champion here")
    registry.set_alias(MODEL, "v0001", Alias.CANDIDATE, reason="retrained")
    recent_traffic(store, labelled, now)

    decision = step(registry, store, history, now)

    assert decision.action == "canary"
    assert (decision.candidate, decision.champion) == ("v0001", "v0002")
    canary = registry.alias(MODEL, Alias.CANARY)
    assert (canary.version, canary.traffic_percent) == ("v0001", 25)
    assert registry.alias(MODEL, Alias.CANDIDATE) is None, "a gated candidate is not gated again"
    assert registry.resolve(MODEL) == "v0002"
    again = step(registry, store, history, now + timedelta(minutes=30))
    assert again.action == "wait"
    assert [d.action for d in history.read()] == ["canary", "wait"]


def test_a_worse_candidate_is_rejected_with_its_numbers_and_then_nothing_is_left_to_do(
    registry, store, history, labelled
):
    now = datetime.now(UTC)
    registry.set_alias(MODEL, "v0002", Alias.CANDIDATE, reason="retrained")
    recent_traffic(store, labelled, now)

    decision = step(registry, store, history, now)

    assert decision.action == "reject"
    assert decision.numbers["candidate_mae"] > decision.numbers["champion_mae"]
    assert registry.alias(MODEL, Alias.CANARY) is None
    assert registry.alias(MODEL, Alias.CANDIDATE) is None
    assert registry.history(MODEL, Alias.CANDIDATE)[-1].reason == decision.reason
    assert step(registry, store, history, now).action == "idle"


def test_a_candidate_waits_while_too_few_recent_rows_are_labelled(
    registry, store, history, labelled
):
    now = datetime.now(UTC)
    registry.set_alias(MODEL, "v0002", Alias.CANDIDATE, reason="retrained")
    recent_traffic(store, labelled.head(20), now)

    decision = step(registry, store, history, now)

    assert decision.action == "wait"
    assert "20 held-out labelled rows" in decision.reason
    assert registry.alias(MODEL, Alias.CANDIDATE).version == "v0002"
    assert registry.alias(MODEL, Alias.CANARY) is None


@pytest.mark.parametrize(
    ("canary", "champion", "action"),
    [("v0001", "v0002", "promote"), ("v0002", "v0001", "rollback")],
    ids=["better-on-the-same-rows", "worse-on-the-same-rows"],
)
def test_a_running_canary_is_judged_by_both_models_on_all_live_labelled_rows(
    registry, store, history, labelled, canary, champion, action
):
    registry.set_alias(MODEL, champion, reason="champion here")
    registry.set_alias(MODEL, canary, Alias.CANDIDATE, reason="retrained")
    LocalRouter(registry, MODEL).start_canary(canary, 20, "gate passed")
    # The gate's own window, before the canary started, must not count as canary traffic.
    log_traffic(
        store,
        served(labelled.head(100), canary=canary, champion=champion),
        datetime.now(UTC) - timedelta(hours=2),
    )
    log_traffic(
        store,
        served(labelled, canary=canary, champion=champion),
        datetime.now(UTC) + timedelta(seconds=1),
    )

    decision = step(registry, store, history, datetime.now(UTC) + timedelta(minutes=5))

    assert decision.action == action
    assert decision.numbers["rows"] == len(labelled), "every row, served by either version"
    assert registry.resolve(MODEL) == (canary if action == "promote" else champion)
    assert registry.alias(MODEL, Alias.CANARY) is None
    assert registry.alias(MODEL, Alias.CANDIDATE) is None
    assert history.read()[-1].reason == decision.reason


def test_a_canary_that_served_only_easy_rows_is_not_promoted_over_a_better_champion(
    registry, store, history, labelled
):
    """Unpaired, the weak canary looks better: it served the short trips and logged them
    perfectly, while the champion served the long ones badly. Paired, both models score every
    row, and the champion is better on the same rows."""
    registry.set_alias(MODEL, "v0002", Alias.CANDIDATE, reason="retrained")
    LocalRouter(registry, MODEL).start_canary("v0002", 20, "gate passed")
    easy = (labelled["actual"] <= labelled["actual"].quantile(0.3)).to_numpy()
    traffic = served(labelled, champion_error=5.0, canary_error=0.0, canary_rows=easy)
    logged = traffic.assign(error=(traffic["prediction"] - traffic["actual"]).abs())
    by_version = logged.groupby("model_version")["error"].mean()
    assert by_version["v0002"] < by_version["v0001"], "unpaired, the canary would win"
    log_traffic(store, traffic, datetime.now(UTC) + timedelta(seconds=1))

    decision = step(registry, store, history, datetime.now(UTC) + timedelta(minutes=5))

    assert decision.action == "rollback"
    assert decision.numbers["canary_mae"] > decision.numbers["champion_mae"]
    assert decision.numbers["rows"] == len(labelled)
    assert registry.resolve(MODEL) == "v0001"


@pytest.mark.parametrize("candidate", [None, "v0001"], ids=["no-candidate", "already-champion"])
def test_nothing_to_do_is_said_and_recorded(registry, store, history, candidate):
    if candidate:
        registry.set_alias(MODEL, candidate, Alias.CANDIDATE, reason="retrained")

    decision = step(registry, store, history, datetime.now(UTC))

    assert decision.action == "idle"
    assert "no candidate differs from the champion v0001" in decision.reason
    assert [d.action for d in history.read()] == ["idle"]


def test_a_model_without_a_champion_is_a_broken_setup(tmp_path, store, history):
    with pytest.raises(NotFoundError, match="has no alias 'champion'"):
        step(Registry(tmp_path / "empty"), store, history, datetime.now(UTC))
    assert history.read() == []


def test_a_promotion_interrupted_before_the_canary_alias_went_is_finished(registry, store, history):
    """The champion moved to the canary's version, then the run died: the next run must finish
    the promotion, not judge the champion against itself."""
    registry.set_alias(MODEL, "v0002", reason="promoted by a run that then died")
    registry.set_alias(MODEL, "v0002", Alias.CANARY, reason="left over")

    decision = step(registry, store, history, datetime.now(UTC))

    assert decision.action == "promote"
    assert "interrupted promotion" in decision.reason
    assert registry.alias(MODEL, Alias.CANARY) is None
    assert registry.resolve(MODEL, "champion") == "v0002"
    assert step(registry, store, history, datetime.now(UTC)).action == "idle"
