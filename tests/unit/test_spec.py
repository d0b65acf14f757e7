"""The dataset spec: built-ins load, mistakes are rejected with the key named."""

from pathlib import Path

import pytest

from flywheel_mlops.errors import ConfigError
from flywheel_mlops.spec import builtins, load_spec


def test_ride_hailing_spec_ships_with_flywheel():
    spec = load_spec("ride_hailing")
    assert "ride_hailing" in builtins()
    assert spec.target == "pickup_minutes"
    assert spec.feature_columns[0] == "request_time"
    assert spec.join is not None
    assert "weather" in spec.join.columns


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("name: m\ntarget: y\nnumeric: [a]\ntargett: y\n", "targett"),
        ("name: m\ntarget: y\nnumeric: [y]\n", "also listed as a feature"),
        ("name: m\ntarget: y\nnumeric: [a, a]\n", "listed twice"),
        ("name: m\nnumeric: [a]\n", "target"),
        ("name: m\ntarget: y\nnumeric: [a]\nunits: {b: {unit_column: u, factors: {}}}\n", "'b'"),
        ("name: m\ntarget: y\nnumeric: [dist]\nbaseline: 'dsit * 2'\n", "uses \\['dsit'\\]"),
        ("name: m\ntarget: y\nnumeric: [dist]\nbaseline: 'dist *'\n", "not valid arithmetic"),
        ("name: m\ntarget: y\ntimestamp: t\nnumeric: [hour]\n", "generates"),
        ("name: m\ntarget: y\nnumeric: [baseline]\n", "generates"),
    ],
)
def test_invalid_spec_is_rejected_naming_the_problem(tmp_path: Path, yaml_text: str, named: str):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=named):
        load_spec(path)


def test_unknown_spec_name_lists_the_builtins():
    with pytest.raises(ConfigError, match="ride_hailing"):
        load_spec("taxi")
