"""`flywheel serve` follows the champion alias and swaps versions under load without losing a
request; a promoted version that fails its checks is not served."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from flywheel_mlops.registry import Registry
from flywheel_mlops.serving.records import frame_to_records
from tests.integration.conftest import MODEL, RunningServer, free_port, launch

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(trained_registry: Path, tmp_path: Path) -> Path:
    """A private copy of the two-version registry (these tests move its alias)."""
    copy = tmp_path / "registry"
    shutil.copytree(trained_registry, copy)
    return copy


@pytest.fixture
def served(registry: Path, tmp_path: Path) -> Iterator[RunningServer]:
    """`flywheel serve` on the copy's champion, polling the alias every 0.1 s."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("flywheel")),
        "serve",
        "--port",
        str(port),
        "--registry",
        str(registry),
        "--watch-interval",
        "0.1",
    ]
    server = launch(command, tmp_path / "serve.log", port)
    yield server
    server.stop()


class Stream:
    """A client thread sending one-record V1 requests back to back and tallying the answers."""

    def __init__(self, url: str, records: list[dict]):
        self.url, self.records = url, records
        self.versions: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            index = 0
            while not self._stop.is_set():
                record = self.records[index % len(self.records)]
                index += 1
                try:
                    response = client.post(
                        f"{self.url}/v1/models/{MODEL}:predict", json={"instances": [record]}
                    )
                except httpx.TransportError as error:
                    self.failures.append(repr(error))
                    continue
                if response.status_code == 200:
                    self.versions.append(response.json()["model_version"])
                else:
                    self.failures.append(f"{response.status_code} {response.text}")

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.versions) + len(self.failures) < count:
            assert time.monotonic() < deadline, "the stream stalled"
            time.sleep(0.01)


def test_promotion_under_a_request_stream_swaps_without_losing_a_request(
    served: RunningServer, registry: Path, reference_rows: pd.DataFrame
) -> None:
    with Stream(served.url, frame_to_records(reference_rows.head(50))) as stream:
        stream.wait_for(200)
        Registry(str(registry)).set_alias(MODEL, "v0002", reason="hot swap test")
        deadline = time.monotonic() + 30
        while "v0002" not in stream.versions[-50:]:
            assert time.monotonic() < deadline, "the server never swapped to v0002"
            time.sleep(0.02)
        settled = len(stream.versions)
        stream.wait_for(settled + 200)
    seen = Counter(stream.versions)
    assert stream.failures == []
    assert seen["v0001"] >= 200
    assert seen["v0002"] >= 200
    first_new = stream.versions.index("v0002")
    assert "v0001" not in stream.versions[first_new:], "answers went back to the old version"
    swaps = [e for e in served.logs() if "swapped from v0001" in e.get("message", "")]
    assert len(swaps) == 1


def test_a_promoted_version_that_fails_its_checks_is_not_served(
    served: RunningServer, registry: Path, reference_rows: pd.DataFrame
) -> None:
    store = Registry(str(registry))
    model_file = store.fetch(MODEL, "v0002") / "model.ubj"
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    store.set_alias(MODEL, "v0002", reason="bad promotion")
    deadline = time.monotonic() + 30
    while not any("kept v0001" in e.get("message", "") for e in served.logs()):
        assert time.monotonic() < deadline, served.log_path.read_text()[-2000:]
        time.sleep(0.05)
    answer = httpx.post(
        f"{served.url}/v1/models/{MODEL}:predict",
        json={"instances": frame_to_records(reference_rows.head(1))},
    )
    assert answer.status_code == 200
    assert answer.json()["model_version"] == "v0001"
    assert httpx.get(f"{served.url}/v2/models/{MODEL}/ready").status_code == 200
    rejected = [e for e in served.logs() if "kept v0001" in e.get("message", "")]
    assert "model.ubj" in rejected[0]["message"]
