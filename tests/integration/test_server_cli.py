"""`flywheel predict` sends records from files or the command line to a live server."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flywheel_mlops.cli import app
from flywheel_mlops.registry.bundle import Bundle
from flywheel_mlops.serving.records import frame_to_records
from tests.integration.conftest import RunningServer

pytestmark = pytest.mark.integration
runner = CliRunner()


def _write(rows: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        rows.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        rows.to_parquet(path, index=False)
    else:
        path.write_text(pd.Series(frame_to_records(rows)).to_json(orient="values"))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_predict_prints_minutes_for_every_record_in_a_file(
    predictor: RunningServer,
    bundle: Bundle,
    reference_rows: pd.DataFrame,
    tmp_path: Path,
    suffix: str,
) -> None:
    rows = reference_rows.head(3)
    path = _write(rows, tmp_path / f"records{suffix}")
    result = runner.invoke(app, ["predict", str(path), "--url", predictor.url])
    assert result.exit_code == 0, result.output
    expected = bundle.predict(bundle.schema.frame_from_records(frame_to_records(rows)))
    for minutes in expected:
        assert f"{minutes:.2f}" in result.output
    assert bundle.version in result.output


def test_predict_takes_one_record_as_key_value_pairs(
    predictor: RunningServer, reference_rows: pd.DataFrame
) -> None:
    record = frame_to_records(reference_rows.head(1))[0]
    pairs = [arg for key, value in record.items() for arg in ("-r", f"{key}={value}")]
    result = runner.invoke(app, ["predict", *pairs, "--url", predictor.url])
    assert result.exit_code == 0, result.output
    assert "prediction" in result.output


def test_predict_reports_the_servers_reason_for_a_bad_record(
    predictor: RunningServer, reference_rows: pd.DataFrame
) -> None:
    record = frame_to_records(reference_rows.head(1))[0] | {"zone": "Z99"}
    pairs = [arg for key, value in record.items() for arg in ("-r", f"{key}={value}")]
    result = runner.invoke(app, ["predict", *pairs, "--url", predictor.url])
    assert result.exit_code == 2
    assert "Z99" in result.output
    assert "record 0" in result.output
