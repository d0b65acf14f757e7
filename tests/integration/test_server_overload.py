"""Overload at small size: far more than the cap, offered in an open loop, against the real server.

The full-size run (50,000 requests at twice the measured saturation, with memory and p99
figures) is `scripts/reliability.py`; this proves the same behaviour in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pandas as pd
import pytest

from flywheel_mlops.serving.records import frame_to_records
from tests.integration.conftest import MODEL, ServerFactory
from tests.loadgen import run_loadgen

pytestmark = pytest.mark.integration


def test_past_the_cap_every_request_is_answered_and_refusals_say_when_to_retry(
    start_predictor: ServerFactory,
    bundle_dir: Path,
    reference_rows: pd.DataFrame,
    tmp_path: Path,
) -> None:
    server = start_predictor("--model_dir", str(bundle_dir), "--max_concurrency", "1")
    # 300 records: above --offload_rows, so predictions run on worker threads behind the cap.
    records = frame_to_records(pd.concat([reference_rows] * 3).head(300))
    body = orjson.dumps({"instances": records})

    url = f"{server.url}/v1/models/{MODEL}:predict"
    report = run_loadgen(url, body, rate=1000, count=600, connections=16, work=tmp_path)

    statuses = report["statuses"]
    assert report["transport_errors"] == {}, "a connection was dropped"
    assert sum(statuses.values()) == 600, "every request gets an answer"
    assert set(statuses) <= {"200", "503"}, statuses
    assert statuses.get("200", 0) > 0
    assert statuses.get("503", 0) > 0, "1,000 req/s of 300 records each must pass the cap of 1"
    assert report["with_retry_after"] == statuses["503"]
    assert httpx.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
    refusals = [entry for entry in server.logs() if entry.get("status") == 503]
    assert len(refusals) == statuses["503"], "one log line per refused request"
    assert not any("exception" in entry for entry in refusals)
