"""The paired canary bound under repeated looks: a simulation of many canaries on synthetic
paired errors, judged every `LOOK` rows up to the row cap with the default options, as the
monitor judges every run while labels arrive."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from flywheel_mlops.rollout import RolloutOptions
from flywheel_mlops.rollout.paired import (
    PairedBound,
    Verdict,
    confidence_radius,
    paired_bound,
    rows_still_needed,
    verdict,
)

TRIALS = 1000
LOOK = 200
DEFAULTS = RolloutOptions()


def simulate(improvement: float, seed: int) -> Counter[Verdict]:
    """Final verdict of each trial. Two regressors on the same rows: a shared row difficulty
    (gamma, mean 2 minutes) times each model's own lognormal noise (mean 1), so their absolute
    errors correlate (about 0.66); the canary's errors are scaled by 1 - improvement."""
    rng = np.random.default_rng(seed)
    sigma = 0.4
    n = np.zeros(TRIALS)
    total = np.zeros(TRIALS)
    squares = np.zeros(TRIALS)
    champion_total = np.zeros(TRIALS)
    final: dict[int, Verdict] = {}
    for _ in range(DEFAULTS.canary_max_rows // LOOK):
        difficulty = rng.gamma(2.0, 1.0, (TRIALS, LOOK))
        noise = rng.lognormal(-(sigma**2) / 2, sigma, (2, TRIALS, LOOK))
        champion = difficulty * noise[0]
        d = champion - difficulty * noise[1] * (1 - improvement)
        n += LOOK
        total += d.sum(axis=1)
        squares += (d**2).sum(axis=1)
        champion_total += champion.sum(axis=1)
        if n[0] < DEFAULTS.canary_min_rows:
            continue
        mean = total / n
        variance = (squares - n * mean**2) / (n - 1)
        radius = confidence_radius(variance, n, DEFAULTS.canary_alpha)
        for trial in set(range(TRIALS)) - final.keys():
            bound = PairedBound(
                int(n[trial]),
                mean[trial],
                mean[trial] - radius[trial],
                mean[trial] + radius[trial],
                DEFAULTS.canary_alpha,
            )
            said = verdict(
                bound,
                champion_total[trial] / n[trial],
                DEFAULTS.canary_margin,
                DEFAULTS.canary_max_rows,
            )
            if said is not Verdict.UNDECIDED:
                final[trial] = said
    return Counter(final.values())


@pytest.mark.parametrize(
    ("improvement", "seed", "promoted_at_most", "promoted_at_least"),
    [(-0.02, 1, 0.05, 0.0), (0.0, 2, 0.05, 0.0), (0.10, 3, 1.0, 0.90)],
    ids=["worse-by-2pct-rarely-promoted", "equal-keeps-the-champion", "better-by-10pct-promoted"],
)
def test_sequential_looks_promote_a_better_canary_and_rarely_a_worse_or_equal_one(
    improvement, seed, promoted_at_most, promoted_at_least
):
    counts = simulate(improvement, seed)
    shown = {str(k): v for k, v in counts.items()}
    print(f"improvement {improvement:+.0%}, {TRIALS} trials: {shown}")
    assert sum(counts.values()) == TRIALS, "every trial ends by the row cap"
    promoted = counts[Verdict.BETTER] / TRIALS
    assert promoted_at_least <= promoted <= promoted_at_most


def test_the_running_sums_bound_is_the_bound_of_the_rows():
    """The simulation's bound from running sums equals paired_bound on the rows themselves."""
    d = np.random.default_rng(0).normal(0.1, 1.0, 500)
    bound = paired_bound(d)
    radius = confidence_radius(float(d.var(ddof=1)), len(d))
    assert (bound.lower, bound.upper) == pytest.approx((d.mean() - radius, d.mean() + radius))


@pytest.mark.parametrize(
    ("mean", "radius", "rows", "expected"),
    [
        (0.2, 0.19, 100, Verdict.BETTER),
        (-0.2, 0.19, 100, Verdict.WORSE),
        (0.0, 0.1, 20_000, Verdict.INCONCLUSIVE),
        (0.05, 0.1, 1_000, Verdict.UNDECIDED),
    ],
    ids=["lower-clears-margin", "upper-below-zero", "cap-reached", "neither"],
)
def test_verdict_reads_the_bound_against_margin_zero_and_cap(mean, radius, rows, expected):
    bound = PairedBound(rows, mean, mean - radius, mean + radius, 0.05)
    assert verdict(bound, champion_mae=0.1, margin=0.01, max_rows=20_000) is expected


@pytest.mark.parametrize(
    ("mean", "expected"),
    [(0.5, 3_000), (0.0, 19_000)],
    ids=["width-must-halve", "between-the-goals-until-the-cap"],
)
def test_rows_still_needed_follows_the_width(mean, expected):
    # Promotion needs the radius 1.0 to shrink to 0.5 - 0.01 x 0 = 0.5: four times the rows.
    bound = PairedBound(1_000, mean, mean - 1.0, mean + 1.0, 0.05)
    assert rows_still_needed(bound, champion_mae=0.0, margin=0.01, max_rows=20_000) == expected


@pytest.mark.parametrize("alpha", [0.0, 1.0], ids=["zero", "one"])
def test_an_alpha_outside_zero_one_is_refused(alpha):
    with pytest.raises(ValueError, match="alpha must be within"):
        confidence_radius(1.0, 100, alpha)
