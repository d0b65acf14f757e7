"""The registry's aliases: the moving names that point at versions, each with one meaning."""

from __future__ import annotations

from enum import StrEnum


class Alias(StrEnum):
    """A moving pointer at a version of a model; swapped atomically, its history kept."""

    #: Serves all traffic (or all but a canary's share).
    CHAMPION = "champion"
    #: A retrained model waiting for the offline gate; never serves until it passes.
    CANDIDATE = "candidate"
    #: Serves a share of live traffic while it is compared with the champion.
    CANARY = "canary"
