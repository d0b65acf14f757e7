"""Large deliveries: handled a few at a time, their heavy steps on the service's own threads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

LARGE_BYTES = 256 * 1024  # a step on more bytes than this runs off the event loop


class ParseSlots:
    """At most `slots` large deliveries handled at once, each step of theirs that touches many
    bytes (parsing, pairing with a held half, building rows) on one of as many parse threads.

    A delivery takes its slot at its first large step and keeps it until its handling ends: its
    parsed form (about 25 x its bytes) lives that long, since its rows hold its records. A parse
    whose caller hung up runs to its end on its thread, which no other parse takes meanwhile.
    """

    def __init__(self, slots: int):
        """`slots`: large deliveries handled at once (max_parallel_parses)."""
        self._threads = ThreadPoolExecutor(slots, thread_name_prefix="flywheel-parse")
        self._slots = asyncio.Semaphore(slots)

    @contextlib.asynccontextmanager
    async def handling(self) -> AsyncIterator[Handling]:
        """One delivery's handling; its slot, if it took one, is given back at the end."""
        handling = Handling(self._threads, self._slots)
        try:
            yield handling
        finally:
            if handling.holds_slot:
                self._slots.release()


class Handling:
    """The steps of one delivery: small ones inline, large ones on a parse thread, in its slot."""

    def __init__(self, threads: ThreadPoolExecutor, slots: asyncio.Semaphore):
        self._threads, self._slots = threads, slots
        self.holds_slot = False

    async def run(self, size: int, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)`, a step on `size` bytes: on the loop when small; else on a parse
        thread, once this delivery holds a slot."""
        if size <= LARGE_BYTES:
            return function(*args)
        if not self.holds_slot:
            await self._slots.acquire()
            self.holds_slot = True
        return await asyncio.get_running_loop().run_in_executor(self._threads, function, *args)
