"""The prediction log's two tables (SQLAlchemy Core): the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

from flywheel_mlops.edge.request_ids import REQUEST_ID_MAX

metadata = MetaData()

# JSON, not JSONB: PostgreSQL's json keeps the record exactly as sent (and accepts \u0000).
predictions = Table(
    "predictions",
    metadata,
    Column("request_id", String(REQUEST_ID_MAX), nullable=False),
    Column("row", Integer, nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("model_version", String(256), nullable=False),
    Column("logged_at", DateTime(timezone=True), nullable=False),
    # When the predicted event happened (the spec's timestamp column), the clock every window,
    # policy and rollout reads; the arrival time (logged_at) when the request carried none.
    # Nullable only for rows written before the column existed: readers coalesce to logged_at.
    Column("event_time", DateTime(timezone=True), nullable=True),
    Column("features", JSON, nullable=False),
    Column("prediction", Float, nullable=False),
    PrimaryKeyConstraint("request_id", "row", name="predictions_pk"),
    Index("predictions_logged_at", "logged_at"),
    Index("predictions_model_logged_at", "model_name", "logged_at"),
    Index("predictions_model_event_time", "model_name", "event_time"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("request_id", String(REQUEST_ID_MAX), nullable=False),
    Column("row", Integer, nullable=False, default=0),
    Column("actual", Float, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("request_id", "row", name="feedback_pk"),
)
