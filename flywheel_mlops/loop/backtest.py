"""`flywheel backtest`: replay a history through the real loop, window by window, in event time.

The first champion trains on everything before `train_until`. Then each window of the history
is served (in this process, by the registry's champion and its canary share, split by request id
as the predictor splits it), logged to a real prediction log with its event times, labelled,
and handed to the same pieces a cluster's monitor job runs: the rollout step (gate, canary,
promote, roll back) on the registry's aliases, the monitor and the retraining policy, and a
retrain through the KFP local runner registered as `candidate`. Every policy replays the same
history from the same first champion in a folder of its own, so their errors compare on the
same rows. Nothing reads the wall clock: the same history and options decide the same.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from flywheel_mlops.durations import window_offset
from flywheel_mlops.errors import ConfigError, FlywheelError, InvalidInputError
from flywheel_mlops.loop.retrain import retrain_request, run_local_retrain
from flywheel_mlops.monitoring.policy import (
    BAD,
    FileState,
    NeverPolicy,
    RetrainPolicy,
    SchedulePolicy,
)
from flywheel_mlops.monitoring.run import run_monitor
from flywheel_mlops.predictions import PredictionStore
from flywheel_mlops.predictions.records import FeedbackItem, PredictionRow
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.registry.bundle import Bundle, comparable_rows
from flywheel_mlops.rollout import (
    LocalRouter,
    RolloutAction,
    RolloutLog,
    RolloutOptions,
    rollout_step,
)
from flywheel_mlops.scoring import mae
from flywheel_mlops.serving.records import frame_to_records
from flywheel_mlops.serving.routing import serves_canary
from flywheel_mlops.spec import DatasetSpec
from flywheel_mlops.training.clean import clean
from flywheel_mlops.training.ingest import ingest
from flywheel_mlops.training.local_runner import TrainingRequest, run_training

#: How a retrain chooses its data: all history up to now, the windows since the change (the
#: current streak of bad windows), or both, keeping the one that scores best on held-out rows.
RETRAIN_ON = ("all", "since-change", "validated")


def window_edges(start: datetime, end: datetime, offset: pd.DateOffset) -> list[datetime]:
    """start, start + offset, start + 2 offsets, ... while before `end`, then `end`: the windows'
    boundaries. Each edge is counted from `start` (Jan 31 + 1, 2 months: Feb 29, Mar 31)."""
    edges, k = [start], 1
    while edges[-1] < end:
        edges.append(min((pd.Timestamp(start) + offset * k).to_pydatetime(), end))
        k += 1
    return edges


@dataclass(frozen=True)
class BacktestConfig:
    """What to replay and how the loop under test is set."""

    spec: DatasetSpec
    data_uri: str
    train_until: datetime
    window: str = "1mo"
    side_uri: str = ""
    until: datetime | None = None
    """Replay no further than this (default: the history's last event)."""
    policies: tuple[str, ...] = ("drift",)
    retrain_on: str = "all"
    families: tuple[str, ...] = TrainingRequest.families
    rollout: RolloutOptions = field(default_factory=RolloutOptions)
    seed: int = 0
    cooldown: str = ""
    """After a drift policy's retrain, no other for this long (a window, e.g. 2d); none: 0."""
    live: bool = False
    """Serve through the real predictor and prediction service on loopback, not in-process."""
    batch_size: int = 20
    """Records per request when live."""

    def __post_init__(self) -> None:
        if self.spec.timestamp is None:
            raise ConfigError(
                f"a backtest replays event time: spec {self.spec.name} needs a timestamp"
            )
        if self.retrain_on not in RETRAIN_ON:
            raise ConfigError(f"--retrain-on must be one of {RETRAIN_ON}, got {self.retrain_on!r}")
        if not self.policies:
            raise ConfigError("a backtest needs at least one --policy")
        labels = [parse_policy(text).label for text in self.policies]  # fails now, not later
        if len(set(labels)) < len(labels):
            raise ConfigError(f"a policy is given twice: {labels}")
        window_offset(self.window)
        if self.cooldown:
            window_offset(self.cooldown)


@dataclass(frozen=True)
class PolicyChoice:
    """A parsed `--policy`: `drift` (the monitor's rules; `drift:N` debounces N windows),
    `schedule:<window>` or `never`."""

    kind: str
    debounce: int = 1
    every: str = ""

    @property
    def label(self) -> str:
        if self.kind == "schedule":
            return f"schedule:{self.every}"
        if self.kind == "drift" and self.debounce > 1:
            return f"drift:{self.debounce}"
        return self.kind

    def build(self, state: Path, since: datetime, cooldown: str = "") -> RetrainPolicy:
        if self.kind == "never":
            return NeverPolicy(FileState(state))
        if self.kind == "schedule":
            return SchedulePolicy(FileState(state), window_offset(self.every), since)
        # Windows are hours to months long: the monitor's hourly cooldown would not bind, so a
        # bad streak of `debounce` windows decides, after `cooldown` since the last retrain.
        pause = timedelta(0)
        if cooldown:
            pause = (
                pd.Timestamp(since) + window_offset(cooldown) - pd.Timestamp(since)
            ).to_pytimedelta()
        return RetrainPolicy(FileState(state), debounce=self.debounce, cooldown=pause)


def parse_policy(text: str) -> PolicyChoice:
    """`drift`, `drift:N`, `schedule:7d` (any window), or `never`; anything else is refused."""
    kind, _, argument = text.strip().partition(":")
    if kind == "never" and not argument:
        return PolicyChoice("never")
    if kind == "drift" and (not argument or (argument.isdigit() and int(argument) >= 1)):
        return PolicyChoice("drift", debounce=int(argument or 1))
    if kind == "schedule" and argument:
        window_offset(argument)
        return PolicyChoice("schedule", every=argument)
    raise ConfigError(
        f"a policy is drift, drift:N (N bad windows in a row), schedule:<window> (e.g. "
        f"schedule:7d) or never; got {text!r}"
    )


@dataclass
class WindowRecord:
    """One replayed window: what served it, what the monitor said, what the loop did."""

    window_start: str
    window_end: str
    rows: int = 0
    rejected: int = 0
    champion: str = ""
    canary: str | None = None
    served_by_version: dict[str, int] = field(default_factory=dict)
    mae: float = float("nan")
    mae_by_version: dict[str, float] = field(default_factory=dict)
    verdict: str = ""
    drift_share: float | None = None
    drift_by_feature: dict[str, float] = field(default_factory=dict)
    retrain: bool = False
    events: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _finite(dict(self.__dict__))


@dataclass
class PolicyReplay:
    """One policy's replay: every window and the totals it is compared on."""

    policy: str
    windows: list[WindowRecord] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "summary": _finite(self.summary),
            "windows": [w.to_dict() for w in self.windows],
        }


