"""Window lengths as people write them (`12h`, `1d`, `7d`, `2w`, `1mo`), as pandas offsets."""

from __future__ import annotations

import re

import pandas as pd

from flywheel_mlops.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+)\s*(h|d|w|mo)\s*$")


def window_offset(text: str) -> pd.DateOffset:
    """`12h`, `1d`, `7d`, `2w` or `1mo` (calendar months) as an offset; anything else is refused."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ConfigError(
            f"a window is a positive count and a unit, e.g. 12h, 1d, 7d, 2w or 1mo; got {text!r}"
        )
    count, unit = int(match.group(1)), match.group(2)
    if unit == "mo":
        return pd.DateOffset(months=count)
    return pd.DateOffset(hours=count * {"h": 1, "d": 24, "w": 24 * 7}[unit])
