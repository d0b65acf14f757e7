"""Follow a moving registry alias: poll it and report each new version, from a daemon thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from flywheel_mlops.errors import FlywheelError

log = logging.getLogger("flywheel.serving")

State = TypeVar("State", bound=Hashable)


@dataclass(frozen=True)
class CanarySplit:
    """Where the canary alias points and the share of requests it serves."""

    version: str
    percent: int


class AliasWatcher(Generic[State]):
    """Polls `current()` every `interval` seconds and calls `on_change(state)` when it differs.

    The state is a version (str) for the champion, a `CanarySplit | None` for the canary.

    Polling (rather than file-system events) works the same on a local folder and on object
    storage, and an alias file replaced with os.replace is never seen half written. The callback
    runs on the watcher thread; a version it could not take is not offered again until the alias
    moves on.
    """

    def __init__(
        self,
        current: Callable[[], State],
        on_change: Callable[[State], object],
        interval: float,
        seen: State | None = None,
    ):
        """
        Args:
            current: returns the version the alias points at now.
            on_change: called with a version the alias moved to.
            interval: seconds between polls.
            seen: the version already served (not reported).
        """
        self._current = current
        self._on_change = on_change
        self._interval = interval
        self._seen = seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> State | None:
        """Check the alias once; returns the new state it reported, or None."""
        try:
            version = self._current()
        except FlywheelError as error:
            log.warning("cannot read the alias: %s", error)
            return None
        except OSError as error:
            # A flaky object store or NFS mount: try again at the next poll.
            log.warning("cannot read the alias: %s", error)
            return None
        if version == self._seen:
            return None
        self._seen = version
        self._on_change(version)
        return version

    def start(self) -> None:
        """Start polling in a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="alias-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and wait for the thread (a swap in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll_once()
