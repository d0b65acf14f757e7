"""Prediction records from a file (JSON, JSON Lines, CSV, Parquet) or `key=value` pairs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from flywheel_mlops.errors import InvalidInputError


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records as JSON-ready dicts; timestamps become ISO strings, empty cells None.

    JSON may hold a list of objects, one object, or {"instances": [...]}.
    """
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            data = data.get("instances", [data])
        if not isinstance(data, list):
            raise InvalidInputError(
                f"{path} must hold a list of objects, got {type(data).__name__}"
            )
        return data
    if suffix in (".jsonl", ".ndjson"):
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if suffix == ".csv":
        frame = pd.read_csv(path)
    elif suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        raise InvalidInputError(f"{path}: expected a .json, .jsonl, .csv or .parquet file")
    return frame_to_records(frame)


def frame_to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready records (what a client would send)."""
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
    records = frame.to_dict(orient="records")
    return [{str(k): _plain(v) for k, v in r.items()} for r in records]


def parse_pairs(pairs: list[str]) -> dict[str, Any]:
    """One record from `key=value` strings; values are read as JSON when they parse (numbers,
    true/false, null, "quoted"), as text otherwise (Z03, 2026-03-02T08:15:00)."""
    record: dict[str, Any] = {}
    for index, pair in enumerate(pairs):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--record {index} must be key=value, got {pair!r}")
        try:
            record[key] = json.loads(value)
        except ValueError:
            record[key] = value
    return record


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    return value
