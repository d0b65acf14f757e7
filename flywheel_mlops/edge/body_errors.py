"""FastAPI's two answers to a body it cannot parse, rewritten to say what is wrong and where.

FastAPI reports a JSON syntax error as `{"type": "json_invalid", "loc": ("body", <pos>)}` with
the message "JSON decode error", and a body that is not UTF-8 at all as a bare 400 "There was an
error parsing the body". Both servers answer them with the parser's own reason and position.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException


def json_invalid_message(error: dict[str, Any]) -> str | None:
    """The message for one of FastAPI's validation errors if it is a JSON syntax error."""
    if error.get("type") != "json_invalid":
        return None
    reason = (error.get("ctx") or {}).get("error", "not valid JSON")
    at = [p for p in error.get("loc", ()) if isinstance(p, int)]  # json's error .pos
    where = f" at character {at[0]} (0-based)" if at else ""
    return f"request body is not valid JSON: {reason}{where}"


#: FastAPI's detail when reading the body raised anything but a JSON syntax error
#: (fastapi/routing.py); only that 400 is rewritten, never another HTTPException.
FASTAPI_PARSE_ERROR = "There was an error parsing the body"


def unparsable_body_message(exc: HTTPException) -> str | None:
    """The message for FastAPI's "error parsing the body" 400, from the error underneath."""
    cause = exc.__cause__
    if exc.status_code != 400 or exc.detail != FASTAPI_PARSE_ERROR or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        byte = cause.object[cause.start : cause.start + 1].hex()
        return (
            f"request body is not valid JSON: it is not UTF-8 text ({cause.encoding} "
            f"cannot decode byte 0x{byte} at byte {cause.start}, 0-based: {cause.reason})"
        )
    return f"request body could not be read as JSON: {type(cause).__name__}: {cause}"[:500]
