"""Settings for the command line and services: built once at an entry point, passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Flywheel keeps things. Every field can be set as FLYWHEEL_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix="FLYWHEEL_", extra="forbid")

    home: Path = Field(
        default=Path("flywheel-data"),
        description="Local working folder: simulated data, pipeline runs, registry, reports.",
    )
    registry_uri: str = Field(
        default="",
        description="Model registry; a folder or s3:// / gs:// URI. Default: <home>/registry.",
    )
    database_url: str = Field(
        default="", description="SQLAlchemy URL of the prediction log. Default: SQLite in <home>."
    )
    model_name: str = Field(default="pickup-eta", description="Model served and monitored.")
    api_token: str = Field(default="", description="Bearer token the servers require; empty: none.")

    @property
    def registry(self) -> str:
        """The registry URI, defaulting to a folder under home."""
        return self.registry_uri or str(self.home / "registry")

    @property
    def database(self) -> str:
        """The prediction log URL, defaulting to SQLite under home."""
        return self.database_url or f"sqlite:///{(self.home / 'predictions.sqlite').resolve()}"

    @property
    def runs(self) -> Path:
        """Where the KFP local runner writes pipeline runs."""
        return self.home / "runs"

    @property
    def data(self) -> Path:
        """Where simulated data goes."""
        return self.home / "data"
