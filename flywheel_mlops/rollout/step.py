"""One idempotent rollout step: what a scheduled job does with a retrained candidate each run.

The state lives where a fresh pod can read it back, not in the process: the registry's
`candidate` alias (a retrain waiting for the offline gate) and `canary` alias (a version serving
a share of live traffic, set by every router). So a run that crashes half-way is finished by the
next one, and two runs in a row with nothing new decide `wait` or `idle` without moving anything.

A canary is judged paired, by shadow scoring at judge time: both bundles score every labelled
row logged since the canary started, whichever version served it, from the features the
prediction log kept. So both models are compared on the same rows (not each on the traffic it
happened to get), and the serving path pays nothing for it: no second model runs per request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

import pandas as pd

from flywheel_mlops.registry import AliasRecord, Registry
from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.rollout.controller import (
    RolloutAction,
    RolloutDecision,
    RolloutLog,
    gate_candidate,
    judge_canary,
)
from flywheel_mlops.rollout.router import TrafficRouter


class PredictionWindow(Protocol):
    """What the step reads of the prediction log (a PredictionStore fits)."""

    def window(
        self, start: datetime | None, end: datetime | None, model_name: str | None = None
    ) -> pd.DataFrame: ...


@dataclass(frozen=True)
class RolloutOptions:
    """How cautious the rollout is; the defaults are the local story's."""

    canary_percent: int = 25
    """Share of live requests the canary serves."""
    gate_hours: float = 24.0
    """The offline gate scores both models on the labelled rows of this many recent hours."""
    gate_margin: float = 0.02
    """The candidate's MAE must be at least this much (relative) below the champion's."""
    gate_min_rows: int = 200
    """Labelled recent rows the gate needs; fewer means wait."""
    canary_margin: float = 0.01
    """Live: the lower bound on the canary's mean paired improvement must exceed this share of
    the champion's MAE on the same rows to promote."""
    canary_alpha: float = 0.05
    """Live: error level of the confidence sequence on the paired improvement (two-sided)."""
    canary_min_rows: int = 100
    """Labelled live rows (served by either version) both models must score before a verdict."""
    canary_max_rows: int = 20_000
    """Live: paired rows after which a canary neither side of its bounds is rolled back
    (inconclusive: the champion stays)."""


def rollout_step(
    registry: Registry,
    model: str,
    log: PredictionWindow,
    router: TrafficRouter,
    history: RolloutLog,
    now: datetime,
    options: RolloutOptions | None = None,
) -> RolloutDecision:
    """Take the one rollout action the registry's state calls for, record it, and return it.

    - a canary is running: score both versions on every labelled row since it started
      (judge_canary), then promote, roll back or wait;
    - a `candidate` differs from the champion: score both on recent labelled rows
      (gate_candidate), then start a canary, reject, or wait for labels;
    - otherwise: `idle`.

    Raises NotFoundError when the model has no champion (nothing to compare a candidate with),
    and whatever the router raises when it cannot move traffic; nothing is recorded then.
    """
    options = options or RolloutOptions()
    # A patch that went through without its alias write must not be decided on stale aliases.
    repaired = router.sync()
    champion = registry.resolve(model, Alias.CHAMPION)
    canary = registry.alias(model, Alias.CANARY)
    if canary is not None and canary.version == champion:
        # An earlier run promoted it and died before clearing the canary alias: finish that
        # promotion (judging the champion against itself could "roll back" the champion).
        router.promote(canary.version, "finishing the promotion an earlier run started")
        decision = RolloutDecision(
            RolloutAction.PROMOTE,
            canary.version,
            champion,
            f"{canary.version} is already the champion; the canary alias was left by an "
            "interrupted promotion and is now cleared",
        )
        _retire_candidate(registry, model, canary.version, decision.reason)
    elif canary is not None:
        decision = _judge(registry, model, log, router, canary, champion, now, options, history)
    else:
        candidate = registry.alias(model, Alias.CANDIDATE)
        if candidate is None or candidate.version == champion:
            decision = RolloutDecision(
                RolloutAction.IDLE,
                candidate.version if candidate else "",
                champion,
                f"no canary is running and no candidate differs from the champion {champion}",
            )
        else:
            decision = _gate(
                registry, model, log, router, candidate.version, champion, now, options
            )
    if repaired:
        decision = replace(decision, reason=f"{'; '.join(repaired)}; then: {decision.reason}")
    # Stamped with the loop's clock (event time), not the wall clock: a replay decides alike.
    return history.record(replace(decision, at=now.isoformat(timespec="seconds")))


def _judge(
    registry: Registry,
    model: str,
    log: PredictionWindow,
    router: TrafficRouter,
    canary: AliasRecord,
    champion: str,
    now: datetime,
    options: RolloutOptions,
    history: RolloutLog,
) -> RolloutDecision:
    # Only traffic since the canary started: before it, the champion served alone.
    window = log.window(_canary_start(history, canary), now, model)
    verdict = judge_canary(
        registry.load(model, canary.version),
        registry.load(model, champion),
        window,
        margin=options.canary_margin,
        alpha=options.canary_alpha,
        min_rows=options.canary_min_rows,
        max_rows=options.canary_max_rows,
    )
    if verdict.action is RolloutAction.PROMOTE:
        router.promote(canary.version, verdict.reason)
    elif verdict.action is RolloutAction.ROLLBACK:
        router.roll_back(canary.version, verdict.reason)
    if verdict.action is not RolloutAction.WAIT:
        _retire_candidate(registry, model, canary.version, verdict.reason)
    return verdict


def _canary_start(history: RolloutLog, canary: AliasRecord) -> datetime:
    """When the canary started, in the loop's clock: the event time its `canary` step was
    recorded at; the alias's own (wall-clock) time when that record is not at hand."""
    started = [
        d.at
        for d in history.read()
        if d.action is RolloutAction.CANARY and d.candidate == canary.version
    ]
    return datetime.fromisoformat(started[-1] if started else canary.at)


def _gate(
    registry: Registry,
    model: str,
    log: PredictionWindow,
    router: TrafficRouter,
    candidate: str,
    champion: str,
    now: datetime,
    options: RolloutOptions,
) -> RolloutDecision:
    recent = log.window(now - timedelta(hours=options.gate_hours), now, model)
    gate = gate_candidate(
        registry.load(model, candidate),
        registry.load(model, champion),
        recent,
        margin=options.gate_margin,
        min_rows=options.gate_min_rows,
    )
    if gate.action is RolloutAction.CANARY:
        router.start_canary(candidate, options.canary_percent, gate.reason)
    if gate.action is not RolloutAction.WAIT:
        _retire_candidate(registry, model, candidate, gate.reason)
    return gate


def _retire_candidate(registry: Registry, model: str, version: str, reason: str) -> None:
    """The gate has used the candidate: drop the alias so the next run does not gate it again.

    Only if it still points at `version`: a retrain that finished meanwhile has moved it to a
    newer version, which must get its own turn.
    """
    current = registry.alias(model, Alias.CANDIDATE)
    if current is not None and current.version == version:
        registry.remove_alias(model, Alias.CANDIDATE, reason)
