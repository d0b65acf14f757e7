"""Train and register a model in this process through the step functions, without the KFP runner.

For tests, benchmarks and demos that need a real bundle in seconds; the steps are the very
functions the pipeline components call, so the bundle is the one a pipeline run would write.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from flywheel_mlops.simulator import SimulationConfig, simulate
from flywheel_mlops.spec import DatasetSpec, load_spec
from flywheel_mlops.training import steps


def train_in_process(
    registry_uri: str,
    rows: int = 3000,
    seed: int = 7,
    families: tuple[str, ...] = ("xgboost",),
    dataset: str = "ride_hailing",
    margin: float = -1.0,
) -> str:
    """Simulate clean trips, run ingest -> ... -> register, and return the registered version.

    Args:
        registry_uri: the registry the bundle is published into.
        rows: trips simulated.
        seed: seed of the simulator and of training.
        families: candidate model families.
        dataset: built-in dataset spec name or a spec .yaml path.
        margin: promotion margin over the champion; the default (-1) always promotes, so each
            call moves the champion alias to the new version.

    Returns:
        The version the registry gave the bundle.
    """
    spec: DatasetSpec = load_spec(dataset)
    spec_json = spec.model_dump_json()
    with tempfile.TemporaryDirectory(prefix="flywheel-quick-train-") as tmp:
        work = Path(tmp)
        data = simulate(SimulationConfig(rows=rows, dirt=0, seed=seed), work / "data")
        f = {
            name: str(work / name)
            for name in (
                "ingested.parquet",
                "ingest.json",
                "clean.parquet",
                "clean.json",
                "validated.parquet",
                "validate.json",
                "features.json",
                "schema.json",
                "train.parquet",
                "validation.parquet",
                "test.parquet",
                "candidates.json",
                "evaluation.json",
            )
        }
        model_dir = str(work / "model")
        steps.ingest(
            spec_json,
            str(data.trips_path),
            str(data.weather_path),
            "",
            "",
            f["ingested.parquet"],
            f["ingest.json"],
        )
        steps.clean(spec_json, f["ingested.parquet"], f["clean.parquet"], f["clean.json"])
        steps.validate(
            spec_json,
            f["clean.parquet"],
            f["clean.json"],
            f["validated.parquet"],
            f["validate.json"],
        )
        steps.featurize(spec_json, f["validated.parquet"], f["features.json"], f["schema.json"])
        steps.split(
            spec_json,
            f["validated.parquet"],
            f["train.parquet"],
            f["validation.parquet"],
            f["test.parquet"],
        )
        steps.train(
            spec_json,
            f["features.json"],
            f["train.parquet"],
            f["validation.parquet"],
            list(families),
            0.0,
            0.02,
            seed,
            model_dir,
            f["candidates.json"],
        )
        steps.evaluate(
            spec_json,
            registry_uri,
            margin,
            model_dir,
            f["features.json"],
            f["test.parquet"],
            f["evaluation.json"],
        )
        lineage = {
            "data_uri": str(data.trips_path),
            "window": [None, None],
            "run_id": f"quick-train-seed-{seed}",
        }
        registration = steps.register(
            spec_json,
            registry_uri,
            model_dir,
            f["features.json"],
            f["schema.json"],
            f["train.parquet"],
            f["evaluation.json"],
            lineage,
        )
    return registration.version


def register_frame(
    spec: DatasetSpec,
    frame: pd.DataFrame,
    registry_uri: str | Path,
    families: tuple[str, ...] = ("xgboost",),
    seed: int = 0,
) -> str:
    """Split, featurize, train, evaluate and publish clean records already in memory, and make
    the new version champion; for tests and benchmarks whose data is not the simulator's.

    Returns:
        The version the registry gave the bundle.
    """
    from flywheel_mlops.registry import Registry
    from flywheel_mlops.registry.bundle import BundleContents, write_bundle
    from flywheel_mlops.training.evaluate import evaluate
    from flywheel_mlops.training.featurize import featurize
    from flywheel_mlops.training.register import reference_sample
    from flywheel_mlops.training.split import split
    from flywheel_mlops.training.train import train

    train_part, val_part, test_part = split(spec, frame)
    pipeline, schema = featurize(spec, train_part)
    result = train(spec, pipeline, train_part, val_part, list(families), seed=seed)
    metrics = evaluate(spec, result.model, pipeline, test_part)
    reference = reference_sample(spec, train_part, result.model, pipeline)
    metadata = {"name": spec.name, "target": spec.target, "inputs": schema.names}
    contents = BundleContents(
        result.model, result.chosen.family, pipeline, schema, metrics, reference, metadata
    )
    registry = Registry(registry_uri)
    with tempfile.TemporaryDirectory(prefix="flywheel-register-frame-") as tmp:
        write_bundle(Path(tmp) / "staged", contents)
        version = registry.publish(spec.name, Path(tmp) / "staged")
    registry.set_alias(spec.name, version)
    return version
