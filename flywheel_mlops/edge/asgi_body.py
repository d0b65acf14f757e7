"""Request bodies in ASGI middleware: read one under a size and time limit, then hand it on.

The predictor's request gate and the prediction service's body middleware both need this; the
limit holds for chunked uploads too, where no content-length tells the size in advance, and
for bodies sent a byte at a time, which would otherwise hold a connection (and its memory)
for as long as the client likes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Receive

from flywheel_mlops.edge.limits import BodyTimeout, BodyTooLarge

__all__ = ["BodyTimeout", "BodyTooLarge", "read_body", "replaying"]


async def read_body(receive: Receive, limit: int, timeout: float | None = None) -> bytes | None:
    """The whole body, None if the client went away.

    Raises BodyTooLarge as soon as it passes `limit` bytes, BodyTimeout if it has not all
    arrived `timeout` seconds after the call (None: no time limit).
    """
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError as error:
        raise BodyTimeout(timeout or 0.0, size) from error


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the already-read body once, then defers to the real one."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
            return message
        return await receive()

    return replay
