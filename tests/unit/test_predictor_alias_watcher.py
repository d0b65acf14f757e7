"""The alias watcher reports each new version once and survives an unreadable alias."""

from __future__ import annotations

import time

from flywheel_mlops.errors import NotFoundError
from flywheel_mlops.serving.alias_watcher import AliasWatcher


def test_each_move_of_the_alias_is_reported_once() -> None:
    versions = iter(["v1", "v1", "v2", "v2", "v3"])
    seen: list[str] = []
    watcher = AliasWatcher(lambda: next(versions), seen.append, interval=1, seen="v1")
    reported = [watcher.poll_once() for _ in range(5)]
    assert reported == [None, None, "v2", None, "v3"]
    assert seen == ["v2", "v3"]


def test_an_unreadable_alias_is_retried_at_the_next_poll() -> None:
    answers: list[object] = [NotFoundError("no alias"), OSError("nfs hiccup"), "v2"]

    def current() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    seen: list[str] = []
    watcher = AliasWatcher(current, seen.append, interval=1, seen="v1")
    assert [watcher.poll_once() for _ in range(3)] == [None, None, "v2"]


def test_the_thread_polls_until_stopped() -> None:
    seen: list[str] = []
    watcher = AliasWatcher(lambda: "v2", seen.append, interval=0.01, seen="v1")
    watcher.start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    watcher.stop()
    assert seen == ["v2"]
