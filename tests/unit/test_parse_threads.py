"""Large deliveries are parsed off the service's event loop, on its own bounded parse threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from flywheel_mlops.predictions.service.parse_slots import LARGE_BYTES, ParseSlots

LARGE = LARGE_BYTES + 1


def test_a_small_body_is_parsed_on_the_loop_and_a_large_one_on_a_parse_thread() -> None:
    async def main() -> tuple[str, str, str]:
        async with ParseSlots(1).handling() as handling:
            small = await handling.run(10, lambda: threading.current_thread().name)
            large = await handling.run(LARGE, lambda: threading.current_thread().name)
        return threading.current_thread().name, small, large

    loop_thread, small, large = asyncio.run(main())
    assert small == loop_thread
    assert large.startswith("flywheel-parse")


def test_a_caller_that_hangs_up_keeps_its_parse_slot_until_its_parse_ends() -> None:
    """With one slot, a second parse may not start while the first, whose caller was cancelled
    (the client went away), still runs: parses, not callers, are what costs memory."""
    first_running, release_first = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        order.append("first started")
        first_running.set()
        release_first.wait(10)
        order.append("first ended")

    def second() -> None:
        order.append("second started")

    async def handle(slots: ParseSlots, step: Callable[[], None]) -> None:
        async with slots.handling() as handling:
            await handling.run(LARGE, step)

    async def main() -> None:
        slots = ParseSlots(1)
        caller = asyncio.create_task(handle(slots, first))
        await asyncio.to_thread(first_running.wait, 10)
        caller.cancel()
        following = asyncio.create_task(handle(slots, second))
        await asyncio.sleep(0.05)
        assert order == ["first started"], order
        release_first.set()
        await following

    asyncio.run(main())
    assert order == ["first started", "first ended", "second started"]


def test_a_second_large_delivery_waits_until_the_first_is_done_with_not_only_parsed() -> None:
    """The parsed form lives until the rows are built: the slot spans the whole handling, so
    two large deliveries are never held parsed at once; small ones are not held back."""
    order: list[str] = []

    async def handle(
        slots: ParseSlots, name: str, size: int, entered: asyncio.Event, done: asyncio.Event
    ) -> None:
        async with slots.handling() as handling:
            await handling.run(size, order.append, f"{name} in")
            entered.set()
            await done.wait()  # pairing, building rows: still holding the parse
            order.append(f"{name} out")

    async def main() -> None:
        slots = ParseSlots(1)
        entered = {name: asyncio.Event() for name in ("first", "second", "small")}
        first_done, no_wait = asyncio.Event(), asyncio.Event()
        no_wait.set()
        first = asyncio.create_task(handle(slots, "first", LARGE, entered["first"], first_done))
        await entered["first"].wait()
        second = asyncio.create_task(handle(slots, "second", LARGE, entered["second"], no_wait))
        small = asyncio.create_task(handle(slots, "small", 10, entered["small"], no_wait))
        await small
        assert order == ["first in", "small in", "small out"], order
        first_done.set()
        await asyncio.gather(first, second)

    asyncio.run(main())
    assert order[-3:] == ["first out", "second in", "second out"]


def test_an_app_started_twice_still_parses_large_bodies(tmp_path: Path) -> None:
    """The lifespan may run again (a second test client, a restart in one process): the parse
    threads outlive it, so a large body is not answered 500 the second time."""
    from flywheel_mlops.predictions.cloudevents import event_headers
    from flywheel_mlops.predictions.service.app import create_app
    from flywheel_mlops.predictions.service.settings import ServiceSettings

    app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'log.sqlite'}"))
    body = orjson.dumps({"instances": [{"zone": "Z01", "distance_km": 2.5}] * 20_000})
    assert len(body) > LARGE_BYTES
    for start in ("first", "second"):
        with TestClient(app) as client:
            answer = client.post(
                "/v1/events", content=body, headers=event_headers(f"ce-{start}", "request", "t")
            )
            assert answer.status_code == 202, (start, answer.text)
