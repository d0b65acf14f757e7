"""`PredictionStore`: the prediction log and its feedback behind one SQLAlchemy URL."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Engine, Text, and_, cast, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable

from flywheel_mlops.errors import FlywheelError, InvalidInputError
from flywheel_mlops.predictions.records import (
    FeedbackConflict,
    FeedbackItem,
    FeedbackResult,
    PredictionRow,
)
from flywheel_mlops.predictions.tables import REQUEST_ID_MAX, feedback, metadata, predictions

logger = logging.getLogger(__name__)
BASE_COLUMNS = ("request_id", "row", "model_version", "logged_at", "event_time")
_KEY_CHUNK = 500  # request ids per IN (...) lookup
_READ_CHUNK = 50_000  # rows per streamed partition in window()
_DDL_LOCK = 0x466C7977  # "Flyw": the advisory lock PostgreSQL services take to create the log


class DatabaseUnavailable(FlywheelError):
    """The prediction log's database cannot be reached right now; the caller should retry."""

    status_code = 503
    exit_code = 6


#: The clock of every window: when the event happened; rows from before the event_time column
#: existed have only their arrival time.
_EVENT_TIME = func.coalesce(predictions.c.event_time, predictions.c.logged_at)

#: A feedback row belongs to the prediction row with the same request id and row number.
_SAME_ROW = and_(
    feedback.c.request_id == predictions.c.request_id, feedback.c.row == predictions.c.row
)


