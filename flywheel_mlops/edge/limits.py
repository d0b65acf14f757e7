"""The one size, depth and time policy both servers enforce at their edge, and its refusals.

The predictor's request gate and the prediction service's body middleware apply the same
`EdgeLimits`; uvicorn gets the transport half of it (header buffer, header deadline,
keep-alive) from `uvicorn_options`. Every refusal is an `EdgeRefusal` that names the limit and
what was found.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EdgeLimits:
    """What a request may be at most, and how long it may take to arrive."""

    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body (413 beyond)."""

    max_json_depth: int = 64
    """Deepest nesting of arrays and objects in a JSON body (400 beyond)."""

    body_timeout: float = 30.0
    """Seconds from the end of the headers to the last body byte (408 beyond)."""

    header_timeout: float = 10.0
    """Seconds from opening a connection (on keep-alive, from the next head's first byte) to
    the end of the request's headers; past it the connection is closed."""

    max_header_bytes: int = 16 * 1024
    """Total size of the request line's headers, names and values (431 beyond)."""

    keep_alive_timeout: float = 5.0
    """Seconds an idle keep-alive connection is held open."""

    @property
    def transport_header_bytes(self) -> int:
        """uvicorn's (h11) buffer for an incomplete request head: past it the connection is
        refused before any header reaches the app, so headers never cost more memory than this.
        Twice the header limit, so headers between the two get the 431 that names the limit."""
        return 2 * self.max_header_bytes + 4096


def uvicorn_options(limits: EdgeLimits) -> dict[str, Any]:
    """uvicorn.Config keyword arguments that bound what a connection can hold.

    h11 rather than httptools: h11 bounds the bytes it buffers for a request head, httptools
    buffers headers of any size; the h11 protocol is extended with the header deadline.
    """
    # Imported here: the limits are read by settings and CLIs that never start a server, and
    # uvicorn's protocol modules are not worth loading for them.
    from flywheel_mlops.edge.header_deadline import header_deadline_protocol

    return {
        "http": header_deadline_protocol(limits.header_timeout),
        "h11_max_incomplete_event_size": limits.transport_header_bytes,
        "timeout_keep_alive": max(1, round(limits.keep_alive_timeout)),
    }


class EdgeRefusal(Exception):
    """A request refused at the edge; `status` is the HTTP status that answers it."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BodyTooLarge(EdgeRefusal):
    """The body passed the size limit."""

    status = 413

    def __init__(self, limit: int, found: str = "more"):
        super().__init__(f"request body must be at most {limit} bytes, got {found}")
        self.limit = limit


class BodyTimeout(EdgeRefusal):
    """The body did not arrive in time."""

    status = 408

    def __init__(self, limit: float, received: int):
        super().__init__(
            f"request body must arrive within {limit:g} s of the headers; "
            f"{received} bytes had arrived"
        )


class JsonTooDeep(EdgeRefusal):
    """A JSON body nests deeper than allowed."""

    status = 400

    def __init__(self, limit: int, found: int, where: str = "the JSON body"):
        super().__init__(
            f"{where} must nest at most {limit} levels of arrays and objects, got {found}"
        )


class HeadersTooLarge(EdgeRefusal):
    """The request headers are larger than allowed."""

    status = 431

    def __init__(self, limit: int, found: int):
        super().__init__(f"request headers must total at most {limit} bytes, got {found}")


def check_headers(headers: Iterable[tuple[bytes, bytes]], limit: int) -> None:
    """Raise HeadersTooLarge if the headers' names and values total more than `limit` bytes."""
    size = sum(len(name) + len(value) + 4 for name, value in headers)
    if size > limit:
        raise HeadersTooLarge(limit, size)
