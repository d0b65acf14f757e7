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
    assert "20 labelled rows" in decision.reason
    assert registry.alias(MODEL, Alias.CANDIDATE).version == "v0002"
    assert registry.alias(MODEL, Alias.CANARY) is None


@pytest.mark.parametrize(
    ("champion_error", "canary_error", "action", "champion_after"),
    [(3.0, 1.0, "promote", "v0002"), (1.0, 3.0, "rollback", "v0001")],
    ids=["better-live", "worse-live"],
)
def test_a_running_canary_is_judged_on_the_live_traffic_each_version_served(
    registry, store, history, champion_error, canary_error, action, champion_after
):
    registry.set_alias(MODEL, "v0002", Alias.CANDIDATE, reason="retrained")
    LocalRouter(registry, MODEL).start_canary("v0002", 20, "gate passed")
    # The gate's own window, before the canary started, must not count as canary traffic.
    log_traffic(
        store, served(champion_error=1.0, canary_error=9.0), datetime.now(UTC) - timedelta(hours=2)
    )
    log_traffic(
        store, served(champion_error, canary_error), datetime.now(UTC) + timedelta(seconds=1)
    )

    decision = step(registry, store, history, datetime.now(UTC) + timedelta(minutes=5))

    assert decision.action == action
    assert decision.numbers["rows"] == {"v0002": 60, "v0001": 240}
    assert registry.resolve(MODEL) == champion_after
    assert registry.alias(MODEL, Alias.CANARY) is None
    assert registry.alias(MODEL, Alias.CANDIDATE) is None
    assert history.read()[-1].reason == decision.reason


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
