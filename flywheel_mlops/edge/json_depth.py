"""How deep a JSON document nests, measured on its bytes without recursion or parsing.

Parsers and encoders recurse (orjson stops at 255 levels with an error, the standard library at
Python's recursion limit, and code that walks the parsed value may recurse too), so the edge
refuses a deep body before any of them sees it. Counting brackets outside strings is enough:
a body that is not JSON at all fails the parser right after. The count runs on numpy arrays a
chunk at a time, so an 8 MiB body costs a few tens of milliseconds and a few MiB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flywheel_mlops.edge.limits import JsonTooDeep

_CHUNK = 1 << 20
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_STEP = np.zeros(256, dtype=np.int32)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1


@dataclass
class _Scan:
    """Where the scan stands at the end of a chunk."""

    depth: int = 0
    deepest: int = 0
    in_string: bool = False
    backslashes: int = 0  # the run of backslashes the chunk ended with


def _scan_chunk(chunk: np.ndarray, scan: _Scan) -> None:
    quotes = chunk == _QUOTE
    backslash = chunk == _BACKSLASH
    if backslash.any() or scan.backslashes:
        positions = np.arange(len(chunk), dtype=np.int32)
        last_other = np.maximum.accumulate(np.where(backslash, -1, positions))
        # Backslashes right before each byte: a quote after an odd run of them is escaped.
        before = np.empty(len(chunk), dtype=np.int64)
        before[0] = scan.backslashes
        before[1:] = positions[:-1] - last_other[:-1]
        before[1:][last_other[:-1] < 0] += scan.backslashes
        quotes &= before % 2 == 0
        tail = int(last_other[-1])
        scan.backslashes = scan.backslashes + len(chunk) if tail < 0 else len(chunk) - 1 - tail
    inside = (np.cumsum(quotes, dtype=np.int32) + int(scan.in_string)) & 1
    steps = _STEP[chunk]
    steps[inside.astype(bool)] = 0
    depths = np.cumsum(steps, dtype=np.int32)
    scan.deepest = max(scan.deepest, scan.depth + int(depths.max()))
    scan.depth += int(depths[-1])
    scan.in_string = bool(inside[-1])


def json_depth(body: bytes, limit: int | None = None) -> int:
    """The deepest nesting of arrays and objects in `body` (0 for a scalar).

    With `limit`, the scan stops at the first chunk that goes past it.
    """
    if b"[" not in body and b"{" not in body:
        return 0
    data = np.frombuffer(body, dtype=np.uint8)
    scan = _Scan()
    for start in range(0, len(data), _CHUNK):
        _scan_chunk(data[start : start + _CHUNK], scan)
        if limit is not None and scan.deepest > limit:
            break
    return scan.deepest


def check_json_depth(body: bytes, limit: int, where: str = "the JSON body") -> None:
    """Raise JsonTooDeep if `body` nests deeper than `limit`."""
    depth = json_depth(body, limit)
    if depth > limit:
        raise JsonTooDeep(limit, depth, where)