@dataclass
class BacktestResult:
    """Every policy's replay, the first champion they all started from, and the comparison."""

    first_champion: str
    windows: int
    replays: list[PolicyReplay]

    def comparison(self) -> list[dict[str, Any]]:
        """One row per policy: error over the replay, retrains, promotions, rollbacks."""
        return [{"policy": r.policy, **_finite(r.summary)} for r in self.replays]

    def to_dict(self, config: BacktestConfig) -> dict[str, Any]:
        """The JSON document: the first policy's windows and summary at the top level (the
        one-policy contract), every policy under `policies`, and the comparison."""
        first = self.replays[0].to_dict()
        return {
            "dataset": config.spec.name,
            "data": config.data_uri,
            "train_until": config.train_until.isoformat(),
            "window": config.window,
            "retrain_on": config.retrain_on,
            "first_champion": self.first_champion,
            "windows": first["windows"],
            "summary": first["summary"],
            "policies": [r.to_dict() for r in self.replays],
            "comparison": self.comparison(),
        }


class History:
    """The history as the app would send it: ingested and cleaned once by the training code, so
    a replayed request carries exactly what the pipeline would have trained on."""

    def __init__(self, spec: DatasetSpec, data_uri: str, side_uri: str):
        frame, _ = ingest(spec, data_uri, side_uri or None)
        frame, _ = clean(spec, frame)
        assert spec.timestamp is not None
        self.spec = spec
        self.stamps = pd.to_datetime(frame[spec.timestamp], utc=True)
        if self.stamps.empty:
            raise InvalidInputError(f"{data_uri} holds no usable rows after cleaning")
        order = np.argsort(self.stamps.to_numpy(), kind="stable")
        self.frame = frame.iloc[order].reset_index(drop=True)
        self.stamps = self.stamps.iloc[order].reset_index(drop=True)

    @property
    def first(self) -> datetime:
        return self.stamps.iloc[0].to_pydatetime()

    @property
    def last(self) -> datetime:
        return self.stamps.iloc[-1].to_pydatetime()

    def rows(self, start: datetime, end: datetime) -> tuple[pd.DataFrame, pd.Series]:
        """The rows with `start <= event time < end`, and their event times (UTC)."""
        keep = ((self.stamps >= start) & (self.stamps < end)).to_numpy()
        return self.frame.loc[keep].reset_index(drop=True), self.stamps[keep].reset_index(drop=True)


