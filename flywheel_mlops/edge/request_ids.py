"""The request id rule both servers apply where an id enters: what a storable, joinable id is.

A request id travels in an HTTP header (`x-request-id`, `ce-id`), a V2 body (`id`), the
prediction log's key and feedback. One rule keeps it valid in all of them: 1 to 256 visible
ASCII characters (no space, tab, NBSP, control or non-ASCII character), which any header
encodes, any database stores and any client can type back.
"""

from __future__ import annotations

import re
import uuid

REQUEST_ID_MAX = 256
REQUEST_ID_PATTERN = rf"^[\x21-\x7e]{{1,{REQUEST_ID_MAX}}}$"
_ID = re.compile(REQUEST_ID_PATTERN)


def request_id_problem(value: object) -> str | None:
    """Why `value` is not a valid request id (a phrase), or None if it is one."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if _ID.match(value):
        return None
    if not value:
        return "must not be empty"
    if len(value) > REQUEST_ID_MAX:
        return f"must be at most {REQUEST_ID_MAX} characters, got {len(value)}"
    bad = next(c for c in value if not 0x21 <= ord(c) <= 0x7E)
    return (
        f"must be visible ASCII characters only (no spaces or control characters), "
        f"got {bad!a} at position {value.index(bad)}"
    )


def new_request_id() -> str:
    """A fresh server-generated request id."""
    return uuid.uuid4().hex
