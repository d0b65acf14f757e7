"""The prediction service's settings: Flywheel's shared settings plus the service's limits.

Built once at the entry point and passed to `create_app`. The shared fields (home, database,
model name, token) are the same FLYWHEEL_* variables every other command reads, with the same
defaults; `model_name` names events that carry no inferenceservicename header.
"""

from __future__ import annotations

from pydantic import Field

from flywheel_mlops.settings import Settings


class ServiceSettings(Settings):
    """Every field can be set as FLYWHEEL_<NAME> in the environment."""

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
