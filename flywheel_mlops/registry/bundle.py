"""The model bundle: an immutable folder with model, features, schema, metrics and hashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flywheel_mlops import models
from flywheel_mlops.errors import BundleIntegrityError
from flywheel_mlops.features import FeaturePipeline
from flywheel_mlops.schema import InputSchema
from flywheel_mlops.spec import DatasetSpec

#: The bundle's files, named once: the registry, the predictor and the monitor read them by these.
MANIFEST = "MANIFEST.json"
METADATA = "bundle.json"
FEATURES = "features.json"
SCHEMA = "schema.json"
METRICS = "metrics.json"
REFERENCE = "reference.parquet"
CARD = "model_card.md"
#: The resolved dataset spec the model was trained with: a retrain trains with the same one.
SPEC = "dataset_spec.json"
#: The column of the reference sample (and of the prediction log) holding the model's answer.
PREDICTION = "prediction"
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class BundleContents:
    """Everything a bundle is made of, before it is written."""

    model: models.Regressor
    family: str
    features: FeaturePipeline
    schema: InputSchema
    metrics: dict[str, Any]
    reference: pd.DataFrame
    metadata: dict[str, Any]
    spec: DatasetSpec


def write_bundle(folder: Path, contents: BundleContents) -> dict[str, str]:
    """Write a bundle into an empty folder; the manifest of sha256 sums is written last."""
    folder.mkdir(parents=True, exist_ok=True)
    model_file = models.save(contents.model, contents.family, folder)
    (folder / FEATURES).write_text(contents.features.to_json())
    (folder / SCHEMA).write_text(contents.schema.to_json())
    (folder / SPEC).write_text(contents.spec.model_dump_json(indent=2))
    (folder / METRICS).write_text(json.dumps(contents.metrics, indent=2, default=float))
    contents.reference.to_parquet(folder / REFERENCE, index=False)
    metadata = {**contents.metadata, "family": contents.family, "model_file": model_file}
    (folder / METADATA).write_text(json.dumps(metadata, indent=2, default=str))
    (folder / CARD).write_text(model_card(metadata, contents.metrics))
    files = {p.name: sha256_of(p) for p in sorted(folder.iterdir()) if p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=2))
    return files


def verify(folder: Path) -> dict[str, str]:
    """Check every file against the manifest; an extra, missing or changed file is an error."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise BundleIntegrityError(f"{folder} has no {MANIFEST}: not a complete bundle")
    try:
        files: dict[str, str] = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError) as exc:
        raise BundleIntegrityError(f"{manifest_path} is not a valid manifest: {exc}") from exc
    present = {p.name for p in folder.iterdir() if p.name != MANIFEST}
    for name in sorted(present - set(files)):
        raise BundleIntegrityError(f"{folder / name} is not listed in the manifest")
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise BundleIntegrityError(f"{path} is listed in the manifest but missing")
        if sha256_of(path) != expected:
            raise BundleIntegrityError(f"{path} does not match its sha256 in the manifest")
    return files


