"""The prediction service's settings: Flywheel's shared settings plus the service's limits.

Built once at the entry point and passed to `create_app`. The shared fields (home, database,
model name, token) are the same FLYWHEEL_* variables every other command reads, with the same
defaults; `model_name` names events that carry no inferenceservicename header.
"""

from __future__ import annotations

from pydantic import Field

from flywheel_mlops.edge.limits import EdgeLimits
from flywheel_mlops.settings import Settings


class ServiceSettings(Settings):
    """Every field can be set as FLYWHEEL_<NAME> in the environment."""

    max_body_bytes: int = Field(
        default=EdgeLimits.max_body_bytes,
        ge=1024,
        description="Largest request body; larger gets 413.",
    )
    max_json_depth: int = Field(
        default=EdgeLimits.max_json_depth,
        ge=8,
        le=1000,
        description="Deepest nesting of arrays and objects in a JSON body; deeper gets 400.",
    )
    body_timeout: float = Field(
        default=EdgeLimits.body_timeout,
        gt=0,
        description="Seconds a request body may take to arrive after its headers; then 408.",
    )
    header_timeout: float = Field(
        default=EdgeLimits.header_timeout,
        gt=0,
        description="Seconds a request's headers may take to arrive; then the connection is "
        "closed.",
    )
    max_header_bytes: int = Field(
        default=EdgeLimits.max_header_bytes,
        ge=1024,
        description="Total size of a request's headers; larger gets 431.",
    )
    keep_alive_timeout: float = Field(
        default=EdgeLimits.keep_alive_timeout,
        gt=0,
        description="Seconds an idle keep-alive connection is held open.",
    )
    max_parallel_parses: int = Field(
        default=1,
        ge=1,
        description="Large deliveries parsed at once off the event loop; a parsed body takes "
        "about 25 times its size in memory, so this bounds the service's peak.",
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
    pairing_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="JSON bytes of the halves held while their pair is due; past it the oldest "
        "are evicted (each is logged and counted).",
    )
    pairing_max_age: float = Field(
        default=600.0, gt=0, description="Seconds a half waits for its pair before it is evicted."
    )

    def edge_limits(self) -> EdgeLimits:
        """The edge policy these settings ask for."""
        return EdgeLimits(
            max_body_bytes=self.max_body_bytes,
            max_json_depth=self.max_json_depth,
            body_timeout=self.body_timeout,
            header_timeout=self.header_timeout,
            max_header_bytes=self.max_header_bytes,
            keep_alive_timeout=self.keep_alive_timeout,
        )
