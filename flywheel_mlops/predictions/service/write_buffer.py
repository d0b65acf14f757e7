"""Prediction-log writes that survive a database outage: a bounded buffer flushed with retries.

While the database answers, writes go straight through. When it does not, the write is held in
memory (up to a number of rows) and a background task retries with exponential backoff until the
database is back; writes arriving meanwhile queue behind it so the order is kept. A full buffer
raises BufferFull: the service answers 503 with Retry-After and the sender retries. Nothing is
dropped silently.

A write the database refuses for any reason other than being unreachable (a row it cannot
encode, a value it rejects) is split until the rows at fault are found; those are quarantined
(counted, logged with the error, never retried) and every other row is written. Should the
flusher itself ever stop, `failure` says why, readiness turns 503 and new writes are refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from starlette.concurrency import run_in_threadpool
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from flywheel_mlops.errors import FlywheelError
from flywheel_mlops.predictions import (
    DatabaseUnavailable,
    FeedbackItem,
    FeedbackResult,
    PredictionRow,
    PredictionStore,
)
from flywheel_mlops.predictions.service.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

_MERGE_ROWS = 5_000  # rows written in one transaction when flushing

#: The outcome label of a conflict found when buffered feedback is written: its sender was
#: answered 202 and never learns of it, so it is counted apart for an alert to watch.
BUFFERED_CONFLICT = "conflict_after_buffering"


class BufferFull(FlywheelError):
    """The database is down and the buffer holds as many rows as it may: retry later."""

    status_code = 503
    exit_code = 6


class FlusherStopped(FlywheelError):
    """The task that writes buffered rows has stopped: nothing more can be accepted."""

    status_code = 503
    exit_code = 6


@dataclass
class _Write:
    kind: Literal["predictions", "feedback"]
    rows: list[Any]  # all PredictionRow or all FeedbackItem, as `kind` says


class WriteBuffer:
    """Store writes now if the database answers, else hold them and flush them when it returns."""

    def __init__(
        self, store: PredictionStore, metrics: ServiceMetrics, max_rows: int, max_wait: float = 5.0
    ):
        """`max_rows`: rows held at most; `max_wait`: longest pause between flush attempts (s)."""
        self.store, self.metrics = store, metrics
        self.max_rows, self.max_wait = max_rows, max_wait
        self._writes: deque[_Write] = deque()
        self._rows = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        self.quarantined = 0

    @property
    def rows(self) -> int:
        """Rows waiting for the database."""
        return self._rows

    def start(self) -> None:
        """Start the flusher on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._flush_forever(), name="flywheel-write-buffer")
            self._task.add_done_callback(self._flusher_done)

    def _flusher_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        self.failure = task.exception()
        logger.critical(
            "the write buffer's flusher stopped (%r) with %d rows held; readiness is now 503",
            self.failure,
            self._rows,
            exc_info=self.failure,
        )

    def check_running(self) -> None:
        """Raise FlusherStopped if the flusher died: buffered rows would never be written."""
        if self.failure is not None:
            raise FlusherStopped(
                f"the write buffer's flusher stopped ({type(self.failure).__name__}: "
                f"{str(self.failure)[:200]}); {self._rows} rows are held and cannot be written"
            )

    async def stop(self, timeout: float = 5.0) -> None:
        """Give the flusher `timeout` seconds to empty the buffer, then stop (logging any loss)."""
        if self._task is None:
            return
        if self._writes:
            self._wake.set()
            deadline = asyncio.get_running_loop().time() + timeout
            while self._writes and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        self._task.cancel()
        await asyncio.wait([self._task])  # a dead flusher's exception is logged already
        self._task = None
        if self._rows:
            logger.error("stopping with %d rows the database never took: they are lost", self._rows)

    async def log_predictions(self, rows: list[PredictionRow]) -> bool:
        """Store prediction rows; True if written now, False if buffered. Raises BufferFull."""
        if not rows:
            return True
        self.check_running()
        if not self._writes:
            try:
                await self._apply_isolating(_Write("predictions", rows))
                return True
            except DatabaseUnavailable as error:
                self._database_down(error)
        self._hold(_Write("predictions", rows))
        return False

    async def record_feedback(self, items: list[FeedbackItem]) -> FeedbackResult | None:
        """Store feedback; its result if written now, None if buffered. Raises BufferFull."""
        self.check_running()
        if not self._writes:
            try:
                result = await run_in_threadpool(self.store.record_feedback, items)
                self._count_feedback(result)
                return result
            except DatabaseUnavailable as error:
                self._database_down(error)
        self._hold(_Write("feedback", items))
        self.metrics.feedback.labels("buffered").inc(len(items))
        return None

    def _database_down(self, error: DatabaseUnavailable) -> None:
        self.metrics.db_errors.inc()
        logger.warning("database unavailable, buffering: %s", error)

    def _hold(self, write: _Write) -> None:
        if self._rows + len(write.rows) > self.max_rows:
            self.metrics.buffer_full.inc()
            raise BufferFull(
                f"the database is unavailable and the write buffer holds "
                f"{self._rows} of {self.max_rows} rows; {len(write.rows)} more do "
                f"not fit: retry later"
            )
        self._writes.append(write)
        self._rows += len(write.rows)
        self.metrics.buffer_rows.set(self._rows)
        self._wake.set()

    def _count_feedback(self, result: FeedbackResult, conflict: str = "conflict") -> None:
        for outcome, count in (
            ("joined", result.joined),
            ("pending", result.pending),
            ("duplicate", result.duplicates),
            (conflict, len(result.conflicts)),
        ):
            if count:
                self.metrics.feedback.labels(outcome).inc(count)

    def _next_batch(self) -> tuple[_Write, int]:
        """The oldest writes of one kind merged (up to _MERGE_ROWS rows), and how many."""
        first = self._writes[0]
        rows = list(first.rows)
        taken = 1
        while (
            taken < len(self._writes)
            and self._writes[taken].kind == first.kind
            and len(rows) + len(self._writes[taken].rows) <= _MERGE_ROWS
        ):
            rows.extend(self._writes[taken].rows)
            taken += 1
        return _Write(first.kind, rows), taken

    async def _apply(self, write: _Write) -> None:
        if write.kind == "predictions":
            new = await run_in_threadpool(self.store.log_predictions, write.rows)
            self.metrics.rows_logged.inc(new)
        else:
            result = await run_in_threadpool(self.store.record_feedback, write.rows)
            self._count_feedback(result, conflict=BUFFERED_CONFLICT)
            for conflict in result.conflicts:
                logger.warning("buffered feedback conflict (answered 202): %s", conflict.message())

    async def _apply_isolating(self, write: _Write) -> None:
        """Apply `write`; if the database refuses it, split it and quarantine the rows at fault.

        Raises DatabaseUnavailable (nothing of the failed part written: the caller retries it).
        """
        try:
            await self._apply(write)
        except DatabaseUnavailable:
            raise
        except Exception as error:  # any refusal of a row, whatever the driver raises
            if len(write.rows) == 1:
                self._quarantine(write, error)
                return
            half = len(write.rows) // 2
            for part in (write.rows[:half], write.rows[half:]):
                await self._apply_isolating(_Write(write.kind, part))

    def _quarantine(self, write: _Write, error: Exception) -> None:
        self.quarantined += 1
        self.metrics.flush_failures.inc()
        row = write.rows[0]
        logger.error(
            "quarantined a %s row the database refused (request_id %.100r, row %s): %s: %.300s",
            write.kind,
            row.request_id,
            row.row,
            type(error).__name__,
            error,
        )

    async def _apply_retrying(self, write: _Write) -> None:
        """Apply `write` until the database takes it; refused rows are quarantined."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(DatabaseUnavailable),
            wait=wait_exponential(multiplier=0.1, max=self.max_wait),
            before_sleep=lambda _state: self.metrics.db_errors.inc(),
        ):
            with attempt:
                await self._apply_isolating(write)

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            while self._writes:
                batch, taken = self._next_batch()
                await self._apply_retrying(batch)
                for _ in range(taken):
                    self._writes.popleft()
                self._rows -= len(batch.rows)
                self.metrics.buffer_rows.set(self._rows)
                if batch.kind == "predictions":
                    logger.info("flushed %d buffered prediction rows", len(batch.rows))
            self._wake.clear()
