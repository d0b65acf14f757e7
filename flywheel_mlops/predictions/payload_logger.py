"""`PayloadLogger`: the local twin of KServe's logger agent, feeding the prediction service.

A predictor calls `log(request_id, request_body, response_body)` after answering; the call only
puts the pair on a bounded queue, so serving never waits on the prediction service. A background
task sends batches of CloudEvents (`application/cloudevents-batch+json`, the same events KServe's
agent sends one by one) and retries on 503 / 429 / connection errors, honouring Retry-After.
What cannot be queued or delivered is counted and logged, never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from flywheel_mlops.predictions.cloudevents import BATCH, REQUEST_TYPE, RESPONSE_TYPE

logger = logging.getLogger(__name__)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class LoggerStats:
    """What happened to the calls handed to `log`."""

    queued: int = 0
    sent: int = 0
    dropped_queue_full: int = 0
    failed: int = 0  # gave up after retries, or the service refused the batch (4xx)


class PayloadLogger:
    """Send (request, response) pairs to the prediction service's /v1/events, in the background.

    Use inside a running event loop: `async with PayloadLogger(url) as payloads:` then
    `payloads.log(...)` from the same loop.
    """

    def __init__(
        self,
        url: str,
        *,
        source: str = "flywheel-predictor",
        service: str = "",
        token: str = "",
        max_queue: int = 10_000,
        batch_size: int = 100,
        timeout: float = 5.0,
        attempts: int = 8,
        max_wait: float = 10.0,
    ):
        """`url`: the prediction service base URL (or its /v1/events URL).

        `source` / `service`: the events' `source` and `inferenceservicename`; `token`: bearer
        token if the service wants one; `max_queue`: calls held at most before `log` refuses;
        `batch_size`: calls per POST; `attempts` / `max_wait`: retries per batch and the longest
        pause between them (seconds).
        """
        self.url = url if url.rstrip("/").endswith("/v1/events") else url.rstrip("/") + "/v1/events"
        self.source, self.service, self.token = source, service, token
        self.max_queue, self.batch_size = max_queue, batch_size
        self.timeout, self.attempts, self.max_wait = timeout, attempts, max_wait
        self.stats = LoggerStats()
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], dict[str, Any]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> PayloadLogger:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the sender task on the running loop."""
        if self._task is not None:
            return
        self._queue = asyncio.Queue(self.max_queue)
        headers = {"content-type": BATCH}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        self._client = httpx.AsyncClient(timeout=self.timeout, headers=headers)
        self._task = asyncio.create_task(self._run(), name="flywheel-payload-logger")

    def log(
        self, request_id: str, request_body: dict[str, Any], response_body: dict[str, Any]
    ) -> bool:
        """Queue one call without waiting; False (counted and logged) when the queue is full."""
        if self._queue is None:
            raise RuntimeError("PayloadLogger.log called before start()")
        try:
            self._queue.put_nowait((request_id, request_body, response_body))
        except asyncio.QueueFull:
            self.stats.dropped_queue_full += 1
            logger.warning(
                "payload logger queue full (%d calls): request %s not logged",
                self.max_queue,
                request_id,
            )
            return False
        self.stats.queued += 1
        return True

    async def stop(self, timeout: float = 10.0) -> None:
        """Send what is queued (waiting at most `timeout` seconds), then stop."""
        if self._task is None or self._queue is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        left = self._queue.qsize()
        if left:
            self.stats.failed += left
            logger.error("payload logger stopped with %d calls not sent", left)
        if self._client is not None:
            await self._client.aclose()
        self._task = self._queue = self._client = None

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._send(batch)
                self.stats.sent += len(batch)
            except Exception as error:  # counted and logged; the sender must keep running
                self.stats.failed += len(batch)
                logger.error("payload logger gave up on %d calls: %s", len(batch), error)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _events(self, batch: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> bytes:
        events = []
        for request_id, request_body, response_body in batch:
            for kind, body in ((REQUEST_TYPE, request_body), (RESPONSE_TYPE, response_body)):
                event = {
                    "specversion": "1.0",
                    "id": request_id,
                    "type": kind,
                    "source": self.source,
                    "datacontenttype": "application/json",
                    "data": body,
                }
                if self.service:
                    event["inferenceservicename"] = self.service
                events.append(event)
        return orjson.dumps(events, option=orjson.OPT_SERIALIZE_NUMPY)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        backoff = wait_exponential(multiplier=0.2, max=self.max_wait)(state)
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return min(max(error.retry_after, backoff), self.max_wait)
        return backoff

    async def _send(self, batch: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        assert self._client is not None
        body = self._events(batch)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(_Retryable),
            wait=self._wait,
            stop=stop_after_attempt(self.attempts),
            reraise=True,
        ):
            with attempt:
                try:
                    response = await self._client.post(self.url, content=body)
                except httpx.TransportError as error:
                    raise _Retryable(f"{type(error).__name__} posting to {self.url}") from error
                if response.status_code in (429, 502, 503, 504):
                    retry_after = response.headers.get("retry-after", "")
                    raise _Retryable(
                        f"{self.url} answered {response.status_code}",
                        float(retry_after) if retry_after.isdigit() else None,
                    )
                if response.status_code >= 400:
                    raise RuntimeError(
                        f"{self.url} refused the batch with "
                        f"{response.status_code}: {response.text[:300]}"
                    )
