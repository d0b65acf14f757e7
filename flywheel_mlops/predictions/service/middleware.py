"""ASGI middleware: a request body size limit (413) and a 500 that never echoes the exception."""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flywheel_mlops.edge.asgi_body import BodyTooLarge, read_body, replaying

logger = logging.getLogger(__name__)


async def send_json(
    send: Send,
    status: int,
    body: dict[str, object],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a whole JSON response."""
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """Read the whole body up to `max_bytes` before the app sees it; beyond that answer 413."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_reject: Callable[[Scope, int, str], None]):
        """`on_reject(scope, status, message)` is called once per refused request."""
        self.app, self.max_bytes, self.on_reject = app, max_bytes, on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(
                    scope,
                    send,
                    400,
                    "header content-length must be a "
                    f"non-negative integer, got {declared[:40].decode('latin-1')!r}",
                )
                return
            if int(declared) > self.max_bytes:
                await self._refuse(
                    scope,
                    send,
                    413,
                    f"request body must be at most {self.max_bytes} bytes, got {int(declared)}",
                )
                return
        try:
            body = await read_body(receive, self.max_bytes)
        except BodyTooLarge:
            await self._refuse(
                scope, send, 413, f"request body must be at most {self.max_bytes} bytes, got more"
            )
            return
        if body is None:
            return  # the client went away: nobody to answer
        await self.app(scope, replaying(body, receive), send)

    async def _refuse(self, scope: Scope, send: Send, status: int, message: str) -> None:
        self.on_reject(scope, status, message)
        await send_json(send, status, {"detail": message}, [(b"connection", b"close")])


class InternalErrorMiddleware:
    """Turn an unexpected exception into a plain 500; the detail goes to the log only."""

    def __init__(self, app: ASGIApp):
        """Wrap `app`."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            logger.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await send_json(
                    send, 500, {"detail": "internal error; the service log has the details"}
                )
