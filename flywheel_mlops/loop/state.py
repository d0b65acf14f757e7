"""The loop's memory in its database: policy state (compare-and-swap) and its decision history.

A monitor CronJob's pod is new every run; its scratch folder is not. The retraining policy's
state (debounce streak, past triggers) and every decision and rollout step live here, in the
prediction log's database (SQLite locally, PostgreSQL on a cluster), so a run in a fresh
container continues exactly where the last one stopped. Saving is a compare-and-swap on a
revision number: of two runs that read the same state, only the first to save acts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from flywheel_mlops.errors import FlywheelError
from flywheel_mlops.predictions.store import DatabaseUnavailable, make_engine

_metadata = MetaData()

loop_state = Table(
    "loop_state",
    _metadata,
    Column("key", String(512), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("state", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

loop_records = Table(
    "loop_records",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(256), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("document", JSON, nullable=False),
)


class StateConflict(FlywheelError):
    """Another run saved the loop's state after this one read it: this run must not act."""

    status_code = 409
    exit_code = 7


class LoopDatabase:
    """Loop state and records for every model, in the database at `url`."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._ready = False

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            if not self._ready:
                database = self.engine.url.database
                if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                _metadata.create_all(self.engine, checkfirst=True)
                self._ready = True
            with self.engine.begin() as connection:
                yield connection
        except OperationalError as error:
            where = self.engine.url.render_as_string(hide_password=True)
            raise DatabaseUnavailable(f"loop database {where} is unreachable: {error}") from error

    def load(self, key: str) -> tuple[dict[str, Any] | None, int]:
        """The state stored under `key` and its revision (None and 0 when there is none)."""
        with self._begin() as connection:
            row = connection.execute(
                select(loop_state.c.state, loop_state.c.revision).where(loop_state.c.key == key)
            ).first()
        return (None, 0) if row is None else (dict(row.state), int(row.revision))

    def save(self, key: str, state: dict[str, Any], revision: int) -> int:
        """Store `state` if the stored revision is still `revision`; returns the new revision.

        Raises StateConflict when another run saved first.
        """
        now = datetime.now(UTC)
        try:
            with self._begin() as connection:
                if revision == 0:
                    connection.execute(
                        insert(loop_state).values(key=key, revision=1, state=state, updated_at=now)
                    )
                    return 1
                done = connection.execute(
                    update(loop_state)
                    .where(and_(loop_state.c.key == key, loop_state.c.revision == revision))
                    .values(revision=revision + 1, state=state, updated_at=now)
                )
                if done.rowcount != 1:
                    raise StateConflict(
                        f"loop state {key!r} moved past revision {revision} while this run "
                        "decided: another monitor run acted on this window first"
                    )
                return revision + 1
        except IntegrityError as error:
            raise StateConflict(
                f"loop state {key!r} was created by another run while this one decided"
            ) from error
        except DBAPIError as error:  # e.g. SQLite's "database is locked" beyond its timeout
            raise StateConflict(f"loop state {key!r} could not be saved: {error}") from error

    def record(self, model: str, kind: str, at: datetime, document: dict[str, Any]) -> None:
        """Append a decision or rollout document to the model's history."""
        with self._begin() as connection:
            connection.execute(
                insert(loop_records).values(model_name=model, kind=kind, at=at, document=document)
            )

    def records(self, model: str, kind: str) -> list[dict[str, Any]]:
        """The model's documents of `kind`, oldest first."""
        with self._begin() as connection:
            rows = connection.execute(
                select(loop_records.c.document)
                .where(and_(loop_records.c.model_name == model, loop_records.c.kind == kind))
                .order_by(loop_records.c.id)
            ).all()
        return [dict(r.document) for r in rows]


class DatabasePolicyState:
    """A RetrainPolicy's state under one key of the loop database (compare-and-swap)."""

    def __init__(self, database: LoopDatabase, key: str):
        self.database, self.key = database, key

    def describe(self) -> str:
        return f"{self.key} in {self.database.engine.url.render_as_string(hide_password=True)}"

    def load(self) -> tuple[dict[str, Any] | None, int]:
        return self.database.load(self.key)

    def save(self, state: dict[str, Any], revision: int) -> int:
        return self.database.save(self.key, state, revision)
