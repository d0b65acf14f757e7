"""The serving side stands alone: importing it loads no training, simulator, demo or CLI code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

#: What a predictor image runs; each module of the serving side.
SERVING = [
    "flywheel_inference.server",
    "flywheel_inference.predictor",
    "flywheel_mlops.serving.served_model",
    "flywheel_mlops.serving.bundle_source",
    "flywheel_mlops.serving.alias_watcher",
    "flywheel_mlops.serving.coalescer",
    "flywheel_mlops.predictions.payload_logger",
]
#: Packages the serving side must never pull in.
FORBIDDEN = (
    "flywheel_mlops.training",
    "flywheel_mlops.simulator",
    "flywheel_mlops.cli",
    "flywheel_mlops.demo",
    "flywheel_mlops.testing",
    "flywheel_mlops.loop",
    "flywheel_mlops.monitoring",
    "flywheel_pipelines",
    "flywheel_components",
    "kfp",
    "evidently",
)

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.fixture(scope="module")
def loaded() -> list[str]:
    """Every module a fresh interpreter holds after importing the serving side."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *SERVING], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("forbidden", FORBIDDEN)
def test_importing_the_serving_side_loads_nothing_of(loaded: list[str], forbidden: str):
    found = [m for m in loaded if m == forbidden or m.startswith(f"{forbidden}.")]
    assert not found, f"the serving side imported {found}"


def test_the_probe_sees_what_the_serving_side_does_load(loaded: list[str]):
    assert {"flywheel_inference.server", "flywheel_mlops.registry", "kserve"} <= set(loaded)
