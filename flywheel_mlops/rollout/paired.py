"""Paired canary statistics: a confidence sequence for the mean paired error difference.

d_i = |err_champion_i| - |err_canary_i| on the same row i (positive: the canary is better). The
monitor judges again every run as labels arrive, so a fixed-n confidence interval looked at
repeatedly would promote on noise; a confidence sequence stays valid at every look.

Method: the asymptotic confidence sequence (normal mixture with the sample variance) of
Waudby-Smith, Arnold, Wu, Howard, Ramdas (2021), "Time-uniform central limit theory and
asymptotic confidence sequences", Theorem 2.2 / eq. (2.9):

    mean_t +/- sqrt( 2 (t s^2 rho^2 + 1) / (t^2 rho^2) * log( sqrt(t s^2 rho^2 + 1) / alpha ) )

with s^2 the sample variance of d after t rows, and rho the mixture width tuned so the boundary
is tightest at t* rows (their eq. B.4, for unit variance):

    rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / t*

The two-sided sequence covers the true mean at all t simultaneously with probability
>= 1 - alpha (asymptotically), so each bound alone errs with probability <= alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

FloatLike = float | npt.NDArray[np.float64]


class Verdict(StrEnum):
    """What the paired bound says about the canary."""

    BETTER = "better"  # the lower bound clears the margin: promote
    WORSE = "worse"  # the upper bound is below zero: roll back
    INCONCLUSIVE = "inconclusive"  # the row cap is reached without either: keep the champion
    UNDECIDED = "undecided"  # neither yet: wait for more labelled rows


@dataclass(frozen=True)
class PairedBound:
    """The confidence sequence for the mean paired difference after `rows` rows."""

    rows: int
    mean: float
    lower: float
    upper: float
    alpha: float


def confidence_radius(
    variance: FloatLike, rows: FloatLike, alpha: float = 0.05, tuned_rows: int = 1000
) -> FloatLike:
    """Half-width of the asymptotic confidence sequence (module docstring) after `rows` rows
    whose sample variance is `variance`; numpy arrays work element-wise."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    log_alpha = -2 * math.log(alpha)
    rho2 = (log_alpha + math.log(log_alpha + 1)) / tuned_rows
    spread = np.asarray(rows) * np.asarray(variance) * rho2 + 1
    radius = np.sqrt(2 * spread / (np.asarray(rows) ** 2 * rho2) * np.log(np.sqrt(spread) / alpha))
    return float(radius) if np.ndim(radius) == 0 else radius


def paired_bound(differences: npt.ArrayLike, alpha: float = 0.05) -> PairedBound:
    """The bound on the mean of `differences` (one per paired row, at least two)."""
    d = np.asarray(differences, dtype=np.float64)
    if len(d) < 2:
        raise ValueError(f"a paired bound needs at least 2 rows, got {len(d)}")
    mean = float(d.mean())
    radius = float(confidence_radius(float(d.var(ddof=1)), len(d), alpha))
    return PairedBound(len(d), mean, mean - radius, mean + radius, alpha)


def verdict(bound: PairedBound, champion_mae: float, margin: float, max_rows: int) -> Verdict:
    """BETTER when the lower bound beats `margin` x the champion's MAE, WORSE when the upper
    bound is below zero, INCONCLUSIVE at `max_rows` rows without either, else UNDECIDED."""
    if bound.lower > margin * champion_mae:
        return Verdict.BETTER
    if bound.upper < 0:
        return Verdict.WORSE
    if bound.rows >= max_rows:
        return Verdict.INCONCLUSIVE
    return Verdict.UNDECIDED


def rows_still_needed(bound: PairedBound, champion_mae: float, margin: float, max_rows: int) -> int:
    """Rough rows to go before a bound clears, from the current width (which shrinks about as
    1/sqrt(rows)); the rows left to the cap when the estimate sits between the two goals."""
    left = max(max_rows - bound.rows, 0)
    radius = (bound.upper - bound.lower) / 2
    # The side nearer to clearing: promote needs radius < mean - goal, roll back radius < -mean.
    room = max(bound.mean - margin * champion_mae, -bound.mean)
    if room <= 0 or radius <= 0:
        return left if radius > 0 else 0
    needed = math.ceil(bound.rows * (radius / room) ** 2) - bound.rows
    return min(max(needed, 0), left)
