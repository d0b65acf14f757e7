"""A real bundle in seconds, for tests and benchmarks: the training stages run in this process.

The functions are the very stage functions the pipeline's components call, and publishing goes
through the real `register` (the same bundle, manifest and alias rule as a pipeline run); only
the KFP runner and the files between steps are left out.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.bundle import Bundle, BundleContents
from flywheel_mlops.simulator import SimulationConfig, simulate
from flywheel_mlops.spec import DatasetSpec, load_spec
from flywheel_mlops.training.clean import clean
from flywheel_mlops.training.evaluate import evaluate
from flywheel_mlops.training.featurize import featurize
from flywheel_mlops.training.ingest import ingest
from flywheel_mlops.training.register import REFERENCE_ROWS, reference_sample, register
from flywheel_mlops.training.request import TrainingRequest
from flywheel_mlops.training.split import split
from flywheel_mlops.training.train import train


def build_bundle(
    spec: DatasetSpec,
    frame: pd.DataFrame,
    families: tuple[str, ...] = ("xgboost",),
    seed: int = 0,
    reference_rows: int = REFERENCE_ROWS,
    metadata: dict[str, Any] | None = None,
    champion: Bundle | None = None,
    margin: float = TrainingRequest.margin,
) -> BundleContents:
    """Split clean records, featurize, train, evaluate on the test split (against `champion`
    with `margin`, when given), sample a reference.

    Returns everything a bundle holds, not yet written anywhere.
    """
    train_part, val_part, test_part = split(spec, frame)
    pipeline, schema = featurize(spec, train_part)
    result = train(spec, pipeline, train_part, val_part, list(families), seed=seed)
    metrics = evaluate(spec, result.model, pipeline, test_part, champion, margin)
    reference = reference_sample(spec, train_part, result.model, pipeline, rows=reference_rows)
    described = {"name": spec.name, "target": spec.target, "inputs": schema.names}
    return BundleContents(
        result.model,
        result.chosen.family,
        pipeline,
        schema,
        metrics,
        reference,
        described | (metadata or {}),
        spec,
    )


def register_frame(
    spec: DatasetSpec,
    frame: pd.DataFrame,
    registry_uri: str | Path,
    families: tuple[str, ...] = ("xgboost",),
    seed: int = 0,
) -> str:
    """Build a bundle from clean records in memory and publish it as the new champion.

    Returns:
        The version the registry gave the bundle.
    """
    registry = Registry(registry_uri)
    champion = registry.load(spec.name) if registry.alias(spec.name) else None
    # A margin of -1 lets any model beat the champion: a test's new version always serves.
    contents = build_bundle(spec, frame, families, seed, champion=champion, margin=-1.0)
    registration = register(
        registry,
        spec,
        contents.model,
        contents.family,
        contents.features,
        contents.schema,
        contents.metrics,
        contents.reference,
        {"data_uri": "in-memory frame", "run_id": f"register-frame-seed-{seed}"},
    )
    return registration.version


def train_in_process(
    registry_uri: str,
    rows: int = 3000,
    seed: int = 7,
    families: tuple[str, ...] = ("xgboost",),
    dataset: str = "ride_hailing",
) -> str:
    """Simulate clean trips, ingest and clean them, and publish a bundle as the new champion.

    Args:
        registry_uri: the registry the bundle is published into.
        rows: trips simulated.
        seed: seed of the simulator and of training.
        families: candidate model families.
        dataset: built-in dataset spec name or a spec .yaml path.

    Returns:
        The version the registry gave the bundle.
    """
    spec = load_spec(dataset)
    with tempfile.TemporaryDirectory(prefix="flywheel-quick-train-") as tmp:
        data = simulate(SimulationConfig(rows=rows, dirt=0, seed=seed), Path(tmp) / "data")
        frame, _ = ingest(spec, str(data.trips_path), str(data.weather_path))
        frame, _ = clean(spec, frame)
    return register_frame(spec, frame, registry_uri, families, seed)
