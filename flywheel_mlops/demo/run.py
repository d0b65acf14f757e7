"""The story, day by day: serve, log, label late, monitor, retrain, canary, promote."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from flywheel_mlops.demo.replay import TrafficReplay
from flywheel_mlops.demo.report import write_report
from flywheel_mlops.demo.services import running_services
from flywheel_mlops.demo.timeline import DayRecord
from flywheel_mlops.errors import FlywheelError, InvalidInputError
from flywheel_mlops.monitoring.policy import RetrainPolicy
from flywheel_mlops.monitoring.run import run_monitor
from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.registry.bundle import comparable_rows
from flywheel_mlops.rollout import (
    LocalRouter,
    RolloutAction,
    RolloutLog,
    RolloutOptions,
    rollout_step,
)
from flywheel_mlops.scoring import mae
from flywheel_mlops.serving.client import PredictionClient
from flywheel_mlops.simulator import SimulationConfig, simulate
from flywheel_mlops.spec import load_spec
from flywheel_mlops.training.local_runner import RunOutcome, TrainingRequest, run_training

CLOSURE_ZONES = SimulationConfig().closure_zones


@dataclass(frozen=True)
class StoryConfig:
    """The scenario: how much traffic, when the highway closes, how cautious the rollout is."""

    rows: int = 40_000
    days: int = 18
    train_days: int = 7
    closure_day: int = 11
    seed: int = 5
    batch_size: int = 20
    canary_percent: int = 25
    fresh_days: int = 3
    debounce: int = 3


@dataclass
class StoryResult:
    """Every day's record, the rollout decisions, and the numbers the story is judged on."""

    days: list[DayRecord] = field(default_factory=list)
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    report_path: Path | None = None


