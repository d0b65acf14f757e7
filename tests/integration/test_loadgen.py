"""scripts/loadgen.mjs, the overload run's load generator, against a real loopback HTTP server."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.loadgen import LOADGEN, run_loadgen

pytestmark = pytest.mark.integration


class _Alternating(BaseHTTPRequestHandler):
    """Answers 200 and 503 + Retry-After in turn; counts the bodies it read."""

    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    seen: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        with self.lock:
            self.seen.append(body)
            refuse = len(self.seen) % 2 == 0
        self.send_response(503 if refuse else 200)
        if refuse:
            self.send_header("Retry-After", "1")
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[str]:
    _Alternating.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Alternating)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/models/m:predict"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_every_request_is_sent_once_and_every_answer_counted(server: str, tmp_path: Path) -> None:
    report = run_loadgen(server, b'{"instances": []}', 400, 200, 4, tmp_path)
    assert report["sent"] == 200
    assert report["statuses"] == {"200": 100, "503": 100}
    assert report["with_retry_after"] == 100
    assert report["transport_errors"] == {}
    assert len(_Alternating.seen) == 200
    assert set(_Alternating.seen) == {b'{"instances": []}'}
    # An open loop at 400 req/s sends 200 requests in about half a second, not faster.
    assert 0.4 <= report["seconds"] < 10
    # Each request is written at or after it was due, so from-due latencies bound from-write.
    assert report["accepted_ms_from_due"]["p99"] >= report["accepted_ms_from_write"]["p99"] > 0
    assert report["refused_ms_from_write"]["p99"] > 0
    assert 0 < report["achieved_send_rps"] <= 400 * 1.05


def test_a_missing_option_is_named(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node
    done = subprocess.run(
        [node, str(LOADGEN), "--url", "http://127.0.0.1:1/"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--body is required" in done.stderr
