"""Reliability figures: hostile input, overload and injected faults against real servers on
loopback, written to benchmarks/results/reliability.json and the table in docs/reliability.md.

    .venv/bin/python scripts/reliability.py              # the whole run, ~4 minutes on 2 cores
    .venv/bin/python scripts/reliability.py --quick      # fewer requests, no fault tests

Everything it starts (a predictor per part, the prediction service, a pytest run of the fault
tests) runs on 127.0.0.1 free ports or in temporary folders and is stopped before it returns.
The generated requests come from the very strategies the integration tests use: the
hypothesis strategies of tests/integration/test_server_strictness.py for the predictor, and
schemathesis on the prediction service's own OpenAPI document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' fixtures and strategies are reused, not copied

import httpx  # noqa: E402
import hypothesis  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from flywheel_mlops.registry import Registry  # noqa: E402
from flywheel_mlops.testing.quick_train import train_in_process  # noqa: E402
from tests.loadgen import run_loadgen  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "reliability.json"
DOC = REPO / "docs" / "reliability.md"
TABLE_START, TABLE_END = "<!-- reliability-table:start -->", "<!-- reliability-table:end -->"

# The fault tests re-run in part (c), and what each one injects.
FAULT_TESTS = {
    "database_down": "tests/integration/test_prediction_service_faults.py",
    "killed_registration": (
        "tests/unit/test_registry.py::test_killed_registration_leaves_the_registry_consistent"
    ),
    "pipeline_step_fails": "tests/integration/test_reliability_pipeline.py",
    "corrupt_window": (
        "tests/unit/test_monitor_run.py::"
        "test_corrupt_window_is_an_error_without_retrain_and_the_next_run_recovers"
    ),
    "swap_under_load": "tests/integration/test_server_hot_swap.py",
}


@dataclass
class Tally:
    """Answers to a batch of requests: counts by status, transport failures, latencies."""

    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0
    dropped_kinds: Counter[str] = field(default_factory=Counter)
    leaked_errors: int = 0
    without_retry_after: int = 0
    latencies_ok: list[float] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + self.dropped

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)

    def record(self, response: Any, error: Exception | None = None) -> None:
        """Count one answer (an httpx, requests or schemathesis response), or a failure."""
        if response is None:
            self.dropped += 1
            self.dropped_kinds[type(error).__name__] += 1
            return
        self.statuses[response.status_code] += 1
        headers = {k.lower() for k in response.headers}
        if response.status_code in (429, 503) and "retry-after" not in headers:
            self.without_retry_after += 1
        if response.status_code == 500 and (
            "Traceback" in response.text or 'File "' in response.text
        ):
            self.leaked_errors += 1

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "5xx": self.server_errors,
            "dropped_connections": self.dropped,
            "dropped_kinds": dict(self.dropped_kinds),
            "500_bodies_with_internal_text": self.leaked_errors,
        }


def post(client: httpx.Client, tally: Tally, path: str, body: bytes, headers: dict[str, str]):
    """One request on a keep-alive client; a reset or timeout counts as a dropped connection."""
    try:
        tally.record(client.post(path, content=body, headers=headers))
    except httpx.TransportError as error:
        tally.record(None, error)


def drive(strategy: st.SearchStrategy[Any], count: int, send: Callable[[Any], None]) -> int:
    """Send `count` examples of `strategy` (hypothesis generation only: no shrinking, no
    database), repeating with fresh seeds if hypothesis stops early; returns how many."""
    sent = 0
    seed = 0
    while sent < count:
        budget = count - sent

        @settings(
            max_examples=budget,
            deadline=None,
            database=None,
            derandomize=False,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(example=strategy)
        def generated(example: Any) -> None:
            nonlocal sent
            if sent < count:
                send(example)
                sent += 1

        before = sent
        hypothesis.seed(seed)(generated)()
        seed += 1
        if sent == before:
            break
    return sent


# --- servers -----------------------------------------------------------------------------------


def train_bundle(root: Path) -> Path:
    """A small trained pickup-eta bundle (the same steps a pipeline run takes)."""
    from tests.integration.conftest import MODEL

    version = train_in_process(str(root / "registry"), rows=2000, seed=7)
    return Registry(str(root / "registry")).fetch(MODEL, version)


@contextmanager
def predictor(bundle: Path, logs: Path, *args: str) -> Iterator[Any]:
    """A predictor process on the bundle (the integration tests' launcher); stopped on exit."""
    from tests.integration.conftest import free_port, launch, predictor_command

    port = free_port()
    server = launch(
        predictor_command(port, "--model_dir", str(bundle), *args),
        logs / f"predictor-{port}.log",
        port,
    )
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def prediction_service(root: Path, small_limits: bool = True) -> Iterator[tuple[str, int]]:
    """`flywheel prediction-service` on SQLite (with the fuzz test's small limits, or the
    defaults), in its own process (so it does not share this interpreter's GIL with the
    generator); yields its URL and process id."""
    from tests.integration.conftest import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env |= {"PYTHONUNBUFFERED": "1"}
    limits = ["--max-body-bytes", str(64 * 1024)] if small_limits else []
    if small_limits:
        env["FLYWHEEL_MAX_FEEDBACK_ITEMS"] = "50"
    command = [
        str(Path(sys.executable).with_name("flywheel")),
        "prediction-service",
        "--port",
        str(port),
        "--database-url",
        f"sqlite:///{root / 'predictions.sqlite'}",
        *limits,
        "--log-level",
        "error",
    ]
    with (root / "prediction-service.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "prediction-service.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def peak_memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB, from /proc/<pid>/status."""
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def tracebacks_in(log: Path) -> int:
    return log.read_text(errors="replace").count("Traceback (most recent call last)")


# --- (a) hostile input -------------------------------------------------------------------------


def fuzz_predictor(bundle: Path, logs: Path, total: int) -> dict[str, Any]:
    """`total` generated bodies against V1, V2 JSON and V2 binary, pinned to the model name."""
    from tests.integration import test_server_strictness as strict

    shares = {"v1": 0.4, "v2": 0.4, "v2_binary": 0.2}
    tallies = {name: Tally() for name in shares}
    started = time.monotonic()
    with (
        predictor(
            bundle, logs, "--max_batch", "2000", "--max_body_bytes", str(2 * 1024 * 1024)
        ) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        drive(
            strict.V1_BODIES,
            round(total * shares["v1"]),
            lambda body: post(client, tallies["v1"], strict.V1, body, strict.JSON),
        )
        drive(
            strict.V2_BODIES,
            round(total * shares["v2"]),
            lambda body: post(client, tallies["v2"], strict.V2, body, strict.JSON),
        )
        drive(
            strict.BINARY_BODIES,
            round(total * shares["v2_binary"]),
            lambda req: post(client, tallies["v2_binary"], strict.V2, req[0], req[1]),
        )
        # One body just over the limit, to show the 413 with the same server.
        oversize = Tally()
        post(client, oversize, strict.V1, b" " * (2 * 1024 * 1024 + 1), strict.JSON)
        alive = client.get("/v2/health/live").status_code == 200
    every = Tally()
    for tally in tallies.values():
        every.statuses.update(tally.statuses)
        every.dropped += tally.dropped
        every.dropped_kinds.update(tally.dropped_kinds)
        every.leaked_errors += tally.leaked_errors
    return {
        **every.summary(),
        "by_endpoint": {name: t.summary() for name, t in tallies.items()},
        "oversize_body_status": next(iter(oversize.statuses), None),
        "tracebacks_logged": tracebacks_in(server.log_path),
        "alive_after": alive,
        "seconds": round(time.monotonic() - started, 1),
    }


def fuzz_prediction_service(root: Path, total: int) -> dict[str, Any]:
    """`total` schemathesis cases (positive and negative) on /v1/events and /v1/feedback."""
    import requests  # type: ignore[import-untyped]
    import schemathesis
    from schemathesis.generation import GenerationMode

    targets = [(path, mode) for path in ("/v1/feedback", "/v1/events") for mode in GenerationMode]
    tally = Tally()
    started = time.monotonic()
    with prediction_service(root) as (url, _pid), requests.Session() as session:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = {result.ok().path: result.ok() for result in schema.get_all_operations()}
        for path, mode in targets:

            def send(case: Any) -> None:
                try:
                    tally.record(case.call(base_url=url, session=session, timeout=30))
                except requests.RequestException as error:
                    tally.record(None, error)

            drive(operations[path].as_strategy(mode), total // len(targets), send)
        alive = httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    return {
        **tally.summary(),
        "alive_after": alive,
        "database": "sqlite",
        "seconds": round(time.monotonic() - started, 1),
    }


# --- (b) overload ------------------------------------------------------------------------------


async def _closed_loop(url: str, body: bytes, workers: int, seconds: float) -> Tally:
    """`workers` clients sending back to back for `seconds`: the saturation throughput."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                await _send_one(client, body, tally)

        await asyncio.gather(*(worker() for _ in range(workers)))
    return tally


async def _send_one(client: httpx.AsyncClient, body: bytes, tally: Tally) -> None:
    """One prediction request, counted by outcome; latency kept for accepted ones."""
    sent = time.perf_counter()
    try:
        response = await client.post(PREDICT, content=body, headers=JSON)
    except httpx.TransportError as error:
        tally.record(None, error)
        return
    tally.record(response)
    if response.status_code == 200:
        tally.latencies_ok.append(time.perf_counter() - sent)


def _percentile(values: list[float], q: float) -> float | None:
    if len(values) < 2:
        return None
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000, 2)


PREDICT = "/v1/models/pickup-eta:predict"
JSON = {"content-type": "application/json"}


def overload(
    bundle: Path, logs: Path, cap: int, count: int, probe_seconds: float, batch: int
) -> dict[str, Any]:
    """Measure saturation at the cap, then the same open-loop load at half that rate and at
    twice it, with far more connections than the cap: answers by status, the accepted
    requests' p99 in both runs, the server's memory throughout.

    Each request carries `batch` records so the model, not HTTP handling, is the bottleneck
    (what overload looks like in production); the load comes from Node (scripts/loadgen.mjs),
    which can offer twice the server's rate from the other core.
    """
    from tests.integration.test_server_strictness import RECORD, v1

    body = v1(*[RECORD] * batch)
    connections = 8 * cap
    with predictor(bundle, logs, "--max_concurrency", str(cap)) as server:
        pid = server.process.pid
        warm = asyncio.run(_closed_loop(server.url, body, cap, 1.0))
        rss_before, _ = peak_memory_mib(pid)
        saturation = asyncio.run(_closed_loop(server.url, body, cap, probe_seconds))
        rate = saturation.statuses[200] / probe_seconds
        calm = run_loadgen(
            server.url + PREDICT, body, rate / 2, max(200, count // 4), connections, logs
        )
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.1):
                samples.append(peak_memory_mib(pid)[0])

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        loaded = run_loadgen(server.url + PREDICT, body, 2 * rate, count, connections, logs)
        stop.set()
        sampler.join(2)
        rss_after, peak = peak_memory_mib(pid)
        alive = httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200
        log = server.log_path
    statuses = {int(k): v for k, v in loaded["statuses"].items()}
    overloaded = statuses.get(429, 0) + statuses.get(503, 0)
    dropped = sum(loaded["transport_errors"].values())
    calm_p99 = calm["accepted_ms_from_write"]["p99"]
    loaded_p99 = loaded["accepted_ms_from_write"]["p99"]
    return {
        "max_concurrency": cap,
        "client_connections": connections,
        "records_per_request": batch,
        "load_generator": "scripts/loadgen.mjs (Node http, open loop)",
        "warmup_requests": warm.sent,
        "saturation_rps": round(rate, 1),
        "saturation_p99_ms": _percentile(saturation.latencies_ok, 99),
        "half_load_rps": round(rate / 2, 1),
        "half_load_accepted_p50_ms": calm["accepted_ms_from_write"]["p50"],
        "half_load_accepted_p99_ms": calm_p99,
        "offered_rps": round(2 * rate, 1),
        "achieved_send_rps": loaded["achieved_send_rps"],
        "sent": loaded["sent"],
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "5xx": sum(n for k, n in statuses.items() if k >= 500 and k != 503),
        "dropped_connections": dropped,
        "dropped_kinds": loaded["transport_errors"],
        "answered": sum(statuses.values()),
        "accepted": statuses.get(200, 0),
        "refused_overloaded": overloaded,
        "refused_without_retry_after": overloaded - loaded["with_retry_after"],
        "accepted_p50_ms": loaded["accepted_ms_from_write"]["p50"],
        "accepted_p99_ms": loaded_p99,
        "accepted_p99_vs_half_load": (
            round(loaded_p99 / calm_p99, 2) if loaded_p99 and calm_p99 else None
        ),
        "accepted_p99_from_due_ms": loaded["accepted_ms_from_due"]["p99"],
        "refused_p50_ms": loaded["refused_ms_from_write"]["p50"],
        "refused_p99_ms": loaded["refused_ms_from_write"]["p99"],
        "rss_before_mib": round(rss_before, 1),
        "rss_max_sampled_mib": round(max(samples, default=rss_after), 1),
        "rss_after_mib": round(rss_after, 1),
        "peak_rss_vmhwm_mib": round(peak, 1),
        "tracebacks_logged": tracebacks_in(log),
        "alive_after": alive,
        "seconds": loaded["seconds"],
    }


# --- (c) faults --------------------------------------------------------------------------------


def adversarial(bundle: Path, work: Path, per_family: int) -> dict[str, Any]:
    """The adversarial families (flywheel_mlops.testing.adversarial) at full size against a
    predictor capped at 2 that logs to a prediction service at its default limits."""
    import pandas as pd

    from flywheel_mlops.predictions import DatabaseUnavailable, PredictionStore
    from flywheel_mlops.registry.bundle import load_bundle
    from flywheel_mlops.serving.records import frame_to_records
    from flywheel_mlops.testing import adversarial as adv
    from tests.integration.conftest import MODEL

    root = work / "adversarial"
    root.mkdir()
    reference: pd.DataFrame = load_bundle(bundle).reference()
    record = frame_to_records(reference[load_bundle(bundle).schema.names].head(1))[0]
    generator = adv.Generator(MODEL, record, seed=1414)
    counts = {f: min(per_family, 40) if f == "unpaired" else per_family for f in adv.FAMILIES}
    cases = [c for f in adv.FAMILIES for c in generator.cases(f, counts[f])]
    started = time.monotonic()
    with (
        prediction_service(root, small_limits=False) as (service_url, service_pid),
        predictor(bundle, root, "--max_concurrency", "2", "--logger_url", service_url) as served,
    ):
        rss_before = {
            "predictor": peak_memory_mib(served.process.pid)[0],
            "service": peak_memory_mib(service_pid)[0],
        }
        tally = asyncio.run(
            adv.run(cases, {"predictor": served.url, "service": service_url}, concurrency=4)
        )
        body = json.dumps({"instances": [record]}).encode()
        slow = adv.slow_body_round(served.url, f"/v1/models/{MODEL}:predict", body, 2, 200)
        store = PredictionStore(f"sqlite:///{root / 'predictions.sqlite'}")
        deadline, found = time.monotonic() + 120, set()
        while time.monotonic() < deadline:
            with contextlib.suppress(DatabaseUnavailable):  # SQLite busy: read again
                found = set(store.window(None, None)["request_id"])
            if tally.must_log <= found:
                break
            time.sleep(1)
        store.close()
        peaks = {
            "predictor": peak_memory_mib(served.process.pid)[1],
            "service": peak_memory_mib(service_pid)[1],
        }
        tracebacks = tracebacks_in(root / "prediction-service.log") + sum(
            tracebacks_in(log) for log in root.glob("predictor-*.log")
        )
    summary = tally.summary()
    return {
        "families": summary,
        "sent": sum(f["sent"] for f in summary.values()),
        "5xx": sum(f["5xx"] for f in summary.values()),
        "dropped": {f: s["dropped"] for f, s in summary.items() if s["dropped"]},
        "must_be_logged": len(tally.must_log),
        "lost_rows": len(tally.must_log - found),
        "tracebacks_logged": tracebacks,
        "slow_body_normal_statuses": {str(k): v for k, v in slow.items()},
        "rss_before_mib": {k: round(v, 1) for k, v in rss_before.items()},
        "peak_rss_mib": {k: round(v, 1) for k, v in peaks.items()},
        "service_rss_bound_mib": round(service_memory_bound(rss_before["service"]), 1),
        "seconds": round(time.monotonic() - started, 1),
    }


HANDLING_COST = 50  # a large delivery's peak cost while handled, in multiples of its bytes


def service_memory_bound(rss_before_mib: float) -> float:
    """The service's stated peak at its default limits: what it held before, the waiting
    halves' allowance, and max_parallel_parses large deliveries being handled, each costing
    HANDLING_COST x the body limit (parsed objects ~25x, its bytes in flight, their copy)."""
    from flywheel_mlops.predictions.service.settings import ServiceSettings

    default = {name: field.default for name, field in ServiceSettings.model_fields.items()}
    handled = default["max_parallel_parses"] * HANDLING_COST * default["max_body_bytes"]
    return rss_before_mib + (default["pairing_max_bytes"] + handled) / 2**20


def start_fault_tests(work: Path) -> tuple[subprocess.Popen[bytes], Path, float]:
    """Start pytest on the fault tests in the background; its JUnit XML is read afterwards."""
    report = work / "faults.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *FAULT_TESTS.values(),
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        f"--basetemp={work / 'pytest'}",
    ]
    log = (work / "faults.log").open("wb")
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return process, report, time.monotonic()


