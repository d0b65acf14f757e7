"""The prediction log on SQLite: idempotent logging, every feedback outcome, late joins, windows."""

from __future__ import annotations

import contextlib
import math
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import event

from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.predictions import FeedbackItem, PredictionRow, PredictionStore

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def rows(
    request_id: str,
    count: int,
    at: datetime = T0,
    model: str = "pickup-eta",
    version: str = "v0001",
) -> list[PredictionRow]:
    """`count` predicted records of one request."""
    return [
        PredictionRow(
            request_id,
            i,
            model,
            version,
            {"zone": f"Z{i:02d}", "distance_km": 1.0 + i, "incidents": i},
            10.0 + i,
            at,
        )
        for i in range(count)
    ]


@pytest.fixture
def store(tmp_path: Path) -> PredictionStore:
    """An empty log in a SQLite file under tmp_path."""
    return PredictionStore(f"sqlite:///{tmp_path / 'log' / 'predictions.sqlite'}")


def test_logging_the_same_rows_twice_stores_them_once(store: PredictionStore) -> None:
    assert store.log_predictions(rows("r1", 3)) == 3
    assert store.log_predictions(rows("r1", 3) + rows("r2", 2)) == 2
    assert store.counts() == {"predictions": 5, "feedback": 0, "pending": 0}


@pytest.mark.parametrize(
    ("items", "joined", "pending", "duplicates", "conflicts"),
    [
        ([FeedbackItem("r1", 12.0)], 1, 0, 0, 0),
        ([FeedbackItem("unknown", 12.0)], 0, 1, 0, 0),
        ([FeedbackItem("r1", 12.0), FeedbackItem("r1", 12.0)], 1, 0, 1, 0),
        ([FeedbackItem("r1", 12.0), FeedbackItem("r1", 13.0)], 1, 0, 0, 1),
        (
            [
                FeedbackItem("r1", 12.0, row=0),
                FeedbackItem("r1", 9.0, row=1),
                FeedbackItem("r1", 9.0, row=7),
            ],
            2,
            1,
            0,
            0,
        ),
    ],
)
def test_every_feedback_item_lands_in_exactly_one_outcome(
    store: PredictionStore,
    items: list[FeedbackItem],
    joined: int,
    pending: int,
    duplicates: int,
    conflicts: int,
) -> None:
    store.log_predictions(rows("r1", 2))
    result = store.record_feedback(items)
    assert (result.joined, result.pending, result.duplicates, len(result.conflicts)) == (
        joined,
        pending,
        duplicates,
        conflicts,
    )
    assert result.total == len(items)


def test_a_conflict_names_both_values_and_keeps_the_stored_one(store: PredictionStore) -> None:
    store.log_predictions(rows("r1", 1))
    store.record_feedback([FeedbackItem("r1", 12.0)])
    result = store.record_feedback([FeedbackItem("r1", 20.0)])
    assert [(c.stored, c.received) for c in result.conflicts] == [(12.0, 20.0)]
    assert "12.0" in result.conflicts[0].message()
    assert "20.0" in result.conflicts[0].message()
    assert store.window(None, None)["actual"].tolist() == [12.0]


def test_feedback_before_its_prediction_joins_when_the_prediction_arrives(
    store: PredictionStore,
) -> None:
    assert store.record_feedback([FeedbackItem("late", 31.5, row=1)]).pending == 1
    assert store.counts()["pending"] == 1
    store.log_predictions(rows("late", 2))
    frame = store.window(None, None)
    assert frame["actual"].isna().tolist() == [True, False]
    assert frame.loc[1, "actual"] == 31.5
    assert store.counts() == {"predictions": 2, "feedback": 1, "pending": 0}
    assert store.labelled_count() == 1


def test_window_has_the_documented_columns_with_features_expanded(store: PredictionStore) -> None:
    store.log_predictions(rows("r1", 2))
    store.record_feedback([FeedbackItem("r1", 12.0)])
    frame = store.window(T0 - timedelta(minutes=1), T0 + timedelta(minutes=1))
    assert list(frame.columns) == [
        "request_id",
        "row",
        "model_version",
        "logged_at",
        "event_time",
        "zone",
        "distance_km",
        "incidents",
        "prediction",
        "actual",
    ]
    assert frame["logged_at"].tolist() == [pd.Timestamp(T0)] * 2
    assert frame["zone"].tolist() == ["Z00", "Z01"]
    assert frame["prediction"].tolist() == [10.0, 11.0]
    assert frame["actual"].iloc[0] == 12.0
    assert math.isnan(frame["actual"].iloc[1])


@pytest.mark.parametrize(
    ("start", "end", "model", "expected"),
    [
        (T0, T0 + timedelta(hours=1), None, ["a"]),
        (T0, T0 + timedelta(hours=2), None, ["a", "b"]),
        (T0 + timedelta(hours=1), None, None, ["b", "c"]),
        (None, None, "other", ["c"]),
        (T0.astimezone(timezone(timedelta(hours=2))), T0 + timedelta(minutes=30), None, ["a"]),
        (T0 + timedelta(days=9), None, None, []),
    ],
)
def test_window_selects_by_half_open_time_range_and_model(
    store: PredictionStore,
    start: datetime | None,
    end: datetime | None,
    model: str | None,
    expected: list[str],
) -> None:
    store.log_predictions(rows("a", 1, T0))
    store.log_predictions(rows("b", 1, T0 + timedelta(hours=1)))
    store.log_predictions(rows("c", 1, T0 + timedelta(hours=2), model="other"))
    frame = store.window(start, end, model)
    assert frame["request_id"].tolist() == expected
    assert {"request_id", "prediction", "actual"} <= set(frame.columns)