def run_backtest(
    config: BacktestConfig, work: Path, say: Callable[[str], None] = print
) -> BacktestResult:
    """Train the first champion, then replay every window under each policy; see the module."""
    work = Path(work)
    # Every model of the replay calibrates its drift thresholds for the windows it is judged on.
    drift = config.spec.drift.model_copy(update={"window": config.window})
    config = replace(config, spec=config.spec.model_copy(update={"drift": drift}))
    for ours in ("first-champion", "policies"):
        # A replay starts from nothing (same inputs, same decisions); only what a backtest
        # wrote is removed, never anything else in the folder.
        shutil.rmtree(work / ours, ignore_errors=True)
    history = History(config.spec, config.data_uri, config.side_uri)
    train_until = _utc(config.train_until)
    end = (
        min(_utc(config.until), history.last + timedelta(microseconds=1))
        if config.until
        else (history.last + timedelta(microseconds=1))
    )
    if not history.first < train_until < end:
        raise ConfigError(
            f"--train-until must fall inside the history ({history.first.isoformat()} to "
            f"{history.last.isoformat()}), got {train_until.isoformat()}"
        )
    edges = window_edges(train_until, end, window_offset(config.window))
    say(
        f"{len(history.frame):,} rows from {history.first:%Y-%m-%d} to {history.last:%Y-%m-%d}; "
        f"training on those before {train_until:%Y-%m-%d}, then {len(edges) - 1} windows of "
        f"{config.window}"
    )
    seed_registry = work / "first-champion" / "registry"
    first = run_training(
        TrainingRequest(
            config.spec,
            config.data_uri,
            str(seed_registry),
            side_uri=config.side_uri,
            end=train_until.isoformat(),
            families=config.families,
            seed=config.seed,
            reason="backtest: the first champion, trained on the history before --train-until",
        ),
        work / "first-champion" / "runs",
        log_path=work / "first-champion" / "pipeline.log",
    )
    if first.version is None:
        raise ConfigError(
            "the first champion was not registered: it did not beat the spec's baseline "
            f"({first.evaluation.get('test')} vs {first.evaluation.get('baseline')})"
        )
    say(f"first champion {first.version}: test MAE {first.evaluation['test']['mae']:.3f}")
    replays = []
    for text in config.policies:
        choice = parse_policy(text)
        folder = work / "policies" / re.sub(r"[^A-Za-z0-9]+", "-", choice.label)
        shutil.copytree(seed_registry, folder / "registry")
        replays.append(_replay(config, choice, history, edges, folder, say))
    return BacktestResult(first.version, len(edges) - 1, replays)


