"""Which version serves a request while a canary runs: one rule for the predictor and replays."""

from __future__ import annotations

import hashlib


def serves_canary(request_id: str, percent: int) -> bool:
    """Whether the canary serves `request_id` at a share of `percent`.

    Hashing the id (not a coin toss) makes a retried request land the same way, and a replay
    of the same requests split exactly as live traffic did."""
    bucket = int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=2).digest())
    return bucket % 100 < percent
