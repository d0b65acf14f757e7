"""`flywheel prediction-service` and its deprecated 0.1 name `monitoring-service`: one command.

uvicorn.run is replaced by a recorder, so nothing listens; the app is built for real on a SQLite
prediction log under tmp_path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
import uvicorn
from typer.testing import CliRunner

from flywheel_mlops.cli import app

NEW, OLD = "prediction-service", "monitoring-service"


@pytest.fixture
def served(monkeypatch) -> list[dict[str, Any]]:
    """What each invocation handed to uvicorn.run (the app's type and the server options)."""
    calls: list[dict[str, Any]] = []

    def record(application: Any, **options: Any) -> None:
        calls.append({"app": type(application).__name__, **options})

    monkeypatch.setattr(uvicorn, "run", record)
    return calls


def _options(command: str) -> list[tuple[str, ...]]:
    params = typer.main.get_group(app).commands[command].params
    return [tuple(p.opts) for p in params]


def test_deprecated_name_should_take_the_same_options():
    assert _options(OLD) == _options(NEW)
    help_text = CliRunner().invoke(app, [OLD, "--help"], terminal_width=200).stdout
    for opts in _options(NEW):
        assert all(opt in help_text for opt in opts), opts


def test_deprecated_name_should_be_hidden_from_the_command_list():
    listing = CliRunner().invoke(app, ["--help"], terminal_width=200).stdout
    assert NEW in listing
    assert OLD not in listing


def test_deprecated_name_should_warn_on_stderr_then_serve_the_same(tmp_path: Path, served):
    args = ["--port", "18123", "--database-url", f"sqlite:///{tmp_path / 'predictions.sqlite'}"]
    runner = CliRunner()
    new = runner.invoke(app, [NEW, *args])
    old = runner.invoke(app, [OLD, *args])
    assert new.exit_code == old.exit_code == 0, old.output
    assert new.stderr == ""
    assert old.stderr.splitlines() == [
        "warning: `flywheel monitoring-service` is deprecated; "
        "use `flywheel prediction-service` (same options)."
    ]
    assert old.stdout == new.stdout
    assert served[0] == served[1]
    assert served[0]["port"] == 18123
