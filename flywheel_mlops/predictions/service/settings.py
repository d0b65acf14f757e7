"""The monitoring service's settings: built once at the entry point, passed to `create_app`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Every field can be set as FLYWHEEL_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix="FLYWHEEL_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///flywheel-data/predictions.sqlite",
        description="SQLAlchemy URL of the prediction log (postgresql+psycopg://... on a cluster).",
    )
    api_token: str = Field(
        default="", description="Bearer token required on /v1/*; empty: no authentication."
    )
    model_name: str = Field(
        default="pickup-eta",
        description="Model name for events that carry none (no inferenceservicename header).",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest request body; larger gets 413."
    )
    max_feedback_items: int = Field(
        default=10_000, ge=1, description="Most items in one feedback batch."
    )
    buffer_max_rows: int = Field(
        default=100_000,
        ge=1,
        description="Rows held in memory while the database is down; past it writes get 503.",
    )
    retry_after_seconds: int = Field(default=5, ge=1, description="Retry-After sent with a 503.")
    retry_max_wait: float = Field(
        default=5.0, gt=0, description="Longest pause (s) between attempts to flush the buffer."
    )
    pairing_max_waiting: int = Field(
        default=10_000, ge=1, description="Request/response halves held while their pair is due."
    )
    pairing_max_age: float = Field(
        default=600.0, gt=0, description="Seconds a half waits for its pair before it is evicted."
    )
