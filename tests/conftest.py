"""Shared fixtures: simulated ride-hailing data, a trained champion, the bike-sharing table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flywheel_mlops.simulator import SimulationConfig, SimulationResult, simulate
from flywheel_mlops.spec import DatasetSpec, load_spec

#: Where scripts/fetch-bikesharing.sh (run by scripts/test-services.sh) puts the table.
BIKESHARING_CSV = Path(__file__).parents[1] / ".tools" / "data" / "hourly_bikesharing.csv"

# Fixture modules shared by several test files, registered once instead of imported by name.
pytest_plugins = ["tests.unit.rollout_fixtures", "tests.integration.pg_fixtures"]


@pytest.fixture(scope="session")
def spec() -> DatasetSpec:
    """The built-in ride-hailing spec."""
    return load_spec("ride_hailing")


@pytest.fixture(scope="session")
def raw_data(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """6,000 dirty trips over two weeks and their weather feed."""
    return simulate(SimulationConfig(rows=6000, days=14, seed=11), tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="session")
def clean_frame(spec: DatasetSpec, raw_data: SimulationResult) -> pd.DataFrame:
    """The raw data through ingest and clean."""
    from flywheel_mlops.training.clean import clean
    from flywheel_mlops.training.ingest import ingest

    frame, _ = ingest(spec, str(raw_data.trips_path), str(raw_data.weather_path))
    cleaned, _ = clean(spec, frame)
    return cleaned


@pytest.fixture
def tmp_registry(tmp_path: Path) -> str:
    """An empty registry folder."""
    return str(tmp_path / "registry")


@pytest.fixture(scope="session")
def bundle_contents(spec: DatasetSpec, clean_frame: pd.DataFrame):
    """A small XGBoost model with everything a bundle holds, built without the pipeline."""
    from flywheel_mlops.testing.quick_train import build_bundle

    metadata = {"created_at": "2026-03-20T00:00:00+00:00", "data_uri": "test"}
    return build_bundle(spec, clean_frame, reference_rows=500, metadata=metadata)


@pytest.fixture(scope="session")
def bikesharing_csv() -> Path:
    """The hourly bike-sharing table (78,421 rows: date, ts, count, tmin, tmax, pn)."""
    if not BIKESHARING_CSV.is_file():
        pytest.skip(
            f"{BIKESHARING_CSV} is missing: run `bash scripts/fetch-bikesharing.sh` "
            "(`make test` runs it)"
        )
    return BIKESHARING_CSV