def _replay(
    config: BacktestConfig,
    choice: PolicyChoice,
    history: History,
    edges: list[datetime],
    folder: Path,
    say: Callable[[str], None],
) -> PolicyReplay:
    spec, model = config.spec, config.spec.name
    registry_uri = str(folder / "registry")
    registry = Registry(registry_uri)
    store = PredictionStore(f"sqlite:///{(folder / 'predictions.sqlite').resolve()}")
    rollouts, router = RolloutLog(folder / "rollouts.jsonl"), LocalRouter(registry, model)
    policy = choice.build(folder / "policy-state.json", edges[0], config.cooldown)
    options = config.rollout
    # The gate scores the labelled rows since the retrain's data began that neither model was
    # fitted or selected on (the bundles' windows): the retrain's held-out newest slice and
    # anything newer, never the older world a since-change retrain chose to leave behind.
    gate_since = edges[0]
    replay = PolicyReplay(choice.label, folder=folder)
    say(f"policy {choice.label}:")
    bad_since: datetime | None = None
    served_errors: list[np.ndarray] = []
    with _serving(config, folder, registry, store) as serving:
        for start, end in itertools.pairwise(edges):
            record = WindowRecord(start.isoformat(), end.isoformat())
            replay.windows.append(record)
            record.champion = registry.resolve(model, Alias.CHAMPION)
            canary = registry.alias(model, Alias.CANARY)
            record.canary = canary.version if canary else None
            rows, stamps = history.rows(start, end)
            predictions, versions = serving.serve(rows, stamps, start, end)
            actual = rows[spec.target].to_numpy(dtype=np.float64)
            served_errors.append(_tally(record, predictions, versions, actual))
            if canary is not None or registry.alias(model, Alias.CANDIDATE) is not None:
                # A running canary is judged on every labelled row since it started; a candidate
                # the gate could not judge yet (too few held-out rows) is gated on this window's.
                step = rollout_step(
                    registry, model, store, router, rollouts, end, _gate(options, gate_since, end)
                )
                if step.action is not RolloutAction.WAIT:
                    record.events.append(f"{step.action} {step.candidate}: {step.reason}")
            champion = registry.resolve(model, Alias.CHAMPION)
            window = store.window(start, end, model)
            monitored = run_monitor(
                registry.load(model, champion),
                window[window["model_version"] == champion],
                policy,
                folder / "monitor" / f"{start:%Y%m%dT%H%M}",
                end,
                cache_dir=folder / "monitor" / "reference-cache",
            )
            record.verdict = monitored.verdict
            drift = monitored.decision.drift or {}
            record.drift_share = drift.get("share")
            record.drift_by_feature = {
                name: float(column.get("score", float("nan")))
                for name, column in (drift.get("features") or {}).items()
            }
            bad_since = (bad_since or start) if monitored.verdict in BAD else None
            busy = registry.alias(model, Alias.CANARY) or registry.alias(model, Alias.CANDIDATE)
            if monitored.retrain and busy is not None:
                record.events.append(f"retrain decided; {busy.version} is still being rolled out")
            elif monitored.retrain:
                record.retrain = True
                since_change = bad_since or start
                windows = {
                    "all": {"all": history.first},
                    "since-change": {"since-change": since_change},
                    "validated": {"all": history.first, "since-change": since_change},
                }[config.retrain_on]
                why = " ".join(monitored.decision.why)
                gate_since = min(windows.values())
                record.events.extend(
                    _retrain_and_gate(
                        config,
                        registry,
                        store,
                        router,
                        rollouts,
                        _gate(options, gate_since, end),
                        folder,
                        windows,
                        end,
                        why,
                    )
                )
            say(_line(record))
    replay.summary = _summary(served_errors, rollouts, replay.windows, registry, model)
    return replay


