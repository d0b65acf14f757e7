"""The one `Authorization: Bearer <token>` check both servers apply, before reading a body.

The scheme is case-insensitive (RFC 9110), spaces around the token are ignored, and a request
carrying two Authorization headers is refused rather than guessed at. The comparison takes the
same time whatever the token sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable


def bearer_problem(headers: Iterable[tuple[bytes, bytes]], token: str) -> str | None:
    """Why the raw ASGI `headers` do not carry `token` as a bearer token; None if they do
    (or if no token is configured)."""
    if not token:
        return None
    values = [value for name, value in headers if name.lower() == b"authorization"]
    if not values:
        return "no Authorization header"
    if len(values) > 1:
        return f"{len(values)} Authorization headers (send one)"
    scheme, _, given = values[0].strip().partition(b" ")
    if scheme.lower() != b"bearer" or not given.strip():
        return "an Authorization header that is not 'Bearer <token>'"
    if not hmac.compare_digest(given.strip(), token.encode()):
        return "a different token"
    return None