def run_story(config: StoryConfig, home: Path, say: Callable[[str], None] = print) -> StoryResult:
    """Run the whole loop on simulated data under `home`; returns what happened."""
    spec = load_spec("ride_hailing")
    registry_uri = str(home / "registry")
    registry = Registry(registry_uri)
    database_url = f"sqlite:///{(home / 'predictions.sqlite').resolve()}"
    data = simulate(
        SimulationConfig(
            rows=config.rows, days=config.days, closure_day=config.closure_day, seed=config.seed
        ),
        home / "data",
    )
    start = SimulationConfig().start
    day_of = lambda n: start + timedelta(days=n)  # noqa: E731 - a one-line calendar
    say(
        f"simulated {data.trip_rows:,} trips over {config.days} days; highway closes on "
        f"day {config.closure_day} ({day_of(config.closure_day)}) in {', '.join(CLOSURE_ZONES)}"
    )

    def train(since: date, until: date, reason: str, alias: str = Alias.CHAMPION) -> RunOutcome:
        """One run of the training pipeline on the simulated trips of [since, until)."""
        request = TrainingRequest(
            spec,
            str(data.trips_path),
            registry_uri,
            side_uri=str(data.weather_path),
            start=str(since),
            end=str(until),
            promote_alias=alias,
            reason=reason,
        )
        return run_training(request, home / "runs", log_path=home / "logs" / "pipeline.log")

    first = train(start, day_of(config.train_days), "initial training")
    say(
        f"trained {first.version}: test MAE {first.evaluation['test']['mae']:.2f} min vs "
        f"baseline {first.evaluation['baseline']['mae']:.2f}"
    )

    replay = TrafficReplay(spec, str(data.trips_path), str(data.weather_path))
    store = PredictionStore(database_url)
    policy = RetrainPolicy(
        home / "monitor" / "policy-state.json",
        debounce=config.debounce,
        cooldown=timedelta(days=2),
        daily_cap=1,
    )
    router, rollouts = LocalRouter(registry, spec.name), RolloutLog(home / "rollouts.jsonl")
    # The rollout step a cluster's monitor job takes, on the local router; every window, the
    # policy's clock, the gate's "recent" and the canary's "since" are in event time (the trips'
    # request_time, which the prediction log records), so the same seed decides the same.
    rollout_options = RolloutOptions(canary_percent=config.canary_percent)
    result = StoryResult()
    pending: list[tuple[str, list[float]]] = []
    canary: str | None = None
    first_bad: date | None = None

    with (
        running_services(registry_uri, database_url, spec.name, home / "logs") as endpoints,
        PredictionClient(endpoints.predictor, spec.name) as client,
        httpx.Client(base_url=endpoints.prediction_service, timeout=30) as feedback,
    ):
        for day in replay.days(day_of(config.train_days), day_of(config.days - 1)):
            record = DayRecord(day)
            result.days.append(record)
            _post_feedback(feedback, pending)  # yesterday's outcomes arrive today
            pending = []
            sent = 0
            for number, batch in enumerate(replay.batches(day, config.batch_size)):
                try:
                    # A request id of our own: the canary's share is chosen by hashing it, so
                    # the same requests go to the same version on every run.
                    answer = client.predict(batch.records, request_id=f"{day}-{number:05d}")
                except InvalidInputError:
                    record.rejected += len(batch.records)  # the app's 4xx, logged by the server
                    continue
                pending.append((answer.request_id, batch.actuals))
                record.served_by_version[answer.model_version] = record.served_by_version.get(
                    answer.model_version, 0
                ) + len(batch.records)
                sent += len(batch.records)
            record.requests = sent
            _wait_for_log(store, expected=_logged_so_far(result.days))

            yesterday = day - timedelta(days=1)
            if yesterday < day_of(config.train_days):
                continue
            # Yesterday's outcomes were posted this morning (202: stored asynchronously); the
            # window is read once every one of them is in, not whenever the writer got to it.
            _wait_for_day_labels(store, yesterday, expected=result.days[-2].requests)
            window = store.window(_utc(yesterday), _utc(day), spec.name)
            labelled = window.dropna(subset=["actual"])
            previous = result.days[-2]
            previous.mae = _mae(labelled)
            previous.closure_zones_mae = _mae(labelled[labelled["zone"].isin(CLOSURE_ZONES)])
            previous.mae_by_version = {
                str(v): _mae(p) for v, p in labelled.groupby("model_version")
            }

            # The rollout acts after today's requests were served: a canary started now serves
            # from tomorrow's first request, so its "since" is the end of today in event time.
            tonight = _utc(day + timedelta(days=1))
            if canary is not None:
                verdict = rollout_step(
                    registry, spec.name, store, router, rollouts, tonight, rollout_options
                )
                if verdict.action is not RolloutAction.WAIT:
                    record.events.append(f"{verdict.action} {canary}: {verdict.reason}")
                    say(f"{day}: {verdict.action} {canary} — {verdict.reason}")
                    canary = None
                    _wait_until_serving(endpoints.predictor, spec.name, registry, canary)
            champion_version = registry.resolve(spec.name, Alias.CHAMPION)

            champion = registry.load(spec.name, champion_version)
            served_by_champion = window[window["model_version"] == champion_version]
            monitored = run_monitor(
                champion, served_by_champion, policy, home / "monitor" / str(yesterday), _utc(day)
            )
            decision = monitored.decision.to_dict()
            previous.verdict = monitored.verdict
            drift = decision.get("drift") or {}
            previous.drift_share = float(drift.get("share", float("nan")))
            previous.drift_by_feature = {
                name: float(column.get("score", float("nan")))
                for name, column in (drift.get("features") or {}).items()
            }
            if monitored.verdict in ("drift", "degraded") and first_bad is None:
                first_bad = yesterday
            if monitored.verdict == "ok":
                first_bad = None
            if not monitored.retrain or canary is not None:
                continue
            previous.retrain = True
            why = " ".join(monitored.decision.why)
            # Fresh data only: the days since the world changed, so the new model learns the
            # new world rather than an average of the old and the new.
            fresh_start = first_bad or day - timedelta(days=config.fresh_days)
            say(f"{day}: retrain triggered — {why}")
            candidate = train(fresh_start, day, why, alias="candidate")
            record.events.append(f"retrained {candidate.version}")
            if candidate.version is None:
                continue
            # The gate scores both models on the labelled traffic since the world changed that
            # neither trained on: v0002's own test split (its newest 15%), held back from it.
            gate_hours = (tonight - _utc(fresh_start)).total_seconds() / 3600
            gate = rollout_step(
                registry,
                spec.name,
                store,
                router,
                rollouts,
                tonight,
                replace(rollout_options, gate_hours=gate_hours),
            )
            say(f"{day}: {candidate.version} — {gate.reason}")
            if gate.action is RolloutAction.CANARY:
                canary = candidate.version
                record.events.append(f"canary {canary} at {config.canary_percent}%")
                _wait_until_serving(endpoints.predictor, spec.name, registry, canary)

        _post_feedback(feedback, pending)
    _wait_for_labels(store)
    result.rollouts = [r.__dict__ for r in rollouts.read()]
    result.summary = _summary(config, result, store, registry, spec.name)
    result.report_path = write_report(
        result.days,
        store.window(None, None, spec.name),
        home / "story-report.html",
        "Flywheel: a highway closes, the model notices and heals",
    )
    return result


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _wait_until(done: Callable[[], object], seconds: float, what: Callable[[], str]) -> None:
    """Poll `done` until it is true; after `seconds`, a FlywheelError saying `what()` is seen.

    The servers work asynchronously (logging, joining labels, loading a version), as on a
    cluster: the story waits for the state it needs, never for a fixed time."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise FlywheelError(f"after {seconds:.0f} s {what()}")
        time.sleep(0.1)


def _wait_until_serving(
    predictor: str, model: str, registry: Registry, canary: str | None, seconds: float = 120
) -> None:
    """Wait until the predictor serves what the registry says (its champion, and `canary` or no
    canary), read from its /metrics: the next day's requests must all meet the same versions,
    however long the predictor takes to load a bundle on a busy machine."""
    wanted = (registry.resolve(model, Alias.CHAMPION), canary)
    _wait_until(
        lambda: _serving(predictor, model) == wanted,
        seconds,
        lambda: (
            f"the predictor serves {_serving(predictor, model)} (champion, canary), "
            f"the registry says {wanted}"
        ),
    )


def _serving(predictor: str, model: str) -> tuple[str | None, str | None]:
    """(champion, canary) versions the predictor reports serving in its Prometheus metrics."""
    champion = canary = None
    text = httpx.get(f"{predictor}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model_name") != model:
                continue
            if sample.name == "flywheel_model_info":
                champion = sample.labels.get("version")
            elif sample.name == "flywheel_canary_percent" and sample.value > 0:
                canary = sample.labels.get("version")
    return champion, canary


def _mae(frame: pd.DataFrame) -> float:
    return mae(frame["actual"], frame["prediction"])


def _logged_so_far(days: list[DayRecord]) -> int:
    return sum(d.requests for d in days)


def _wait_for_log(store: PredictionStore, expected: int, seconds: float = 60) -> None:
    """The predictor logs asynchronously (as KServe's logger agent does): wait until caught up."""
    _wait_until(
        lambda: store.counts()["predictions"] >= expected,
        seconds,
        lambda: (
            f"the prediction log holds {store.counts()['predictions']} rows, {expected} were served"
        ),
    )


def _wait_for_day_labels(
    store: PredictionStore, day: date, expected: int, seconds: float = 60
) -> None:
    """Wait until `expected` predictions of `day` (event time) have their outcome joined."""
    start, end = _utc(day), _utc(day + timedelta(days=1))
    _wait_until(
        lambda: store.labelled_count(start, end) >= expected,
        seconds,
        lambda: f"{store.labelled_count(start, end)} of {expected} outcomes of {day} joined",
    )


def _wait_for_labels(store: PredictionStore, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while store.counts().get("pending", 0) and time.monotonic() < deadline:
        time.sleep(0.2)


def _post_feedback(client: httpx.Client, pending: list[tuple[str, list[float]]]) -> None:
    items = [
        {"request_id": rid, "row": row, "actual": actual}
        for rid, actuals in pending
        for row, actual in enumerate(actuals)
    ]
    for offset in range(0, len(items), 500):
        response = client.post("/v1/feedback", json={"items": items[offset : offset + 500]})
        if response.status_code >= 300 and response.status_code != 202:
            raise FlywheelError(f"feedback was refused: {response.status_code} {response.text}")


def _summary(
    config: StoryConfig,
    result: StoryResult,
    store: PredictionStore,
    registry: Registry,
    model: str,
) -> dict[str, Any]:
    closure = SimulationConfig().start + timedelta(days=config.closure_day)
    before = [d for d in result.days if d.day < closure and not np.isnan(d.mae)]
    retrains = [d.day for d in result.days if d.retrain]
    summary: dict[str, Any] = {
        "false_alarms": sum(d.retrain for d in before),
        "first_retrain_day": retrains[0].isoformat() if retrains else None,
        "windows_to_retrain": (retrains[0] - closure).days if retrains else None,
        "champion": registry.resolve(model),
        "versions": registry.versions(model),
    }
    promoted = [r for r in result.rollouts if r["action"] == "promote"]
    if promoted:
        v1, v2 = promoted[0]["champion"], promoted[0]["candidate"]
        bundles = {v: registry.load(model, v) for v in (v1, v2)}
        # Both models score the same post-closure trips offline, even the days before v2
        # served any. Those days include the ones v2 was retrained on, so the honest figure is
        # the second: only trips neither model was fitted or selected on.
        post = store.window(_utc(closure), None, model).dropna(subset=["actual"])
        unseen = post[comparable_rows(post, "event_time", *bundles.values())[0]]
        scored, held_out = (
            {v: _mae(rows.assign(prediction=b.predict(rows))) for v, b in bundles.items()}
            for rows in (post, unseen)
        )
        summary |= {
            "post_closure_rows": len(post),
            f"{v1}_mae_post_closure": scored[v1],
            f"{v2}_mae_post_closure": scored[v2],
            "v2_over_v1": scored[v2] / scored[v1],
            "rows_unseen_by_both": len(unseen),
            "v2_over_v1_unseen_by_both": held_out[v2] / held_out[v1],
        }
    return summary
