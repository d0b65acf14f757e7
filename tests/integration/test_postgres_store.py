"""The prediction log on a real PostgreSQL server: SQLite's answers, and outages reported."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from flywheel_mlops.predictions import (
    DatabaseUnavailable,
    FeedbackItem,
    FeedbackResult,
    PredictionRow,
    PredictionStore,
)
from tests.postgres import PostgresServer

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def traffic(store: PredictionStore) -> list[FeedbackResult]:
    """Predictions and feedback in every order and outcome; the results of each feedback call."""
    results = [store.record_feedback([FeedbackItem("r3", 40.0, row=1)])]  # before its prediction
    for i in range(5):
        store.log_predictions(
            [
                PredictionRow(
                    f"r{i}",
                    j,
                    "pickup-eta",
                    f"v000{1 + i % 2}",
                    {
                        "zone": f"Z{j:02d}",
                        "distance_km": 1.5 * i + j,
                        "hour": i,
                        "note": "caf\u00e9 \u0000 end" if i == 2 else None,
                    },
                    10.0 + i + j / 10,
                    T0 + timedelta(minutes=i),
                )
                for j in range(3)
            ]
        )
    store.log_predictions([PredictionRow("r1", 0, "pickup-eta", "v0001", {}, 99.0, T0)])
    results.append(
        store.record_feedback(
            [
                FeedbackItem("r0", 11.0),
                FeedbackItem("r1", 12.5, row=2),
                FeedbackItem("r0", 11.0),
                FeedbackItem("r1", 13.0, row=2),
                FeedbackItem("nobody", 5.0),
            ]
        )
    )
    results.append(store.record_feedback([FeedbackItem("r3", 40.0, row=1)]))
    return results


@pytest.mark.postgres
def test_the_same_traffic_gives_the_same_answers_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    answers = []
    for url in (f"sqlite:///{tmp_path / 'log.sqlite'}", postgres_url):
        store = PredictionStore(url)
        results = traffic(store)
        answers.append(
            (
                results,
                store.window(T0, T0 + timedelta(hours=1)),
                store.counts(),
                store.labelled_count(model_name="pickup-eta"),
            )
        )
        store.close()
    (sqlite_results, sqlite_frame, *sqlite_counts), (pg_results, pg_frame, *pg_counts) = answers
    assert sqlite_results == pg_results
    assert sqlite_counts == pg_counts == [{"predictions": 15, "feedback": 4, "pending": 1}, 3]
    pd.testing.assert_frame_equal(sqlite_frame, pg_frame)
    assert (
        pg_frame.loc[pg_frame["request_id"] == "r2", "note"].tolist()
        == ["caf\u00e9 \u0000 end"] * 3
    )


def test_feedback_outcomes_on_each_backend(store_url: str) -> None:
    store = PredictionStore(store_url)
    first, batch, late = traffic(store)
    assert (first.joined, first.pending) == (0, 1)
    assert (batch.joined, batch.pending, batch.duplicates, len(batch.conflicts)) == (2, 1, 1, 1)
    assert late.duplicates == 1
    frame = store.window(None, None)
    assert frame.loc[(frame["request_id"] == "r3") & (frame["row"] == 1), "actual"].item() == 40.0
    store.close()


def test_concurrent_writers_lose_no_row_and_agree_on_outcomes(store_url: str) -> None:
    store = PredictionStore(store_url)
    store.ensure_schema()
    items = [FeedbackItem(f"k{i}", float(i)) for i in range(200)]

    def post(part: int) -> FeedbackResult:  # overlapping slices: 350 items, 200 keys
        return store.record_feedback(items[part * 50 : part * 50 + 100])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(post, range(4)))
    assert sum(r.pending for r in results) == 200
    assert sum(r.duplicates for r in results) == 150
    assert sum(len(r.conflicts) for r in results) == 0
    assert store.counts()["feedback"] == 200
    store.close()


@pytest.mark.postgres
def test_a_stopped_server_raises_database_unavailable_and_a_restart_recovers(
    own_postgres: PostgresServer,
) -> None:
    store = PredictionStore(own_postgres.url("flywheel"))
    store.log_predictions([PredictionRow("a", 0, "m", "v", {"x": 1}, 1.0)])
    own_postgres.stop()
    with pytest.raises(DatabaseUnavailable, match="unreachable") as caught:
        store.log_predictions([PredictionRow("b", 0, "m", "v", {"x": 2}, 2.0)])
    assert "flywheel@127.0.0.1" in str(caught.value)
    own_postgres.start()
    store.log_predictions([PredictionRow("b", 0, "m", "v", {"x": 2}, 2.0)])
    assert store.counts()["predictions"] == 2
    store.close()


def test_a_log_from_before_event_time_gains_the_column_on_postgresql(postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    with create_engine(postgres_url).begin() as old:
        old.execute(
            text(
                "CREATE TABLE predictions (request_id VARCHAR(256) NOT NULL, row INTEGER NOT NULL,"
                " model_name VARCHAR(256) NOT NULL, model_version VARCHAR(256) NOT NULL,"
                " logged_at TIMESTAMP WITH TIME ZONE NOT NULL, features JSON NOT NULL,"
                " prediction FLOAT NOT NULL, PRIMARY KEY (request_id, row))"
            )
        )
        old.execute(
            text(
                "INSERT INTO predictions VALUES "
                "('old', 0, 'm', 'v', '2026-03-02 08:00:00+00', '{\"x\": 1}', 5.0)"
            )
        )
    store = PredictionStore(postgres_url)
    store.log_predictions([PredictionRow("new", 0, "m", "v", {"x": 2}, 6.0, T0, T0)])
    frame = store.window(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert sorted(frame["request_id"]) == ["new", "old"]
    assert frame["event_time"].tolist() == [pd.Timestamp(T0)] * 2