def _json_dumps(value: Any) -> str:
    # orjson writes NaN/inf as null (PostgreSQL's json rejects NaN) and understands numpy types.
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str) -> Engine:
    """An engine for `url`; `postgresql://` means psycopg 3, SQLite gets WAL and a busy timeout."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        options |= {
            "pool_pre_ping": True,
            "pool_size": 5,
            "max_overflow": 5,
            "connect_args": {"connect_timeout": 5},
        }
        return create_engine(parsed, **options)
    if backend == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if memory:
            options["poolclass"] = StaticPool
        engine = create_engine(parsed, **options)
        if not memory:
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def check_key(request_id: object, row: object, where: str) -> None:
    """Raise InvalidInputError unless `request_id` is a storable id and `row` an index >= 0."""
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInputError(
            f"request_id must be a non-empty string, got {request_id!r} in {where}"
        )
    if len(request_id) > REQUEST_ID_MAX or "\x00" in request_id:
        raise InvalidInputError(
            f"request_id must be at most {REQUEST_ID_MAX} characters without "
            f"NUL, got {len(request_id)} characters in {where}"
        )
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < 2**31:
        raise InvalidInputError(f"row must be an integer in [0, 2**31), got {row!r} in {where}")


def _check_text(value: object, name: str, where: str) -> None:
    if not isinstance(value, str) or "\x00" in value or len(value) > 256:
        raise InvalidInputError(
            f"{name} must be a string of at most 256 characters without NUL, "
            f"got {str(value)[:40]!r} in {where}"
        )


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


class PredictionStore:
    """The prediction log and feedback in one database (SQLite locally, PostgreSQL on a cluster).

    Nothing touches the database until the first call; the tables are created then if missing.
    Every method raises DatabaseUnavailable when the database cannot be reached, and
    InvalidInputError for keys that cannot be stored.
    """

    def __init__(self, url: str):
        """`url`: a SQLAlchemy URL, e.g. `sqlite:///log.sqlite` or `postgresql+psycopg://...`."""
        self.url = url
        self.engine = make_engine(url)
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PredictionStore({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- plumbing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _unavailable_as_error(self) -> Iterator[None]:
        try:
            yield
        except (OperationalError, InterfaceError, PoolTimeoutError, DisconnectionError) as error:
            raise self._unavailable(error) from error
        except DBAPIError as error:
            if error.connection_invalidated:
                raise self._unavailable(error) from error
            raise

    def _unavailable(self, error: Exception) -> DatabaseUnavailable:
        cause = type(getattr(error, "orig", None) or error).__name__
        where = self.engine.url.render_as_string(hide_password=True)
        return DatabaseUnavailable(f"prediction log database {where} is unreachable ({cause})")

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self._unavailable_as_error():
            self.ensure_schema()
            with self.engine.begin() as connection:
                yield connection

    def ensure_schema(self) -> None:
        """Create the tables if they are missing (once per store)."""
        if self._schema_ready:
            return
        with self._schema_lock, self._unavailable_as_error():
            if self._schema_ready:
                return
            database = self.engine.url.database
            if self._sqlite and database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self._create_tables()
            self._schema_ready = True

    def _create_tables(self) -> None:
        """The tables, the event-time column and the indexes, each created only if missing.

        Two services that start together on one log both find it empty; a check followed by a
        plain CREATE lets the second fail between the two (seen in CI), so every statement
        carries IF NOT EXISTS and the database decides. Each runs only when the catalogue
        lacks its object: on an up-to-date log no DDL runs, so no lock is taken that would
        stall inserts. PostgreSQL can collide in the catalogue when two IF NOT EXISTS race, so
        it first takes a transaction-scoped advisory lock.
        """
        with self.engine.begin() as connection:
            if not self._sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK})
            present = set(inspect(connection).get_table_names())
            for table in metadata.sorted_tables:
                if table.name not in present:
                    connection.execute(CreateTable(table, if_not_exists=True))
            self._add_event_time_column(connection)
            found = inspect(connection)
            for table in metadata.sorted_tables:
                indexed = {index["name"] for index in found.get_indexes(table.name)}
                for index in sorted(table.indexes, key=lambda i: str(i.name)):
                    if index.name not in indexed:
                        connection.execute(CreateIndex(index, if_not_exists=True))

    def _add_event_time_column(self, connection: Connection) -> None:
        """A log created before event time gains the column (nullable) in place."""
        columns = {c["name"] for c in inspect(connection).get_columns(predictions.name)}
        if "event_time" in columns:
            return
        # The type as the table declares it, compiled for this database; SQLite has no
        # IF NOT EXISTS here, so a service that won the race shows as "duplicate column".
        kind = predictions.c.event_time.type.compile(dialect=connection.dialect)
        guard = "" if self._sqlite else "IF NOT EXISTS "
        try:
            connection.execute(text(f"ALTER TABLE predictions ADD COLUMN {guard}event_time {kind}"))
        except OperationalError as error:
            if "duplicate column" not in str(error):
                raise

    def _time(self, moment: datetime) -> datetime:
        """`moment` in UTC; naive for SQLite, which stores no zone."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
        return moment.replace(tzinfo=None) if self._sqlite else moment

    def _insert_ignoring_duplicates(self, table: Any) -> Any:
        insert: Any
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            insert = postgresql_insert
        elif self._sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert = sqlite_insert
        else:
            raise InvalidInputError(
                f"the prediction log supports sqlite and postgresql, got {self.engine.dialect.name}"
            )
        return insert(table).on_conflict_do_nothing(index_elements=["request_id", "row"])

    # -- writing --------------------------------------------------------------------------

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers (and the tables exist)."""
        with self._begin() as connection:
            connection.execute(text("SELECT 1"))

    def log_predictions(self, rows: Iterable[PredictionRow]) -> int:
        """Store predicted records in one transaction; returns how many were new.

        Idempotent on (request_id, row): a row already stored is left as it is. A request id
        names one call: rows that give their call's size (`call_rows`) are not stored when the
        id is already taken, in the log or earlier in `rows`, by a call of another size (a
        client reused the id); that is logged, never mixed into the first call's rows.
        """
        now = datetime.now(UTC)
        rows = list(rows)
        params: dict[tuple[str, int], dict[str, Any]] = {}
        for index, row in enumerate(rows):
            where = f"prediction {index}"
            check_key(row.request_id, row.row, where)
            _check_text(row.model_name, "model_name", where)
            _check_text(row.model_version, "model_version", where)
            prediction = float(row.prediction)
            if not math.isfinite(prediction):
                raise InvalidInputError(
                    f"prediction must be a finite number, got {prediction} in {where}"
                )
            params.setdefault(
                (row.request_id, row.row),
                {
                    "request_id": row.request_id,
                    "row": row.row,
                    "model_name": row.model_name,
                    "model_version": row.model_version,
                    "features": row.features,
                    "prediction": prediction,
                    "logged_at": self._time(row.logged_at or now),
                    "event_time": self._time(row.event_time or row.logged_at or now),
                },
            )
        if not params:
            return 0
        statement = self._insert_ignoring_duplicates(predictions).returning(
            predictions.c.request_id
        )
        with self._begin() as connection:
            kept = {(r.request_id, r.row) for r in self._without_reused_ids(connection, rows)}
            values = [value for key, value in params.items() if key in kept]
            if not values:
                return 0
            return len(connection.execute(statement, values).all())

    def _without_reused_ids(
        self, connection: Connection, rows: list[PredictionRow]
    ) -> list[PredictionRow]:
        """`rows` minus those of calls whose request id another call of a different size has."""
        sizes: dict[str, int] = {}
        for row in rows:
            if row.call_rows is not None and isinstance(row.request_id, str):
                sizes.setdefault(row.request_id, row.call_rows)
        if not sizes:
            return rows
        stored: dict[str, int] = {}
        for chunk in _chunks(sorted(sizes), _KEY_CHUNK):
            counted = connection.execute(
                select(predictions.c.request_id, func.count())
                .where(predictions.c.request_id.in_(chunk))
                .group_by(predictions.c.request_id)
            )
            stored.update({str(r[0]): int(r[1]) for r in counted})
        kept, refused = [], set()
        for row in rows:
            size = stored.get(row.request_id, sizes.get(row.request_id))
            if row.call_rows is None or size is None or row.call_rows == size:
                kept.append(row)
            elif (row.request_id, row.call_rows) not in refused:
                refused.add((row.request_id, row.call_rows))
                logger.warning(
                    "request id %.100r names a call of %d records; a call of %d records "
                    "reused it and was not logged",
                    row.request_id,
                    size,
                    row.call_rows,
                )
        return kept

    def record_feedback(self, items: Iterable[FeedbackItem]) -> FeedbackResult:
        """Store actual outcomes; every item ends up joined, pending, duplicate or conflict.

        Feedback whose prediction is not logged yet is stored as is (pending) and joins when the
        prediction arrives. The same value twice is a no-op; a different value for a stored key
        is a conflict: reported with both values, never overwritten.
        """
        items = list(items)
        for index, item in enumerate(items):
            check_key(item.request_id, item.row, f"feedback item {index}")
            if not math.isfinite(item.actual):
                raise InvalidInputError(
                    f"actual must be a finite number, got {item.actual} in feedback item {index}"
                )
        result = FeedbackResult()
        if not items:
            return result
        received_at = self._time(datetime.now(UTC))
        with self._begin() as connection:
            stored = self._stored_actuals(connection, {item.request_id for item in items})
            fresh: dict[tuple[str, int], FeedbackItem] = {}
            for item in items:
                key = (item.request_id, item.row)
                previous = stored.get(key, fresh[key].actual if key in fresh else None)
                if previous is None:
                    fresh[key] = item
                elif _same(previous, item.actual):
                    result.duplicates += 1
                else:
                    result.conflicts.append(
                        FeedbackConflict(item.request_id, item.row, previous, item.actual)
                    )
            if not fresh:
                return result
            statement = self._insert_ignoring_duplicates(feedback).returning(
                feedback.c.request_id, feedback.c.row
            )
            inserted = {
                (str(r[0]), int(r[1]))
                for r in connection.execute(
                    statement,
                    [
                        {
                            "request_id": i.request_id,
                            "row": i.row,
                            "actual": float(i.actual),
                            "received_at": received_at,
                        }
                        for i in fresh.values()
                    ],
                ).all()
            }
            raced = [item for key, item in fresh.items() if key not in inserted]
            if raced:  # another writer stored these keys between our read and our insert
                now_stored = self._stored_actuals(connection, {i.request_id for i in raced})
                for item in raced:
                    previous = now_stored[(item.request_id, item.row)]
                    if _same(previous, item.actual):
                        result.duplicates += 1
                    else:
                        result.conflicts.append(
                            FeedbackConflict(item.request_id, item.row, previous, item.actual)
                        )
            predicted = self._predicted_keys(connection, {k[0] for k in inserted})
            result.joined += sum(1 for key in inserted if key in predicted)
            result.pending += sum(1 for key in inserted if key not in predicted)
        return result

    def _stored_actuals(
        self, connection: Connection, request_ids: set[str]
    ) -> dict[tuple[str, int], float]:
        found: dict[tuple[str, int], float] = {}
        for chunk in _chunks(sorted(request_ids), _KEY_CHUNK):
            rows = connection.execute(
                select(feedback.c.request_id, feedback.c.row, feedback.c.actual).where(
                    feedback.c.request_id.in_(chunk)
                )
            )
            found.update({(r.request_id, r.row): r.actual for r in rows})
        return found

    def _predicted_keys(
        self, connection: Connection, request_ids: set[str]
    ) -> set[tuple[str, int]]:
        found: set[tuple[str, int]] = set()
        for chunk in _chunks(sorted(request_ids), _KEY_CHUNK):
            rows = connection.execute(
                select(predictions.c.request_id, predictions.c.row).where(
                    predictions.c.request_id.in_(chunk)
                )
            )
            found.update((r.request_id, r.row) for r in rows)
        return found

    # -- reading --------------------------------------------------------------------------

    def _window_filter(
        self, start: datetime | None, end: datetime | None, model_name: str | None
    ) -> list[Any]:
        conditions = []
        if start is not None:
            conditions.append(self._time(start) <= _EVENT_TIME)
        if end is not None:
            conditions.append(self._time(end) > _EVENT_TIME)
        if model_name is not None:
            conditions.append(predictions.c.model_name == model_name)
        return conditions

    def window(
        self,
        start: datetime | None,
        end: datetime | None,
        model_name: str | None = None,
        chunk_rows: int = _READ_CHUNK,
    ) -> pd.DataFrame:
        """One row per prediction whose event time is in [start, end), oldest event first.

        Columns: request_id, row, model_version, logged_at (arrival, UTC), event_time (when the
        event happened, UTC; the arrival time if the request carried none), one column per
        feature of the records as sent (a feature named like a base column becomes
        `features.<name>`), prediction, and actual (NaN until feedback arrives). Rows are
        streamed from the database in chunks of `chunk_rows`, so a window of a million rows
        does not hold the driver's copy and the frame at once. None for start or end leaves
        that side open.
        """
        joined = predictions.outerjoin(
            feedback,
            _SAME_ROW,
        )
        statement = (
            select(
                predictions.c.request_id,
                predictions.c.row,
                predictions.c.model_version,
                predictions.c.logged_at,
                _EVENT_TIME.label("event_time"),
                cast(predictions.c.features, Text).label("features"),
                predictions.c.prediction,
                feedback.c.actual,
            )
            .select_from(joined)
            .where(*self._window_filter(start, end, model_name))
            .order_by(_EVENT_TIME, predictions.c.request_id, predictions.c.row)
        )
        parts: list[pd.DataFrame] = []
        with self._unavailable_as_error():
            self.ensure_schema()
            with self.engine.connect() as connection:
                result = connection.execution_options(
                    stream_results=True, yield_per=chunk_rows
                ).execute(statement)
                for chunk in result.partitions():
                    parts.append(_frame(chunk))
        if not parts:
            return _frame([])
        frame = pd.concat(parts, ignore_index=True, sort=False) if len(parts) > 1 else parts[0]
        ordered = [
            *BASE_COLUMNS,
            *[c for c in frame.columns if c not in (*BASE_COLUMNS, "prediction", "actual")],
            "prediction",
            "actual",
        ]
        return frame[ordered]

    def labelled_count(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        model_name: str | None = None,
    ) -> int:
        """How many predictions in [start, end) have their actual outcome."""
        statement = (
            select(func.count())
            .select_from(
                predictions.join(
                    feedback,
                    _SAME_ROW,
                )
            )
            .where(*self._window_filter(start, end, model_name))
        )
        with self._begin() as connection:
            return int(connection.execute(statement).scalar_one())

    def counts(self) -> dict[str, int]:
        """Rows in the log: predictions, feedback, and pending feedback (no prediction yet)."""
        pending = (
            select(func.count())
            .select_from(
                feedback.outerjoin(
                    predictions,
                    _SAME_ROW,
                )
            )
            .where(predictions.c.request_id.is_(None))
        )
        with self._begin() as connection:
            return {
                "predictions": int(
                    connection.execute(select(func.count()).select_from(predictions)).scalar_one()
                ),
                "feedback": int(
                    connection.execute(select(func.count()).select_from(feedback)).scalar_one()
                ),
                "pending": int(connection.execute(pending).scalar_one()),
            }

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _frame(rows: Sequence[Any]) -> pd.DataFrame:
    """A window chunk as a frame, the features' JSON expanded to columns."""
    columns = [*BASE_COLUMNS, "features", "prediction", "actual"]
    raw = pd.DataFrame.from_records(rows, columns=columns)
    records = [orjson.loads(value) if value else {} for value in raw["features"]]
    features = (
        pd.DataFrame.from_records(records, index=raw.index)
        if records
        else pd.DataFrame(index=raw.index)
    )
    features = features.rename(
        columns={
            c: f"features.{c}"
            for c in features.columns
            if c in (*BASE_COLUMNS, "prediction", "actual")
        }
    )
    frame = pd.concat([raw[list(BASE_COLUMNS)], features, raw[["prediction", "actual"]]], axis=1)
    frame["row"] = frame["row"].astype(np.int64)
    frame["logged_at"] = pd.to_datetime(frame["logged_at"], utc=True)
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    frame["prediction"] = frame["prediction"].astype(np.float64)
    frame["actual"] = pd.to_numeric(frame["actual"], errors="coerce").astype(np.float64)
    frame["request_id"] = frame["request_id"].astype(object)
    frame["model_version"] = frame["model_version"].astype(object)
    return frame