@dataclass(frozen=True)
class Bundle:
    """A verified, loaded bundle: what the predictor serves and the evaluator compares."""

    path: Path
    metadata: dict[str, Any]
    features: FeaturePipeline
    schema: InputSchema
    metrics: dict[str, Any]
    model: models.Regressor
    #: None only for bundles written before the spec was part of the bundle.
    spec: DatasetSpec | None = None

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", self.path.name))

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Minutes for clean records, through the very feature code training used."""
        return self.model.predict(self.features.transform(frame))

    def known_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows whose every categorical value is one this model was trained with (or missing):
        the rows it can score. The world changes by new categories too."""
        return self.features.known_rows(frame)

    def seen_window(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last event time (UTC) of the rows this model was fitted and selected on
        (its train and validation splits); None for a bundle that did not record them.

        A row inside it is not evidence about this model: the gate and the champion comparison
        leave such rows out (`unseen_rows`)."""
        fitted = self.metadata.get("trained_on") or [None, None]
        selected = self.metadata.get("selected_on") or [None, None]
        ends = [_utc(t) for t in (*fitted, *selected) if t is not None]
        if not ends:
            return None
        return min(ends), max(ends)

    def reference(self) -> pd.DataFrame:
        """The reference sample stored for drift detection."""
        return pd.read_parquet(self.path / REFERENCE)


def _utc(moment: Any) -> pd.Timestamp:
    """`moment` as a UTC timestamp; a naive one is read as UTC, as the prediction log does."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def unseen_rows(times: pd.Series, *bundles: Bundle) -> np.ndarray:
    """Which rows (by their event `times`) lie outside every bundle's seen window: rows none of
    the models was fitted or selected on, the only honest rows to compare them on.

    A bundle without a recorded window excludes nothing (bundles from before it was recorded).
    """
    stamps = pd.to_datetime(times, utc=True)
    keep = np.ones(len(stamps), dtype=bool)
    for bundle in bundles:
        window = bundle.seen_window()
        if window is not None:
            keep &= ~((stamps >= window[0]) & (stamps <= window[1])).to_numpy()
    return keep


def comparable_rows(
    frame: pd.DataFrame, time_column: str | None, *bundles: Bundle
) -> tuple[np.ndarray, int, int]:
    """The rows of `frame` every bundle can score (no category it never saw) and none was fitted
    or selected on (by the event time in `time_column`): where models are compared honestly.

    Returns the mask, the rows left out as trained on, and the rows left out (of the rest) for
    an unseen category. Without the time column, only when no bundle recorded a seen window.
    """
    if time_column is not None and time_column in frame:
        unseen = unseen_rows(frame[time_column], *bundles)
    elif any(b.seen_window() for b in bundles):
        raise ValueError(
            f"an {time_column!r} column is needed to leave out the rows "
            f"{', '.join(b.version for b in bundles)} trained on; got {list(frame.columns)}"
        )
    else:
        unseen = np.ones(len(frame), dtype=bool)
    known = np.ones(len(frame), dtype=bool)
    for bundle in bundles:
        known &= bundle.known_rows(frame)
    return unseen & known, int((~unseen).sum()), int((unseen & ~known).sum())


def load_bundle(folder: Path) -> Bundle:
    """Verify a bundle folder against its manifest, then load it. Nothing unhashed is opened."""
    folder = Path(folder)
    verify(folder)
    metadata = json.loads((folder / METADATA).read_text())
    spec = folder / SPEC
    return Bundle(
        path=folder,
        metadata=metadata,
        features=FeaturePipeline.from_json((folder / FEATURES).read_text()),
        schema=InputSchema.from_json((folder / SCHEMA).read_text()),
        metrics=json.loads((folder / METRICS).read_text()),
        model=models.load(folder / metadata["model_file"]),
        spec=DatasetSpec.model_validate_json(spec.read_text()) if spec.is_file() else None,
    )


def model_card(metadata: dict[str, Any], metrics: dict[str, Any]) -> str:
    """A short Markdown model card generated from lineage and metrics."""
    test = metrics.get("test", {})
    baseline = metrics.get("baseline", {})
    lines = [
        f"# Model card: {metadata.get('name')} {metadata.get('version', '')}".rstrip(),
        "",
        "## What it predicts",
        f"`{metadata.get('target')}` from {', '.join(metadata.get('inputs', []))}.",
        "",
        "## Model",
        f"- family: {metadata.get('family')}",
        f"- parameters: `{json.dumps(metadata.get('params', {}), sort_keys=True)}`",
        f"- trained: {metadata.get('created_at')}",
        "",
        "## Lineage",
        f"- data: {metadata.get('data_uri')}",
        f"- window asked for: {metadata.get('window')}",
        f"- trained on events from {metadata.get('trained_on', [None, None])[0]} "
        f"to {metadata.get('trained_on', [None, None])[1]}",
        f"- selected (validation) on events from {metadata.get('selected_on', [None, None])[0]} "
        f"to {metadata.get('selected_on', [None, None])[1]}; the gate and the champion "
        "comparison never score it on these",
        f"- rows: train {metadata.get('rows', {}).get('train')}, "
        f"validation {metadata.get('rows', {}).get('validation')}, "
        f"test {metadata.get('rows', {}).get('test')}",
        f"- pipeline run: {metadata.get('run_id')}",
        f"- why it was trained: {metadata.get('reason', 'not recorded')}",
        "",
        "## Metrics (test split)",
        "| | MAE | p90 abs error |",
        "|---|---|---|",
        f"| model | {test.get('mae', float('nan')):.3f} | {test.get('p90', float('nan')):.3f} |",
    ]
    if baseline:
        lines.append(
            f"| rule-based baseline | {baseline.get('mae', float('nan')):.3f} "
            f"| {baseline.get('p90', float('nan')):.3f} |"
        )
    candidates = metrics.get("candidates", [])
    if candidates:
        lines += [
            "",
            "## Families tried (validation split)",
            "| family | validation MAE | latency (ms/row) | fit (s) |",
            "|---|---|---|---|",
            *(
                f"| {c['family']} | {c['val_mae']:.3f} | {c['latency_ms']:.3f} "
                f"| {c['fit_seconds']:.1f} |"
                for c in candidates
            ),
            f"Chosen: {metadata.get('selection', metadata.get('family'))}",
        ]
    lines += [
        "",
        "## Limits",
        "Valid only inside the input schema's ranges and categories; requests outside are "
        "rejected. Drift is watched against `reference.parquet`.",
        "",
    ]
    return "\n".join(lines)