def fault_results(
    process: subprocess.Popen[bytes], report: Path, started: float, timeout: float
) -> dict[str, Any]:
    """Wait for the fault tests and turn their outcomes into the figures they assert."""
    try:
        process.wait(max(1.0, timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return {"error": f"the fault tests did not finish within {timeout:.0f} s"}
    outcomes: dict[str, str] = {}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            outcome = "passed"
            for child in case:
                if child.tag in ("failure", "error"):
                    outcome = "failed"
                elif child.tag == "skipped":
                    outcome = "skipped"
            outcomes[name] = outcome

    def of(fragment: str) -> dict[str, int]:
        found = Counter(o for n, o in outcomes.items() if fragment in n)
        return {k: found[k] for k in ("passed", "failed", "skipped")}

    def proven(counts: dict[str, int]) -> bool:
        return counts["passed"] > 0 and counts["failed"] == 0 and counts["skipped"] == 0

    db = of("test_prediction_service_faults")
    kills = of("test_killed_registration")
    pipeline = of("test_reliability_pipeline")
    corrupt = of("test_corrupt_window")
    swap = of("test_server_hot_swap")
    # Each figure is what the passing test asserts; a test that failed or was skipped proves
    # nothing, and the figure says so (None).
    return {
        "seconds": round(time.monotonic() - started, 1),
        "exit_code": process.returncode,
        "database_down": {
            "tests": db,
            # 40 predicted calls (2 events + 1 feedback each) written while PostgreSQL was
            # stopped, and 30 feedback items against a 10-row buffer (20 refused with 503).
            "rows_sent_while_down": 40 * 3 + 30 if proven(db) else None,
            "refused_503_then_resent": 20 if proven(db) else None,
            "rows_lost": 0 if proven(db) else None,
        },
        "killed_registration": {
            "tests": kills,
            "kills": kills["passed"] + kills["failed"],
            "inconsistent_states": kills["failed"],
        },
        "pipeline_step_fails": {
            "tests": pipeline,
            "transient_failures_injected": 1 if pipeline["passed"] else None,
            "retried_runs_succeeded": 1 if proven(pipeline) else None,
            "permanent_failures_promoted": 0 if proven(pipeline) else None,
        },
        "corrupt_window": {
            "tests": corrupt,
            "corrupt_windows": corrupt["passed"] + corrupt["failed"],
            "retrains_triggered": 0 if proven(corrupt) else None,
            "next_run_recovered": proven(corrupt),
        },
        "swap_under_load": {
            "tests": swap,
            "failed_requests_during_swap": 0 if proven(swap) else None,
            "tampered_version_served": False if proven(swap) else None,
        },
    }


# --- output ------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    """The Markdown table docs/reliability.md shows."""
    rows: list[tuple[str, Any]] = []
    p, m = results.get("fuzz_predictor"), results.get("fuzz_prediction_service")
    if p:
        rows += [
            ("Predictor: generated requests (V1, V2 JSON, V2 binary)", p["sent"]),
            ("Predictor: 5xx answers", p["5xx"]),
            ("Predictor: dropped connections", p["dropped_connections"]),
            ("Predictor: tracebacks logged", p["tracebacks_logged"]),
            ("Predictor: body over the limit answered", p["oversize_body_status"]),
        ]
    if m:
        rows += [
            ("Prediction service: generated requests (schemathesis)", m["sent"]),
            ("Prediction service: 5xx answers", m["5xx"]),
            ("Prediction service: dropped connections", m["dropped_connections"]),
        ]
    a = results.get("adversarial")
    if a:
        for family, figures in a["families"].items():
            statuses = ", ".join(f"{k}: {v}" for k, v in figures["statuses"].items())
            rows.append(
                (
                    f"Adversarial {family}: sent / 5xx / dropped (statuses)",
                    f"{figures['sent']} / {figures['5xx']} / {figures['dropped']} ({statuses})",
                )
            )
        rows += [
            (
                "Adversarial: calls answered 2xx that must be logged / lost",
                f"{a['must_be_logged']} / {a['lost_rows']}",
            ),
            ("Adversarial: tracebacks logged", a["tracebacks_logged"]),
            (
                "Slow bodies: 2 trickling clients, cap 2, normal requests' statuses",
                ", ".join(f"{k}: {v}" for k, v in a["slow_body_normal_statuses"].items()),
            ),
            (
                "Adversarial: RSS before / peak, predictor (MiB)",
                f"{a['rss_before_mib']['predictor']} / {a['peak_rss_mib']['predictor']}",
            ),
            (
                "Adversarial: RSS before / peak / stated bound, prediction service (MiB)",
                f"{a['rss_before_mib']['service']} / {a['peak_rss_mib']['service']} / "
                f"{a.get('service_rss_bound_mib', '-')}",
            ),
        ]
    o = results.get("overload")
    if o:
        rows += [
            (
                "Overload: concurrency cap / client connections",
                f"{o['max_concurrency']} / {o['client_connections']}",
            ),
            ("Overload: records per request", o["records_per_request"]),
            (
                "Overload: saturation / offered (2x) / achieved send rate (req/s)",
                f"{o['saturation_rps']} / {o['offered_rps']} / {o['achieved_send_rps']}",
            ),
            ("Overload: requests sent / answered", f"{o['sent']} / {o['answered']}"),
            (
                "Overload: accepted (200) / refused (429, 503)",
                f"{o['accepted']} / {o['refused_overloaded']}",
            ),
            ("Overload: refusals without Retry-After", o["refused_without_retry_after"]),
            ("Overload: refusal p50 / p99 (ms)", f"{o['refused_p50_ms']} / {o['refused_p99_ms']}"),
            (
                "Overload: 5xx other than 503, dropped connections",
                f"{o['5xx']}, {o['dropped_connections']}",
            ),
            (
                "Overload: accepted p99 at half load / at saturation / at 2x (ms)",
                f"{o['half_load_accepted_p99_ms']} / {o['saturation_p99_ms']} / "
                f"{o['accepted_p99_ms']}",
            ),
            (
                "Overload: server RSS before / after / peak (MiB)",
                f"{o['rss_before_mib']} / {o['rss_after_mib']} / {o['peak_rss_vmhwm_mib']}",
            ),
        ]
    f = results.get("faults")
    if f and "error" not in f:
        rows += [
            (
                "Fault: database down, rows sent while down / lost",
                f"{f['database_down']['rows_sent_while_down']} / {f['database_down']['rows_lost']}",
            ),
            (
                "Fault: registration killed (SIGKILL) / inconsistent states",
                f"{f['killed_registration']['kills']} / "
                f"{f['killed_registration']['inconsistent_states']}",
            ),
            (
                "Fault: transient pipeline step failure, retried run succeeded",
                f["pipeline_step_fails"]["retried_runs_succeeded"],
            ),
            (
                "Fault: permanently failing step, versions promoted",
                f["pipeline_step_fails"]["permanent_failures_promoted"],
            ),
            (
                "Fault: corrupt monitor windows / retrains triggered",
                f"{f['corrupt_window']['corrupt_windows']} / "
                f"{f['corrupt_window']['retrains_triggered']}",
            ),
            (
                "Fault: failed requests during a model swap",
                f["swap_under_load"]["failed_requests_during_swap"],
            ),
        ]
    elif f:
        rows.append(("Fault tests", f["error"]))
    lines = ["| figure | value |", "| --- | --- |"]
    lines += [
        f"| {name} | {'n/a (not proven)' if value is None else value} |" for name, value in rows
    ]
    last = f"Last run: {results['finished']}, {results['machine']}, {results['seconds']} s."
    if "adversarial_finished" in results:
        last += (
            f" Adversarial rows: re-run alone (`--only-adversarial`) at "
            f"{results['adversarial_finished']}, {results['adversarial_seconds']} s."
        )
    return "\n".join([*lines, "", last])


def write_doc(results: dict[str, Any], doc: Path) -> None:
    """Replace the table between the markers in `doc` (the prose around it is kept)."""
    text = doc.read_text() if doc.exists() else f"# Reliability\n\n{TABLE_START}\n{TABLE_END}\n"
    pattern = re.compile(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), re.DOTALL)
    doc.write_text(pattern.sub(f"{TABLE_START}\n{table(results)}\n{TABLE_END}", text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fuzz-requests", type=int, default=5000, help="generated requests per service"
    )
    parser.add_argument(
        "--overload-requests",
        type=int,
        default=50_000,
        help="requests sent at twice the saturation rate (about two minutes of it here)",
    )
    parser.add_argument(
        "--overload-batch", type=int, default=300, help="records per request in the overload run"
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=2,
        help="the predictor's cap during the overload run (the cores: requests of hundreds "
        "of records are CPU-bound, so more in flight only lengthens each one)",
    )
    parser.add_argument(
        "--probe-seconds", type=float, default=4.0, help="length of the saturation measurement"
    )
    parser.add_argument(
        "--fault-timeout", type=float, default=300.0, help="seconds the fault tests may take"
    )
    parser.add_argument(
        "--adversarial-requests",
        type=int,
        default=400,
        help="generated requests per adversarial family (large unpaired halves: 40 at most)",
    )
    parser.add_argument(
        "--only-adversarial",
        action="store_true",
        help="run the adversarial families only (the rest of the table is kept from the last run)",
    )
    parser.add_argument("--no-faults", action="store_true", help="skip the fault tests")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="500 requests per service, 1000 in overload, no fault tests",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    if args.quick:
        args.fuzz_requests, args.overload_requests, args.no_faults = 500, 1000, True
        args.adversarial_requests = 100
    if args.only_adversarial:
        return only_adversarial(args)

    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": f"{os.cpu_count()} CPU, Python {platform.python_version()}",
    }
    with tempfile.TemporaryDirectory(prefix="flywheel-reliability-") as tmp:
        work = Path(tmp)
        faults = None if args.no_faults else start_fault_tests(work)
        try:
            print("training a small bundle...", flush=True)
            bundle = train_bundle(work)
            print(
                f"(a) adversarial families, {args.adversarial_requests} requests each...",
                flush=True,
            )
            results["adversarial"] = adversarial(bundle, work, args.adversarial_requests)
            print(f"    {json.dumps(results['adversarial'])}", flush=True)
            print(f"(a) fuzzing the predictor with {args.fuzz_requests} requests...", flush=True)
            results["fuzz_predictor"] = fuzz_predictor(bundle, work, args.fuzz_requests)
            print(f"    {_brief(results['fuzz_predictor'])}", flush=True)
            print(
                f"(a) fuzzing the prediction service with {args.fuzz_requests} requests...",
                flush=True,
            )
            results["fuzz_prediction_service"] = fuzz_prediction_service(work, args.fuzz_requests)
            print(f"    {_brief(results['fuzz_prediction_service'])}", flush=True)
            if faults is not None:
                print("(c) waiting for the fault tests...", flush=True)
                results["faults"] = fault_results(*faults, timeout=args.fault_timeout)
                faults = None
                print(f"    {json.dumps(results['faults'])}", flush=True)
            # Alone on the machine: the fault tests would skew the saturation rate.
            print("(b) overload...", flush=True)
            results["overload"] = overload(
                bundle,
                work,
                args.max_concurrency,
                args.overload_requests,
                args.probe_seconds,
                args.overload_batch,
            )
            print(f"    {json.dumps(results['overload'])}", flush=True)
        finally:
            if faults is not None and faults[0].poll() is None:
                faults[0].kill()
                faults[0].wait()
    results["seconds"] = round(time.monotonic() - started, 1)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    write_doc(results, args.doc)
    print(f"wrote {args.out} and the table in {args.doc} ({results['seconds']} s)")
    return 0


def only_adversarial(args: argparse.Namespace) -> int:
    """Run the adversarial families alone and merge them into the last run's results."""
    started = time.monotonic()
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = f"{os.cpu_count()} CPU, Python {platform.python_version()}"
    with tempfile.TemporaryDirectory(prefix="flywheel-reliability-") as tmp:
        work = Path(tmp)
        print("training a small bundle...", flush=True)
        bundle = train_bundle(work)
        print(f"adversarial families, {args.adversarial_requests} requests each...", flush=True)
        results["adversarial"] = adversarial(bundle, work, args.adversarial_requests)
        print(f"    {json.dumps(results['adversarial'])}", flush=True)
    results["adversarial_seconds"] = round(time.monotonic() - started, 1)
    results["adversarial_finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results.setdefault("finished", results["adversarial_finished"])
    results.setdefault("seconds", results["adversarial_seconds"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    write_doc(results, args.doc)
    print(f"wrote {args.out} and the table in {args.doc}")
    return 0


def _brief(part: dict[str, Any]) -> str:
    return (
        f"sent {part['sent']}, statuses {part['statuses']}, 5xx {part['5xx']}, "
        f"dropped {part['dropped_connections']}, {part['seconds']} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
