"""uvicorn's h11 protocol with a deadline on receiving a request head.

uvicorn times out only idle keep-alive connections: a client that trickles its request line and
headers holds a socket for as long as it likes. This protocol closes a connection whose request
head is not complete within `header_timeout` seconds of the connection opening or, on a
keep-alive connection, of the next head's first byte (an idle keep-alive connection stays
under uvicorn's own `timeout_keep_alive`).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineH11Protocol(H11Protocol):
    """H11Protocol that closes a connection whose request head takes too long to arrive."""

    header_timeout: float = 10.0
    """Seconds a request head may take to arrive; set by `header_deadline_protocol`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        if self._head_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm_head_deadline()  # the first byte of a keep-alive connection's next head
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in: the body has its own timer
            self._cancel_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info(
                "closed a connection whose request head took over %g s", self.header_timeout
            )
            self.transport.close()


@functools.cache
def header_deadline_protocol(header_timeout: float) -> type[HeaderDeadlineH11Protocol]:
    """A protocol class for uvicorn's `http=`: request heads must arrive in `header_timeout` s.

    One class per timeout, so the same settings give the same uvicorn options."""
    return type(
        "HeaderDeadlineH11Protocol",
        (HeaderDeadlineH11Protocol,),
        {"header_timeout": header_timeout},
    )
