"""`flywheel predict` reads records from files and key=value pairs as a client would send them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from flywheel_mlops.cli.serving import server_command
from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.serving.records import parse_pairs, read_records

FRAME = pd.DataFrame(
    {
        "request_time": pd.to_datetime(["2026-03-02 08:15:00", "2026-03-02 09:00:00"]),
        "zone": ["Z00", "Z01"],
        "distance_km": [1.5, None],
    }
)
EXPECTED = [
    {"request_time": "2026-03-02T08:15:00", "zone": "Z00", "distance_km": 1.5},
    {"request_time": "2026-03-02T09:00:00", "zone": "Z01", "distance_km": None},
]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".jsonl"])
def test_files_become_json_ready_records(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"records{suffix}"
    if suffix == ".csv":
        FRAME.assign(request_time=[r["request_time"] for r in EXPECTED]).to_csv(path, index=False)
    elif suffix == ".parquet":
        FRAME.to_parquet(path)
    elif suffix == ".json":
        path.write_text(json.dumps({"instances": EXPECTED}))
    else:
        path.write_text("\n".join(json.dumps(r) for r in EXPECTED))
    assert read_records(path) == EXPECTED


def test_an_unknown_file_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"\.json, \.jsonl, \.csv or \.parquet"):
        read_records(tmp_path / "records.xlsx")


def test_pairs_read_numbers_as_numbers_and_the_rest_as_text() -> None:
    assert parse_pairs(
        [
            "distance_km=3.5",
            "incidents=2",
            "zone=Z03",
            "request_time=2026-03-02T08:15:00",
            'weather="rain"',
        ]
    ) == {
        "distance_km": 3.5,
        "incidents": 2,
        "zone": "Z03",
        "request_time": "2026-03-02T08:15:00",
        "weather": "rain",
    }


def test_a_pair_without_equals_sign_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="--record 1 must be key=value"):
        parse_pairs(["a=1", "zone"])


def test_serve_runs_the_predictor_entry_point_on_the_alias() -> None:
    command = server_command("reg", "pickup-eta", "champion", "127.0.0.1", 8099, 0.5, 100)
    assert command[:3] == [sys.executable, "-m", "flywheel_inference"]
    joined = " ".join(command)
    for part in (
        "--registry_uri reg",
        "--alias champion",
        "--host 127.0.0.1",
        "--http_port 8099",
        "--watch_interval 0.5",
        "--max_batch 100",
    ):
        assert part in joined
