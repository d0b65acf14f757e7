"""Only FastAPI's own "error parsing the body" 400 is rewritten; other HTTP errors keep theirs."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from flywheel_mlops.edge.body_errors import FASTAPI_PARSE_ERROR, unparsable_body_message

pytestmark = pytest.mark.unit


def raised_from(cause: Exception, detail: str, status: int = 400) -> HTTPException:
    try:
        try:
            raise cause
        except Exception as error:
            raise HTTPException(status, detail) from error
    except HTTPException as http:
        return http


def test_a_body_that_is_not_utf8_is_named_with_its_byte_and_position() -> None:
    cause = UnicodeDecodeError("utf-8", b'{"a": "\xff"}', 7, 8, "invalid start byte")
    message = unparsable_body_message(raised_from(cause, FASTAPI_PARSE_ERROR))
    assert message is not None
    assert "byte 0xff at byte 7" in message


def test_another_400_with_a_cause_keeps_its_own_detail() -> None:
    cause = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    assert unparsable_body_message(raised_from(cause, "model name not found")) is None
