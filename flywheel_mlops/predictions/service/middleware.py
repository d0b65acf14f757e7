"""ASGI middleware: the edge policy (headers, body size, time, depth); a 500 hiding the cause."""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flywheel_mlops.edge.asgi_body import read_body, replaying
from flywheel_mlops.edge.auth import bearer_problem
from flywheel_mlops.edge.json_depth import check_json_depth
from flywheel_mlops.edge.limits import BodyTooLarge, EdgeLimits, EdgeRefusal, check_headers

logger = logging.getLogger(__name__)
_THREAD_BYTES = 256 * 1024


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


class EdgeMiddleware:
    """The edge policy (`EdgeLimits`) before the app sees a request.

    Headers over the limit get 431; a body over the size limit 413, one that does not arrive
    in time 408, one that nests too deep 400; each refusal names the limit. Bodies larger than
    `_THREAD_BYTES` are measured on a worker thread, so the event loop keeps serving.
    """

    def __init__(
        self,
        app: ASGIApp,
        limits: EdgeLimits,
        on_reject: Callable[[Scope, int, str], None],
        token: str = "",
    ):
        """`on_reject(scope, status, message)` is called once per refused request; `token`:
        the bearer token /v1/ routes require (checked first, before the body is read)."""
        self.app, self.limits, self.on_reject, self.token = app, limits, on_reject, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token and scope["path"].startswith("/v1/"):
            problem = bearer_problem(scope["headers"], self.token)
            if problem is not None:
                message = f"header Authorization: Bearer <token> is required; got {problem}"
                self.on_reject(scope, 401, message)
                await send_json(send, 401, {"detail": message}, [(b"www-authenticate", b"Bearer")])
                return
        try:
            body = await self._read(scope, receive)
        except EdgeRefusal as refusal:
            self.on_reject(scope, refusal.status, refusal.message)
            await send_json(
                send, refusal.status, {"detail": refusal.message}, [(b"connection", b"close")]
            )
            return
        if body is None:
            return  # the client went away: nobody to answer
        await self.app(scope, replaying(body, receive), send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        limits = self.limits
        check_headers(scope["headers"], limits.max_header_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise EdgeRefusal(
                    "header content-length must be a non-negative integer, "
                    f"got {declared[:40].decode('latin-1')!r}"
                )
            if int(declared) > limits.max_body_bytes:
                raise BodyTooLarge(limits.max_body_bytes, str(int(declared)))
        body = await read_body(receive, limits.max_body_bytes, limits.body_timeout)
        if body:
            if len(body) > _THREAD_BYTES:
                await run_in_threadpool(check_json_depth, body, limits.max_json_depth)
            else:
                check_json_depth(body, limits.max_json_depth)
        return body


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