class InProcessServing:
    """Serves a window in this process as the predictor would: the champion, and the canary for
    its share of request ids (the predictor's rule), each row its own request; then logs it
    with its event time and posts its outcome, as the prediction service would."""

    def __init__(self, store: PredictionStore, registry: Registry, spec: DatasetSpec):
        self.store, self.registry, self.spec = store, registry, spec

    def close(self) -> None:
        """Nothing runs beside this process."""

    def serve(
        self, rows: pd.DataFrame, stamps: pd.Series, start: datetime, end: datetime
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each row's prediction (NaN: refused, as a 4xx) and the version that answered it."""
        model = self.spec.name
        predictions = np.full(len(rows), np.nan)
        versions = np.full(len(rows), None, dtype=object)
        if rows.empty:
            return predictions, versions
        ids = [f"{s:%Y%m%dT%H%M%S}-{i:06d}" for i, s in enumerate(stamps)]
        to_canary = np.zeros(len(rows), dtype=bool)
        bundles: list[tuple[Bundle, np.ndarray]] = []
        canary = self.registry.alias(model, Alias.CANARY)
        if canary is not None:
            to_canary = np.array([serves_canary(i, canary.traffic_percent or 0) for i in ids])
            bundles.append((self.registry.load(model, canary.version), to_canary))
        bundles.append((self.registry.load(model, Alias.CHAMPION), ~to_canary))
        for bundle, mask in bundles:
            # A category the model was not trained with is a 400 at the predictor: not served.
            mask = mask & bundle.known_rows(rows)
            if mask.any():
                predictions[mask] = bundle.predict(rows.loc[mask])
                versions[mask] = bundle.version
        served = np.flatnonzero(~np.isnan(predictions))
        records = frame_to_records(rows[self.spec.feature_columns])
        actual = rows[self.spec.target].to_numpy(dtype=np.float64)
        self.store.log_predictions(
            PredictionRow(
                ids[i],
                0,
                model,
                str(versions[i]),
                records[i],
                float(predictions[i]),
                event_time=stamps.iloc[i].to_pydatetime(),
                call_rows=1,
            )
            for i in served
        )
        self.store.record_feedback(FeedbackItem(ids[i], float(actual[i])) for i in served)
        return predictions, versions


class Serving(Protocol):
    """How a window reaches the models: InProcessServing, or LiveServing (loop/live.py)."""

    def serve(
        self, rows: pd.DataFrame, stamps: pd.Series, start: datetime, end: datetime
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def close(self) -> None: ...


@contextlib.contextmanager
def _serving(
    config: BacktestConfig, folder: Path, registry: Registry, store: PredictionStore
) -> Iterator[Serving]:
    """In this process, or (`live`) through the real predictor and prediction service."""
    if not config.live:
        yield InProcessServing(store, registry, config.spec)
        return
    from flywheel_mlops.loop.live import LiveServing, running_services

    with running_services(registry.uri, store.url, config.spec.name, folder / "logs") as ends:
        live = LiveServing(ends, store, registry, config.spec, config.batch_size)
        try:
            yield live
        finally:
            live.close()


def _tally(
    record: WindowRecord, predictions: np.ndarray, versions: np.ndarray, actual: np.ndarray
) -> np.ndarray:
    """The window's served rows, refusals and live error per version; the served rows' errors."""
    served = ~np.isnan(predictions)
    record.rows, record.rejected = int(served.sum()), int((~served).sum())
    errors = np.abs(predictions[served] - actual[served])
    for version in sorted(set(versions[served])):
        mine = versions[served] == version
        record.served_by_version[version] = int(mine.sum())
        record.mae_by_version[version] = float(errors[mine].mean())
    record.mae = float(errors.mean()) if errors.size else float("nan")
    return errors


def _gate(options: RolloutOptions, since: datetime, now: datetime) -> RolloutOptions:
    """The rollout options with the gate looking back to `since`."""
    return replace(options, gate_hours=(now - since).total_seconds() / 3600)


def _retrain_and_gate(
    config: BacktestConfig,
    registry: Registry,
    store: PredictionStore,
    router: LocalRouter,
    rollouts: RolloutLog,
    options: RolloutOptions,
    folder: Path,
    windows: dict[str, datetime],
    end: datetime,
    why: str,
) -> list[str]:
    """The retrain a decision asks for (the served bundle's own spec, `candidate`), one run per
    data window; with several, the one with the lowest error on the labelled rows none of them
    was fitted or selected on stays the candidate. Then the offline gate on held-out rows; a
    canary it starts serves from the next window."""
    model = config.spec.name
    served = registry.load(model)
    trained: dict[str, str] = {}
    events = []
    for label, since in windows.items():
        request = replace(
            retrain_request(
                served, str(registry.uri), config.data_uri, config.side_uri, since, end, why
            ),
            families=config.families,
            seed=config.seed,
        )
        span = f"{label} ({since:%Y-%m-%d}..{end:%Y-%m-%d})"
        try:
            outcome = run_local_retrain(request, folder / "runs", folder / "retrain.log")
        except FlywheelError as failure:
            # As the monitor job would: the retrain failed, the champion keeps serving, and
            # the next decision may ask again. The replay goes on.
            events.append(f"retrain on {span} failed: {failure}")
            continue
        if outcome.version is None:
            events.append(f"retrained on {span}, not registered: no better than the baseline")
            continue
        if not outcome.promoted:
            events.append(
                f"retrained {outcome.version} on {span}, not a candidate: on its test rows the "
                "champion did not train on, no better than the champion"
            )
            continue
        trained[label] = outcome.version
        events.append(f"retrained {outcome.version} on {span}")
    if not trained:
        return events
    if len(trained) > 1:
        events.append(_choose_window(registry, model, store, trained, end))
    gate = rollout_step(registry, model, store, router, rollouts, end, options)
    events.append(f"gate {gate.action}: {gate.reason}")
    return events


def _choose_window(
    registry: Registry, model: str, store: PredictionStore, trained: dict[str, str], end: datetime
) -> str:
    """Keep as `candidate` the retrain whose window scores best on the labelled rows none of
    the retrains was fitted or selected on (the newest slice of the shortest window, held out
    from all of them); the sentence says every score and the rows they were taken on."""
    bundles = {label: registry.load(model, version) for label, version in trained.items()}
    labelled = store.window(None, end, model).dropna(subset=["actual"])
    keep, _, _ = comparable_rows(labelled, "event_time", *bundles.values())
    rows = labelled[keep]
    if rows.empty:
        chosen = next(iter(trained))
        reason = f"no row is held out from every window's retrain: {chosen}, the first, stays"
    else:
        scores = {
            label: mae(rows["actual"], bundle.predict(rows)) for label, bundle in bundles.items()
        }
        chosen = min(scores, key=lambda label: scores[label])
        listed = ", ".join(f"{label} {trained[label]} MAE {e:.3f}" for label, e in scores.items())
        reason = f"window chosen by validation on {len(rows)} held-out rows: {listed}"
    registry.set_alias(model, trained[chosen], Alias.CANDIDATE, reason)
    return f"{reason}; candidate {trained[chosen]} ({chosen})"


def _summary(
    errors: list[np.ndarray],
    rollouts: RolloutLog,
    windows: list[WindowRecord],
    registry: Registry,
    model: str,
) -> dict[str, Any]:
    steps = rollouts.read()
    served = np.concatenate(errors) if errors else np.empty(0)
    return {
        "rows": int(served.size),
        "mae_overall": float(served.mean()) if served.size else float("nan"),
        "retrains": sum(w.retrain for w in windows),
        "canaries": sum(s.action is RolloutAction.CANARY for s in steps),
        "promotions": sum(s.action is RolloutAction.PROMOTE for s in steps),
        "rollbacks": sum(s.action is RolloutAction.ROLLBACK for s in steps),
        "rejected_by_gate": sum(s.action is RolloutAction.REJECT for s in steps),
        "final_champion": registry.resolve(model, Alias.CHAMPION),
    }


def _line(record: WindowRecord) -> str:
    share = "-" if record.drift_share is None else f"{record.drift_share:.2f}"
    by = ", ".join(f"{v} {e:.3f}" for v, e in record.mae_by_version.items()) or "-"
    events = f" | {'; '.join(e.split(':')[0] for e in record.events)}" if record.events else ""
    return f"{record.window_start[:10]} {record.verdict:<17} drift {share:<5} MAE {by}{events}"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """NaN as None, in nested dicts too: the JSON stays standard JSON."""
    return {
        k: _finite(v)
        if isinstance(v, dict)
        else (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in values.items()
    }
