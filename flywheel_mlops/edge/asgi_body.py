"""Request bodies in ASGI middleware: read one under a size limit, then hand it on unchanged.

The predictor's request gate and the prediction service's body limit both need this; the
limit holds for chunked uploads too, where no content-length tells the size in advance.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Receive


class BodyTooLarge(Exception):
    """The body passed the limit; callers answer 413."""

    def __init__(self, limit: int):
        super().__init__(f"the body is over {limit} bytes, the most accepted")
        self.limit = limit


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, None if the client went away, BodyTooLarge as soon as it passes `limit`."""
    chunks: list[bytes] = []
    size = 0
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
