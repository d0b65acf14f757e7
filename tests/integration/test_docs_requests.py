"""The requests docs/deploy-kubernetes.md tells a user to send are answered 200 by a model
trained with the default spec (the predictor checks requests as strictly on a cluster)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import MODEL, RunningServer

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy-kubernetes.md"


def _predict_bodies() -> list[dict[str, object]]:
    """Every `-d '...'` body of a curl to a :predict endpoint in the deployment guide."""
    found = re.findall(r"curl [^\n]*:predict \\\n\s*-d '(.*?)'", DOC.read_text(), re.S)
    return [json.loads(body) for body in found]


def test_the_guide_shows_a_predict_request():
    assert _predict_bodies(), f"no `curl ... :predict -d '...'` found in {DOC.name}"


@pytest.mark.parametrize("body", _predict_bodies())
def test_each_predict_request_in_the_guide_is_answered(predictor: RunningServer, body):
    answer = httpx.post(f"{predictor.url}/v1/models/{MODEL}:predict", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == len(body["instances"])  # type: ignore[arg-type]
