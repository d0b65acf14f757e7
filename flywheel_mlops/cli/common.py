"""What every command shares: the settings, the console, and how errors end a command."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from flywheel_mlops.errors import FlywheelError
from flywheel_mlops.settings import Settings

if TYPE_CHECKING:
    from flywheel_mlops.rollout import RolloutDecision

console = Console()
err_console = Console(stderr=True)


#: The model a command works on; every command falls back to the same setting.
ModelName = Annotated[
    str, typer.Option("--name", help="Model name. Default: FLYWHEEL_MODEL_NAME (pickup-eta).")
]


NamespaceOption = Annotated[
    str,
    typer.Option(
        help="Namespace of the InferenceService (--router kserve).", envvar="FLYWHEEL_NAMESPACE"
    ),
]
InferenceServiceOption = Annotated[
    str,
    typer.Option(
        help="InferenceService patched by --router kserve. Default: the model name.",
        envvar="FLYWHEEL_INFERENCESERVICE",
    ),
]
CanaryPercentOption = Annotated[
    int, typer.Option(help="Share of live requests a canary serves.", min=1, max=99)
]


def settings() -> Settings:
    """Settings from the environment (FLYWHEEL_*), built at the entry point."""
    return Settings()


def model_name(name: str) -> str:
    """The --name given, else the FLYWHEEL_MODEL_NAME setting."""
    return name or settings().model_name


@contextlib.contextmanager
def failures_exit() -> Iterator[None]:
    """Turn Flywheel's own errors into a red message and the error type's exit code."""
    try:
        yield
    except FlywheelError as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(error.exit_code) from error


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 option value as an aware datetime (UTC when it names no zone)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{option} must be an ISO 8601 time, got {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def print_rollout(decision: RolloutDecision) -> None:
    """One line: what the rollout step did, to which versions, and why."""
    console.print(
        f"rollout [bold]{decision.action}[/bold] candidate={decision.candidate or '-'} "
        f"champion={decision.champion}: {decision.reason}"
    )
