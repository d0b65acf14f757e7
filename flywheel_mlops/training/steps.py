"""File-level glue for pipeline steps: read the artifacts a stage needs, call it, write its outputs.

Each function takes plain paths and strings so the KFP components stay a few lines long and
tests (and the benchmark) can run a step without KFP.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from flywheel_mlops import models
from flywheel_mlops.errors import NotFoundError, ValidationFailed
from flywheel_mlops.features import FeaturePipeline
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.schema import InputSchema
from flywheel_mlops.spec import DatasetSpec
from flywheel_mlops.training import clean as clean_stage
from flywheel_mlops.training import evaluate as evaluate_stage
from flywheel_mlops.training import featurize as featurize_stage
from flywheel_mlops.training import ingest as ingest_stage
from flywheel_mlops.training import register as register_stage
from flywheel_mlops.training import split as split_stage
from flywheel_mlops.training import train as train_stage
from flywheel_mlops.training import validate as validate_stage


def _spec(spec_json: str) -> DatasetSpec:
    return DatasetSpec.model_validate_json(spec_json)


def _write_json(path: str, data: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, default=str))


def _read_json(path: str) -> Any:
    return json.loads(Path(path).read_text())


def ingest(
    spec_json: str,
    data_uri: str,
    side_uri: str,
    start: str,
    end: str,
    out_path: str,
    report_path: str,
) -> int:
    """Ingest step: returns the number of records written."""
    frame, report = ingest_stage.ingest(
        _spec(spec_json), data_uri, side_uri or None, start or None, end or None
    )
    frame.to_parquet(out_path, index=False)
    _write_json(report_path, report.to_dict())
    return len(frame)


def clean(spec_json: str, in_path: str, out_path: str, report_path: str) -> int:
    """Clean step: returns the number of records kept."""
    frame, report = clean_stage.clean(_spec(spec_json), pd.read_parquet(in_path))
    frame.to_parquet(out_path, index=False)
    _write_json(report_path, report.to_dict())
    return len(frame)


def validate(
    spec_json: str, in_path: str, clean_report_path: str, out_path: str, report_path: str
) -> None:
    """Validate step: passes the batch through only when every check holds.

    On failure the report is written and printed, and ValidationFailed ends the step (and with
    it the pipeline run) before anything downstream can read the batch.
    """
    cleaning = clean_stage.CleanReport.from_dict(_read_json(clean_report_path))
    try:
        report = validate_stage.validate(_spec(spec_json), pd.read_parquet(in_path), cleaning)
    except ValidationFailed as failure:
        _write_json(report_path, failure.report)
        print(str(failure), file=sys.stderr)
        raise
    _write_json(report_path, report)
    shutil.copyfile(in_path, out_path)


def featurize(spec_json: str, in_path: str, pipeline_path: str, schema_path: str) -> None:
    """Featurize step: writes the fitted feature pipeline and the input schema as JSON."""
    pipeline, schema = featurize_stage.featurize(_spec(spec_json), pd.read_parquet(in_path))
    Path(pipeline_path).write_text(pipeline.to_json())
    Path(schema_path).write_text(schema.to_json())


def split(
    spec_json: str,
    in_path: str,
    train_path: str,
    validation_path: str,
    test_path: str,
    validation: float = 0.15,
    test: float = 0.15,
) -> None:
    """Split step: three consecutive time ranges."""
    parts = split_stage.split(_spec(spec_json), pd.read_parquet(in_path), validation, test)
    for frame, path in zip(parts, (train_path, validation_path, test_path), strict=True):
        frame.to_parquet(path, index=False)


def train(
    spec_json: str,
    pipeline_path: str,
    train_path: str,
    validation_path: str,
    families: list[str],
    search_seconds: float,
    tolerance: float,
    seed: int,
    model_dir: str,
    candidates_path: str,
) -> str:
    """Train step: saves the chosen model into `model_dir`; returns its family."""
    spec = _spec(spec_json)
    train_frame, validation_frame = pd.read_parquet(train_path), pd.read_parquet(validation_path)
    result = train_stage.train(
        spec,
        FeaturePipeline.from_json(Path(pipeline_path).read_text()),
        train_frame,
        validation_frame,
        families,
        search_seconds,
        tolerance,
        seed,
    )
    folder = Path(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    models.save(result.model, result.chosen.family, folder)
    summary = {
        "chosen": result.chosen.__dict__,
        "reason": result.reason,
        "candidates": [c.__dict__ for c in result.candidates],
        "rows": {"train": len(train_frame), "validation": len(validation_frame)},
        "selected_on": _time_range(spec, validation_frame),
    }
    _write_json(candidates_path, summary)
    _write_json(str(folder / "training.json"), summary)
    return result.chosen.family


def load_model_dir(model_dir: str) -> models.Regressor:
    """The single model file a train step wrote."""
    files = [p for p in Path(model_dir).iterdir() if p.suffix in (".ubj", ".skops")]
    if len(files) != 1:
        raise NotFoundError(f"{model_dir} should hold one model file, found {files}")
    return models.load(files[0])


def evaluate(
    spec_json: str,
    registry_uri: str,
    margin: float,
    model_dir: str,
    pipeline_path: str,
    test_path: str,
    evaluation_path: str,
) -> dict[str, Any]:
    """Evaluate step: compares with the baseline and, when there is one, the champion."""
    spec = _spec(spec_json)
    registry = Registry(registry_uri)
    champion = registry.load(spec.name, Alias.CHAMPION) if registry.alias(spec.name) else None
    metrics = evaluate_stage.evaluate(
        spec,
        load_model_dir(model_dir),
        FeaturePipeline.from_json(Path(pipeline_path).read_text()),
        pd.read_parquet(test_path),
        champion,
        margin,
    )
    _write_json(evaluation_path, metrics)
    return metrics


def register(
    spec_json: str,
    registry_uri: str,
    model_dir: str,
    pipeline_path: str,
    schema_path: str,
    train_path: str,
    validated_path: str,
    evaluation_path: str,
    lineage: dict[str, Any],
    promote_alias: str = Alias.CHAMPION,
) -> register_stage.Registration:
    """Register step: publish the bundle when evaluate said it beats the rule-based baseline,
    and move `promote_alias` to it when it also beats the champion.

    A model that loses to the baseline is not published: the version is empty.
    """
    evaluation = _read_json(evaluation_path)
    if not evaluation["beats_baseline"]:
        return register_stage.Registration(
            "", "", False, "not registered: the model does not beat the rule-based baseline"
        )
    spec = _spec(spec_json)
    pipeline = FeaturePipeline.from_json(Path(pipeline_path).read_text())
    model = load_model_dir(model_dir)
    training = _read_json(str(Path(model_dir) / "training.json"))
    metrics = evaluation | {
        "validation": {"mae": training["chosen"]["val_mae"]},
        "candidates": training["candidates"],
    }
    train_frame = pd.read_parquet(train_path)
    reference = register_stage.reference_sample(spec, train_frame, model, pipeline)
    calibration = register_stage.drift_calibration(
        spec, pd.read_parquet(validated_path), reference, model, pipeline
    )
    rows = training.get("rows", {}) | {"test": int(metrics["test"]["n"])}
    lineage = lineage | {
        "params": training["chosen"]["params"],
        "selection": training["reason"],
        "rows": rows,
        "trained_on": _time_range(spec, train_frame),
        "selected_on": training.get("selected_on", [None, None]),
        "drift_calibration": calibration,
    }
    return register_stage.register(
        Registry(registry_uri),
        spec,
        model,
        training["chosen"]["family"],
        pipeline,
        InputSchema.from_json(Path(schema_path).read_text()),
        metrics,
        reference,
        lineage,
        promote_alias,
    )


def _time_range(spec: DatasetSpec, frame: pd.DataFrame) -> list[str | None]:
    """First and last event time of `frame`'s records (None without a timestamp)."""
    if not spec.timestamp or spec.timestamp not in frame or frame.empty:
        return [None, None]
    stamps = pd.to_datetime(frame[spec.timestamp])
    return [stamps.min().isoformat(), stamps.max().isoformat()]
