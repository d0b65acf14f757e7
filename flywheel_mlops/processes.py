"""Local server processes: a free loopback port, start and wait until ready, stop gracefully.

The demo runs its servers this way, as a cluster would run them as pods; tests and benchmarks
start theirs with the same code.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from flywheel_mlops.errors import FlywheelError

LOG_TAIL = 4000


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A server process on loopback and the file its output goes to."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self) -> str:
        """The last few thousand characters the process wrote."""
        return self.log_path.read_text(errors="replace")[-LOG_TAIL:]

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines are skipped)."""
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    entries.append(json.loads(line))
        return entries

    def logs_once_written(self, request_id: str, seconds: float = 10.0) -> list[dict[str, Any]]:
        """The JSON log lines, once the line of `request_id` is among them (or `seconds` passed):
        a server writes its access line after the answer is sent, so a reader may be early."""
        deadline = time.monotonic() + seconds
        entries = self.logs()
        while not any(e.get("request_id") == request_id for e in entries):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
            entries = self.logs()
        return entries

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (servers drain in-flight work), wait, SIGKILL if it will not go; exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


def start_server(
    command: list[str],
    log_path: Path,
    url: str,
    ready_path: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    seconds: float = 90.0,
) -> ServerProcess:
    """Start `command` with its output in `log_path`; return once `url + ready_path` answers 200.

    Raises FlywheelError with the end of the log when the process exits or is not ready in time.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=dict(env) if env else None, cwd=cwd
        )
    server = ServerProcess(url, process, log_path)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FlywheelError(
                f"{command[:4]} exited with {process.returncode}; {log_path}:\n{server.log_tail()}"
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + ready_path, timeout=1.0).status_code == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise FlywheelError(f"{url}{ready_path} not ready after {seconds:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def running_server(
    command: list[str],
    log_path: Path,
    url: str,
    ready_path: str,
    env: Mapping[str, str] | None = None,
    seconds: float = 90.0,
) -> Iterator[ServerProcess]:
    """`start_server`, stopped when the block ends, however it ends."""
    server = start_server(command, log_path, url, ready_path, env=env, seconds=seconds)
    try:
        yield server
    finally:
        server.stop(timeout=20)
