"""The story: a backtest of the simulated city through the live servers.

A highway closes on one day; the story is `flywheel backtest --live` on those trips, one day a
window: serve through the real predictor and prediction service, label, monitor, retrain on the
days since the change, gate, canary, promote. Everything it decides is decided by `loop/`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flywheel_mlops.demo.report import write_report
from flywheel_mlops.demo.timeline import DayRecord
from flywheel_mlops.loop.backtest import BacktestConfig, WindowRecord, run_backtest
from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.bundle import comparable_rows
from flywheel_mlops.rollout import RolloutLog, RolloutOptions
from flywheel_mlops.scoring import mae
from flywheel_mlops.simulator import SimulationConfig, simulate
from flywheel_mlops.spec import load_spec

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
    debounce: int = 3


@dataclass
class StoryResult:
    """Every day's record, the rollout decisions, and the numbers the story is judged on."""

    days: list[DayRecord] = field(default_factory=list)
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    report_path: Path | None = None
    folder: Path | None = None
    """Where the loop kept its registry, prediction log, monitor runs and rollout log."""


def run_story(config: StoryConfig, home: Path, say: Callable[[str], None] = print) -> StoryResult:
    """Run the whole loop on simulated data under `home`; returns what happened."""
    spec = load_spec("ride_hailing")
    data = simulate(
        SimulationConfig(
            rows=config.rows, days=config.days, closure_day=config.closure_day, seed=config.seed
        ),
        home / "data",
    )
    start = SimulationConfig().start
    say(
        f"simulated {data.trip_rows:,} trips over {config.days} days; highway closes on day "
        f"{config.closure_day} ({start + timedelta(days=config.closure_day)}) in "
        f"{', '.join(CLOSURE_ZONES)}"
    )
    backtest = BacktestConfig(
        spec,
        str(data.trips_path),
        _utc(start + timedelta(days=config.train_days)),
        window="1d",
        side_uri=str(data.weather_path),
        until=_utc(start + timedelta(days=config.days)),
        policies=(f"drift:{config.debounce}",),
        # Fresh data only: the days since the world changed, so the new model learns the new
        # world rather than an average of the old and the new.
        retrain_on="since-change",
        rollout=RolloutOptions(canary_percent=config.canary_percent),
        cooldown="2d",
        live=True,
        batch_size=config.batch_size,
    )
    replay = run_backtest(backtest, home / "loop", say).replays[0]
    assert replay.folder is not None
    store = PredictionStore(f"sqlite:///{(replay.folder / 'predictions.sqlite').resolve()}")
    registry = Registry(str(replay.folder / "registry"))
    served = store.window(None, None, spec.name)
    result = StoryResult(folder=replay.folder)
    result.days = [_day(window, served) for window in replay.windows]
    result.rollouts = [r.__dict__ for r in RolloutLog(replay.folder / "rollouts.jsonl").read()]
    result.summary = _summary(config, result, store, registry, spec.name)
    result.report_path = write_report(
        result.days,
        served,
        home / "story-report.html",
        "Flywheel: a highway closes, the model notices and heals",
    )
    return result


def _day(window: WindowRecord, served: pd.DataFrame) -> DayRecord:
    """The window as the story's day, with the closure zones' own live error."""
    start, end = (pd.Timestamp(t) for t in (window.window_start, window.window_end))
    times = pd.to_datetime(served["event_time"], utc=True)
    mine = served[(times >= start) & (times < end)]
    closure = mine[mine["zone"].isin(CLOSURE_ZONES)].dropna(subset=["actual"])
    return DayRecord(
        start.date(),
        requests=window.rows,
        rejected=window.rejected,
        served_by_version=window.served_by_version,
        mae_by_version=window.mae_by_version,
        mae=window.mae,
        closure_zones_mae=_mae(closure),
        verdict=window.verdict,
        drift_share=float("nan") if window.drift_share is None else window.drift_share,
        drift_by_feature=window.drift_by_feature,
        retrain=window.retrain,
        events=window.events,
    )


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _mae(frame: pd.DataFrame) -> float:
    return mae(frame["actual"], frame["prediction"])


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