def test_window_streams_many_rows_into_one_frame(store: PredictionStore) -> None:
    batch = [
        PredictionRow(
            f"r{i // 10}",
            i % 10,
            "pickup-eta",
            "v0001",
            {"f1": float(i), "f2": i % 7},
            float(i),
            T0 + timedelta(seconds=i),
        )
        for i in range(20_000)
    ]
    store.log_predictions(batch)
    frame = store.window(None, None, chunk_rows=3_000)
    assert len(frame) == 20_000
    assert frame["f1"].sum() == sum(range(20_000))
    assert frame["logged_at"].is_monotonic_increasing


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (FeedbackItem("", 1.0), "request_id must be a non-empty string"),
        (FeedbackItem("a\x00b", 1.0), "without NUL"),
        (FeedbackItem("x" * 300, 1.0), "at most 256"),
        (FeedbackItem("a", 1.0, row=-1), "row must be an integer"),
        (FeedbackItem("a", float("nan")), "actual must be a finite number"),
    ],
)
def test_unstorable_feedback_is_refused_with_the_field_named(
    store: PredictionStore, item: FeedbackItem, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        store.record_feedback([item])
    assert store.counts()["feedback"] == 0


def test_non_finite_predictions_are_refused(store: PredictionStore) -> None:
    bad = PredictionRow("r", 0, "m", "v", {}, float("inf"))
    with pytest.raises(InvalidInputError, match="prediction must be a finite number"):
        store.log_predictions([bad])


def test_missing_feature_values_are_stored_as_null(store: PredictionStore) -> None:
    store.log_predictions([PredictionRow("r", 0, "m", "v", {"x": float("nan"), "y": None}, 1.0)])
    frame = store.window(None, None)
    assert frame["x"].isna().all()
    assert frame["y"].isna().all()


def test_windows_select_by_event_time_not_by_arrival(store: PredictionStore) -> None:
    """A replay logs a week of history in seconds: each day's window holds that day's events."""
    arrived = datetime.now(UTC)
    store.log_predictions(
        PredictionRow(f"r{day}", 0, "m", "v", {"x": day}, 1.0, arrived, T0 + timedelta(days=day))
        for day in range(7)
    )
    days = [store.window(T0 + timedelta(days=d), T0 + timedelta(days=d + 1)) for d in range(7)]
    assert [frame["x"].tolist() for frame in days] == [[d] for d in range(7)]
    assert days[3]["event_time"].tolist() == [pd.Timestamp(T0 + timedelta(days=3))]
    assert days[3]["logged_at"].tolist() == [pd.Timestamp(arrived).floor("us")]
    assert store.labelled_count(T0, T0 + timedelta(days=1)) == 0


def test_a_row_without_an_event_time_is_windowed_by_its_arrival(store: PredictionStore) -> None:
    store.log_predictions(rows("r1", 1))  # event_time None: the arrival time stands in
    frame = store.window(T0, T0 + timedelta(seconds=1))
    assert frame["event_time"].tolist() == [pd.Timestamp(T0)]


def test_a_log_from_before_event_time_gains_the_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE predictions (request_id VARCHAR(256) NOT NULL, row INTEGER NOT NULL, "
            "model_name VARCHAR(256) NOT NULL, model_version VARCHAR(256) NOT NULL, "
            "logged_at DATETIME NOT NULL, features JSON NOT NULL, prediction FLOAT NOT NULL, "
            "PRIMARY KEY (request_id, row))"
        )
        old.execute(
            "INSERT INTO predictions VALUES ('old', 0, 'm', 'v', '2026-03-02 08:00:00', "
            "'{\"x\": 1}', 5.0)"
        )
    store = PredictionStore(f"sqlite:///{path}")
    store.log_predictions([PredictionRow("new", 0, "m", "v", {"x": 2}, 6.0, T0, T0)])
    frame = store.window(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert sorted(frame["request_id"]) == ["new", "old"]
    assert frame["event_time"].tolist() == [pd.Timestamp(T0)] * 2


def test_a_table_another_service_creates_meanwhile_is_not_an_outage(tmp_path: Path) -> None:
    """Two services starting on one log: just before each CREATE of ours runs, the other service
    runs the same statement (it won the race for that table or index); none of ours may fail."""
    path = tmp_path / "shared.sqlite"
    store = PredictionStore(f"sqlite:///{path}")
    raced: list[str] = []

    def the_other_service_wins(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().startswith("CREATE"):
            raced.append(statement)
            with contextlib.closing(sqlite3.connect(path)) as other:
                other.execute(statement)
                other.commit()

    event.listen(store.engine, "before_cursor_execute", the_other_service_wins)
    try:
        store.log_predictions(rows("r", 2))
    finally:
        event.remove(store.engine, "before_cursor_execute", the_other_service_wins)
    assert store.window(T0 - timedelta(hours=1), T0 + timedelta(hours=1))["row"].tolist() == [0, 1]
    assert len(raced) >= 5, "the race was not staged for every table and index"


def test_opening_an_up_to_date_log_runs_no_ddl(tmp_path: Path) -> None:
    """DDL takes locks that stall inserts on PostgreSQL: a service starting on a log that has
    everything must not run any."""
    url = f"sqlite:///{tmp_path / 'log.sqlite'}"
    PredictionStore(url).log_predictions(rows("r", 1))
    store = PredictionStore(url)
    statements: list[str] = []
    event.listen(
        store.engine,
        "before_cursor_execute",
        lambda _c, _k, statement, *_: statements.append(statement.lstrip().split()[0].upper()),
    )
    store.log_predictions(rows("s", 1))
    assert not {"CREATE", "ALTER"} & set(statements), statements
