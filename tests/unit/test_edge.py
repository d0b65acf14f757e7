"""The edge policy both servers share: JSON depth, body time and size, headers, request ids."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from flywheel_mlops.edge import json_depth as depth_module
from flywheel_mlops.edge.asgi_body import read_body
from flywheel_mlops.edge.auth import bearer_problem
from flywheel_mlops.edge.json_depth import check_json_depth, json_depth
from flywheel_mlops.edge.limits import (
    BodyTimeout,
    BodyTooLarge,
    HeadersTooLarge,
    JsonTooDeep,
    check_headers,
)
from flywheel_mlops.edge.request_ids import request_id_problem


def oracle_depth(value: Any) -> int:
    """Nesting depth of a parsed value, walked with an explicit stack."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


# Strings full of what could fool a byte scanner: quotes, backslashes, brackets.
_TRICKY = st.text(alphabet='[]{}"\\ a\u00e9\u2028', max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY, inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(value=_JSON, chunk=st.sampled_from([1, 2, 3, 7, 1 << 20]))
def test_json_depth_matches_the_parsed_value_across_chunk_borders(value: Any, chunk: int) -> None:
    original = depth_module._CHUNK
    depth_module._CHUNK = chunk
    try:
        for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
            assert json_depth(text.encode()) == oracle_depth(value)
    finally:
        depth_module._CHUNK = original


def test_a_deep_body_is_refused_naming_the_limit_and_the_depth_found() -> None:
    with pytest.raises(JsonTooDeep, match="at most 64 levels of arrays and objects, got 100000"):
        check_json_depth(b"[" * 100_000 + b"]" * 100_000, 64)
    check_json_depth(b"[" * 64 + b"]" * 64, 64)


def receiver(chunks: list[bytes], pause: float) -> Any:
    """An ASGI receive that hands out `chunks`, `pause` seconds apart."""
    queue = list(chunks)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(pause)
        chunk = queue.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    return receive


def test_a_body_that_does_not_arrive_in_time_is_a_408_refusal() -> None:
    with pytest.raises(BodyTimeout, match=r"within 0.2 s of the headers; 2 bytes had arrived"):
        asyncio.run(read_body(receiver([b"a"] * 10, 0.08), 1000, timeout=0.2))
    assert BodyTimeout.status == 408


def test_a_body_in_time_and_size_is_read_whole() -> None:
    assert asyncio.run(read_body(receiver([b"ab", b"cd"], 0.01), 4, timeout=1)) == b"abcd"
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(receiver([b"ab", b"cde"], 0.01), 4, timeout=1))


def test_headers_over_the_limit_are_a_431_refusal() -> None:
    check_headers([(b"a", b"b" * 100)], 200)
    with pytest.raises(HeadersTooLarge, match="at most 200 bytes, got 305"):
        check_headers([(b"a", b"b" * 300)], 200)
    assert HeadersTooLarge.status == 431


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("x" * 257, "at most 256 characters, got 257"),
        ("a\tb", "got '\\t' at position 1"),
        ("nb\u00a0sp", "got '\\xa0' at position 2"),
        ("a\x01", "got '\\x01' at position 1"),
        ("caf\u00e9", "got '\\xe9' at position 3"),
        ("a b", "got ' ' at position 1"),
        ("\udfff", "got '\\udfff' at position 0"),
        ("", "must not be empty"),
        (7, "must be a string, got int"),
    ],
)
def test_request_ids_outside_the_rule_are_named_with_the_first_bad_character(
    value: object, problem: str
) -> None:
    found = request_id_problem(value)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize("value", ["a", "x" * 256, "9f1c-ABC_def.ghi:jkl/m+n=o@p", "~!#$%^&*()"])
def test_ids_inside_the_rule_pass(value: str) -> None:
    assert request_id_problem(value) is None


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ([(b"authorization", b"Bearer s3cret")], None),
        ([(b"Authorization", b"bearer s3cret")], None),
        ([(b"authorization", b"BEARER  s3cret ")], None),
        ([], "no Authorization header"),
        ([(b"authorization", b"Bearer s3cret")] * 2, "2 Authorization headers"),
        ([(b"authorization", b"Basic s3cret")], "not 'Bearer <token>'"),
        ([(b"authorization", b"Bearer")], "not 'Bearer <token>'"),
        ([(b"authorization", b"Bearer other")], "a different token"),
    ],
)
def test_one_bearer_parser_for_both_servers(
    headers: list[tuple[bytes, bytes]], problem: str | None
) -> None:
    found = bearer_problem(headers, "s3cret")
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
