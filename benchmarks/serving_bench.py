"""Serving benchmark: Flywheel's KServe predictor vs MLServer's XGBoost runtime vs a bare floor.

All three serve the same XGBoost booster (the bundle's model.ubj), one at a time, bound to
127.0.0.1, driven by the same load generator (wrk when installed, else a Python client):

- flywheel: `python -m flywheel_inference --model_dir <bundle>`; raw records in (V1 JSON objects,
  V2 JSON or V2 binary columns), schema check + the training feature code + the booster.
- mlserver: MLServer with mlserver-xgboost, installed by this script in its own virtual
  environment under --cache-dir; V2 JSON with the 32-column feature matrix (FP32).
- floor: uvicorn + orjson + `Booster.inplace_predict`, nothing else; same body as MLServer.
- kserve: KServe's own ModelServer with a model that only calls the booster on the V2 tensor
  (same body as MLServer): what KServe's stack costs before any of Flywheel's work.

Measured: single-row p50/p99 with one client, p99 with 8 concurrent clients, saturation
throughput (the most requests/s at any concurrency whose p99 stays under 50 ms), and batch-1000
latency (V2 binary vs V2 JSON for Flywheel). Results go to benchmarks/results/serving.json and
a Markdown table in docs/serving.md.

    .venv/bin/python benchmarks/serving_bench.py            # ~4 minutes on 2 cores
    .venv/bin/python benchmarks/serving_bench.py --duration 10 --skip-mlserver
    .venv/bin/python benchmarks/serving_bench.py --before old.json --before-note "pandas path"
    .venv/bin/python benchmarks/serving_bench.py floor --port 9000 --model model.ubj  # internal
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from flywheel_mlops.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
MODEL = "pickup-eta"
MLSERVER_MODEL = "pickup-eta-xgb"
MLSERVER_PINS = ["mlserver==1.7.1", "scikit-learn>=1.5,<1.8"]
MLSERVER_RUNTIME = "mlserver-xgboost==1.7.1"
CONCURRENCY = (1, 2, 4, 8, 16, 32)
P99_BUDGET_MS = 50.0
BATCH = 1000
#: Every server predicts with one XGBoost thread (Flywheel's --nthread default; the others get it
#: through OpenMP's variable): with more, OpenMP workers spin on shared cores and p99 explodes.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


# --- the bare floor: uvicorn + orjson + inplace_predict ---------------------------------------


def floor_app(model_path: str) -> Any:
    """A raw ASGI app: V2-shaped JSON in, booster.inplace_predict, orjson out. Nothing else."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(model_path)
    booster.set_param({"nthread": 1})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] == "GET":
            payload = b'{"ready":true}'
        else:
            tensor = orjson.loads(body)["inputs"][0]
            matrix = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            predictions = booster.inplace_predict(matrix)
            payload = orjson.dumps(
                {"outputs": [{"name": "predict", "data": predictions}]},
                option=orjson.OPT_SERIALIZE_NUMPY,
            )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


def run_floor(port: int, model_path: str) -> None:
    """Serve the floor app on 127.0.0.1:port until SIGTERM."""
    import uvicorn

    uvicorn.run(
        floor_app(model_path), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


# --- KServe's own stack: its ModelServer and a model that only calls the booster --------------


def run_kserve(port: int, model_path: str) -> None:
    """KServe's ModelServer with the least a custom model does: V2 tensor in, booster, V2 out.

    It measures what KServe's stack (uvicorn, FastAPI, KServe's V2 parsing and Model.__call__)
    costs before any of Flywheel's own work. It runs under Flywheel's ModelServer subclass, the
    only way to bind 127.0.0.1 in KServe 0.21, which also leaves out KServe's per-request
    timing middleware (see inference/model_server.py), exactly as Flywheel's server does.
    """
    import kserve
    import xgboost as xgb
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    from flywheel_inference.model_server import FlywheelModelServer

    booster = xgb.Booster()
    booster.load_model(model_path)
    booster.set_param({"nthread": 1})

    class BoosterOnly(kserve.Model):
        def __init__(self) -> None:
            super().__init__("booster")
            self.ready = True

        async def predict(self, payload: InferRequest, headers: Any = None) -> InferResponse:
            predictions = booster.inplace_predict(payload.inputs[0].as_numpy())
            output = InferOutput("predict", [len(predictions)], "FP32", data=predictions)
            return InferResponse(payload.id or "", self.name, infer_outputs=[output])

    FlywheelModelServer(host="127.0.0.1", http_port=port, enable_grpc=False, workers=1).start(
        [BoosterOnly()]
    )


# --- load generation --------------------------------------------------------------------------


@dataclass
class Request:
    """One benchmark request: where it goes and the exact bytes sent."""

    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Measure:
    """What one run of the load generator saw."""

    connections: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_WRK_SCRIPT = """
wrk.method = "POST"
{headers}
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('FLYWHEEL {{"requests": %d, "us": %d, "errors": %d, "p50": %d, ' ..
    '"p90": %d, "p99": %d}}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def wrk(url: str, request: Request, connections: int, seconds: float, work: Path) -> Measure:
    """Closed-loop load with wrk: `connections` clients sending back to back."""
    body = work / f"body-{abs(hash(request.body))}.bin"
    body.write_bytes(request.body)
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in request.headers.items())
    script = work / "post.lua"
    script.write_text(_WRK_SCRIPT.format(headers=headers, body=body))
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"{url}{request.path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("FLYWHEEL "))
    data = json.loads(line.removeprefix("FLYWHEEL "))
    return Measure(
        connections,
        data["requests"],
        data["us"] / 1e6,
        data["errors"],
        data["p50"] / 1000,
        data["p90"] / 1000,
        data["p99"] / 1000,
    )


def python_load(url: str, request: Request, connections: int, seconds: float, _: Path) -> Measure:
    """The fallback generator: one thread and one keep-alive connection per client."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                connection.request("POST", request.path, request.body, request.headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection(host, int(port), timeout=10)
            latencies[index].append(time.perf_counter() - started)
            errors[index] += 0 if ok else 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = np.asarray([x for xs in latencies for x in xs]) * 1000
    p50, p90, p99 = np.percentile(flat, [50, 90, 99]) if len(flat) else (0, 0, 0)
    return Measure(connections, len(flat), elapsed, sum(errors), float(p50), float(p90), float(p99))


# --- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    """A server process under test."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start(
    name: str,
    command: list[str],
    port: int,
    ready_path: str,
    work: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    """Start a server and wait until `ready_path` answers 200."""
    log = work / f"{name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=cwd or work,
            env={**os.environ, **(env or {})},
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log.read_text()[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", ready_path)
            if connection.getresponse().status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{name} not ready:\n{log.read_text()[-3000:]}")


def listening_addresses(pid: int) -> list[str]:
    """Local addresses the process listens on (to prove every server is on loopback)."""
    try:
        import psutil
    except ImportError:
        return []
    process = psutil.Process(pid)
    found = set()
    for proc in [process, *process.children(recursive=True)]:
        connections = getattr(proc, "net_connections", None) or proc.connections
        for conn in connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                found.add(f"{conn.laddr.ip}:{conn.laddr.port}")
    return sorted(found)


def install_mlserver(cache: Path) -> Path:
    """MLServer and its XGBoost runtime in their own venv (xgboost-cpu, the version we run)."""
    import xgboost

    venv = cache / "mlserver-venv"
    marker = venv / f".installed-{xgboost.__version__}"
    if marker.exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    # The plain `xgboost` wheel pulls a 200 MB CUDA package; xgboost-cpu is the same library.
    subprocess.run([*pip, *MLSERVER_PINS, f"xgboost-cpu=={xgboost.__version__}"], check=True)
    subprocess.run([*pip, "--no-deps", MLSERVER_RUNTIME], check=True)
    marker.touch()
    return venv


# --- the benchmark ----------------------------------------------------------------------------


@dataclass
class ServerResult:
    """Everything measured on one server."""

    name: str
    listening: list[str]
    levels: list[dict[str, Any]] = field(default_factory=list)
    batch: dict[str, dict[str, Any]] = field(default_factory=dict)

    def level(self, connections: int) -> dict[str, Any]:
        return next(x for x in self.levels if x["connections"] == connections)

    @property
    def saturation_rps(self) -> float:
        ok = [x["rps"] for x in self.levels if x["p99_ms"] < P99_BUDGET_MS and not x["errors"]]
        return max(ok, default=0.0)


def _record(measure: Measure) -> dict[str, Any]:
    return {**asdict(measure), "rps": round(measure.rps, 1)}


def bench_server(
    server: Server,
    single: Request,
    batches: dict[str, Request],
    load: Any,
    seconds: float,
    work: Path,
) -> ServerResult:
    """Warm up, then every concurrency level with one-row requests, then the batch requests."""
    result = ServerResult(server.name, listening_addresses(server.process.pid))
    load(server.url, single, 2, min(3.0, seconds), work)  # warm-up
    for connections in CONCURRENCY:
        measure = load(server.url, single, connections, seconds, work)
        result.levels.append(_record(measure))
        print(
            f"  {server.name:9s} 1 row  c={connections:<3d} {measure.rps:8.0f} req/s  "
            f"p50 {measure.p50_ms:6.2f} ms  p99 {measure.p99_ms:6.2f} ms  "
            f"errors {measure.errors}",
            flush=True,
        )
    for label, request in batches.items():
        load(server.url, request, 1, 1.0, work)
        measure = load(server.url, request, 1, seconds, work)
        result.batch[label] = _record(measure)
        print(
            f"  {server.name:9s} {label:22s} p50 {measure.p50_ms:7.2f} ms  "
            f"p99 {measure.p99_ms:7.2f} ms  errors {measure.errors}",
            flush=True,
        )
    return result


def v2_matrix_body(matrix: np.ndarray) -> bytes:
    """MLServer's (and the floor's) request: one FP32 tensor holding the feature matrix."""
    return orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(matrix.shape),
                    "datatype": "FP32",
                    "data": matrix.ravel().tolist(),
                }
            ]
        }
    )


def prepare(cache: Path, rows: int) -> Path:
    """A trained bundle (trained once, cached)."""
    from flywheel_mlops.registry import Registry
    from flywheel_mlops.testing.quick_train import train_in_process

    registry = cache / "registry"
    store = Registry(str(registry))
    if store.alias(MODEL) is None:
        train_in_process(str(registry), rows=rows, seed=7)
    return store.fetch(MODEL)


def check(value: float, limit: float) -> str:
    return "met" if value <= limit else "missed"


def summary(results: dict[str, ServerResult]) -> dict[str, Any]:
    """The issue's four targets, as ratios."""
    ours = results["flywheel"]
    out: dict[str, Any] = {}
    p50 = ours.level(1)["p50_ms"]
    if "mlserver" in results:
        ratio = p50 / results["mlserver"].level(1)["p50_ms"]
        out["single_row_p50_vs_mlserver"] = {
            "ratio": round(ratio, 3),
            "target": "<= 1.0",
            "verdict": check(ratio, 1.0),
        }
        sat = ours.saturation_rps / max(results["mlserver"].saturation_rps, 1e-9)
        out["saturation_vs_mlserver"] = {
            "ratio": round(sat, 3),
            "target": ">= 1.0",
            "verdict": "met" if sat >= 1.0 else "missed",
        }
    if "floor" in results:
        ratio = p50 / results["floor"].level(1)["p50_ms"]
        out["single_row_p50_vs_floor"] = {
            "ratio": round(ratio, 3),
            "target": "<= 1.3",
            "verdict": check(ratio, 1.3),
        }
        if "kserve" in results:
            # Not a target: how far KServe's own stack with nothing but the booster call already
            # is from the floor, i.e. what of the ratio above any KServe predictor pays.
            bare = results["kserve"].level(1)["p50_ms"] / results["floor"].level(1)["p50_ms"]
            out["kserve_stack_p50_vs_floor"] = {
                "ratio": round(bare, 3),
                "target": "(reference)",
                "verdict": "-",
            }
    binary = ours.batch["batch-1000 V2 binary"]["p50_ms"]
    as_json = ours.batch["batch-1000 V2 JSON"]["p50_ms"]
    out["batch_1000_binary_vs_json"] = {
        "ratio": round(binary / as_json, 3),
        "target": "<= 0.5",
        "verdict": check(binary / as_json, 0.5),
    }
    return out


def _level(result: dict[str, Any], connections: int) -> dict[str, Any]:
    return next(x for x in result["levels"] if x["connections"] == connections)


_MEASURES: list[tuple[str, Any]] = [
    ("single row, 1 client: p50 ms", lambda r: f"{_level(r, 1)['p50_ms']:.2f}"),
    ("single row, 1 client: p99 ms", lambda r: f"{_level(r, 1)['p99_ms']:.2f}"),
    ("single row, 8 clients: p99 ms", lambda r: f"{_level(r, 8)['p99_ms']:.2f}"),
    ("single row, 8 clients: req/s", lambda r: f"{_level(r, 8)['rps']:.0f}"),
    (f"saturation req/s (p99 < {P99_BUDGET_MS:g} ms)", lambda r: f"{r['saturation_rps']:.0f}"),
    ("batch 1000, V2 JSON: p50 ms", lambda r: f"{r['batch']['batch-1000 V2 JSON']['p50_ms']:.2f}"),
    (
        "batch 1000, V2 binary: p50 ms",
        lambda r: f"{r['batch']['batch-1000 V2 binary']['p50_ms']:.2f}",
    ),
]


def markdown(report: dict[str, Any]) -> str:
    """The results table for docs/serving.md (with the earlier run's Flywheel column, if any)."""
    columns = dict(report["servers"])
    before = report.get("before")
    if before:
        columns = {"flywheel": columns.pop("flywheel"), "flywheel before": before["flywheel"]}
        columns |= report["servers"]
    lines = ["| measure | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for label, get in _MEASURES:
        cells = []
        for result in columns.values():
            try:
                cells.append(get(result))
            except (KeyError, StopIteration):
                cells.append("-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    head = ["target", "measured", *(["before"] if before else []), "wanted", "verdict"]
    targets = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, t in report["targets"].items():
        earlier = [str(before["targets"].get(name, {}).get("ratio", "-"))] if before else []
        cells = [name.replace("_", " "), str(t["ratio"]), *earlier, t["target"], t["verdict"]]
        targets.append("| " + " | ".join(cells) + " |")
    note = f"\n\n_flywheel before: {before['note']}_" if before else ""
    return "\n".join(lines) + note + "\n\n" + "\n".join(targets) + "\n"


def write_docs(path: Path, report: dict[str, Any]) -> None:
    """Replace the generated block of docs/serving.md (or append one)."""
    begin, end = "<!-- serving-bench:begin -->", "<!-- serving-bench:end -->"
    block = (
        f"{begin}\n_Generated by `benchmarks/serving_bench.py` on {report['when']} "
        f"({report['machine']}; load generator: {report['load_generator']}, "
        f"{report['seconds_per_run']} s per run)._\n\n{markdown(report)}{end}"
    )
    text = path.read_text() if path.exists() else "# Serving\n\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n## Benchmark\n\n" + block + "\n"
    path.write_text(text)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start each server in turn, measure it, stop it; return the report."""
    from flywheel_mlops.registry.bundle import load_bundle
    from flywheel_mlops.serving.records import frame_to_records
    from flywheel_mlops.testing.v2_body import binary_body, json_body

    cache = Path(args.cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    bundle_dir = prepare(cache, args.train_rows)
    bundle = load_bundle(bundle_dir)
    reference = bundle.reference()[bundle.schema.names]
    rows = reference.head(BATCH)
    features = bundle.features.transform(bundle.schema.frame_from_records(frame_to_records(rows)))
    load = (
        wrk
        if (args.load == "wrk" or (args.load == "auto" and shutil.which("wrk")))
        else python_load
    )
    work = Path(tempfile.mkdtemp(prefix="flywheel-serving-bench-"))
    json_type = {"content-type": "application/json"}
    single_v1 = Request(
        f"/v1/models/{MODEL}:predict",
        orjson.dumps({"instances": frame_to_records(rows.head(1))}),
        json_type,
    )
    binary, binary_headers = binary_body(rows, bundle.schema)
    ours_batches = {
        "batch-1000 V2 JSON": Request(
            f"/v2/models/{MODEL}/infer", json_body(rows, bundle.schema), json_type
        ),
        "batch-1000 V2 binary": Request(f"/v2/models/{MODEL}/infer", binary, binary_headers),
    }
    results: dict[str, ServerResult] = {}
    plan: list[str] = ["flywheel", "floor", "kserve"] + ([] if args.skip_mlserver else ["mlserver"])
    for name in plan:
        port = free_port()
        if name == "flywheel":
            server = start(
                name,
                [
                    sys.executable,
                    "-m",
                    "flywheel_inference",
                    "--model_name",
                    MODEL,
                    "--model_dir",
                    str(bundle_dir),
                    "--host",
                    "127.0.0.1",
                    "--http_port",
                    str(port),
                ],
                port,
                f"/v2/models/{MODEL}/ready",
                work,
            )
            single, batches = single_v1, ours_batches
        elif name == "floor":
            server = start(
                name,
                [
                    sys.executable,
                    __file__,
                    "floor",
                    "--port",
                    str(port),
                    "--model",
                    str(bundle_dir / "model.ubj"),
                ],
                port,
                "/",
                work,
                env=ONE_THREAD,
            )
            single = Request("/infer", v2_matrix_body(features[:1]), json_type)
            batches = {"batch-1000 V2 JSON": Request("/infer", v2_matrix_body(features), json_type)}
        elif name == "kserve":
            server = start(
                name,
                [
                    sys.executable,
                    __file__,
                    "kserve",
                    "--port",
                    str(port),
                    "--model",
                    str(bundle_dir / "model.ubj"),
                ],
                port,
                "/v2/models/booster/ready",
                work,
                env=ONE_THREAD,
            )
            path = "/v2/models/booster/infer"
            single = Request(path, v2_matrix_body(features[:1]), json_type)
            batches = {"batch-1000 V2 JSON": Request(path, v2_matrix_body(features), json_type)}
        else:
            venv = install_mlserver(cache)
            models = work / "mlserver"
            (models / MLSERVER_MODEL).mkdir(parents=True, exist_ok=True)
            shutil.copy(bundle_dir / "model.ubj", models / MLSERVER_MODEL / "model.ubj")
            (models / MLSERVER_MODEL / "model-settings.json").write_text(
                json.dumps(
                    {
                        "name": MLSERVER_MODEL,
                        "implementation": "mlserver_xgboost.XGBoostModel",
                        "parameters": {"uri": "./model.ubj"},
                    }
                )
            )
            (models / "settings.json").write_text(
                json.dumps(
                    {
                        "host": "127.0.0.1",
                        "http_port": port,
                        "grpc_port": free_port(),
                        "metrics_port": free_port(),
                        "parallel_workers": args.mlserver_workers,
                        "debug": False,
                    }
                )
            )
            server = start(
                name,
                [str(venv / "bin" / "mlserver"), "start", str(models)],
                port,
                f"/v2/models/{MLSERVER_MODEL}/ready",
                work,
                cwd=models,
                env=ONE_THREAD,
            )
            path = f"/v2/models/{MLSERVER_MODEL}/infer"
            single = Request(path, v2_matrix_body(features[:1]), json_type)
            batches = {"batch-1000 V2 JSON": Request(path, v2_matrix_body(features), json_type)}
        try:
            print(f"{name}: listening on {listening_addresses(server.process.pid)}", flush=True)
            results[name] = bench_server(server, single, batches, load, args.duration, work)
        finally:
            server.stop()
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "load_generator": "wrk" if load is wrk else "python threads",
        "seconds_per_run": args.duration,
        "bundle": {
            "path": str(bundle_dir),
            "version": bundle.version,
            "features": int(features.shape[1]),
        },
        "mlserver": {
            "pins": [*MLSERVER_PINS, MLSERVER_RUNTIME],
            "parallel_workers": args.mlserver_workers,
        },
        "servers": {
            name: {**asdict(r), "saturation_rps": round(r.saturation_rps, 1)}
            for name, r in results.items()
        },
    }
    report["targets"] = summary(results)
    if args.before:
        earlier = json.loads(Path(args.before).read_text())
        report["before"] = {
            "when": earlier["when"],
            "note": f"{args.before_note} (run of {earlier['when']})",
            "flywheel": earlier["servers"]["flywheel"],
            "targets": earlier["targets"],
        }
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    floor = sub.add_parser("floor", help="Serve the bare floor (used by the benchmark itself).")
    floor.add_argument("--port", type=int, required=True)
    floor.add_argument("--model", required=True)
    bare = sub.add_parser("kserve", help="Serve KServe + the booster (used by the benchmark).")
    bare.add_argument("--port", type=int, required=True)
    bare.add_argument("--model", required=True)
    parser.add_argument("--duration", type=float, default=5.0, help="Seconds per measurement.")
    parser.add_argument(
        "--cache-dir",
        default="~/.cache/flywheel-bench",
        help="Trained bundle and MLServer's virtual environment live here.",
    )
    parser.add_argument("--train-rows", type=int, default=5000, help="Trips to train on.")
    parser.add_argument(
        "--load",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="Load generator (auto: wrk when installed).",
    )
    parser.add_argument("--skip-mlserver", action="store_true", help="Leave MLServer out.")
    parser.add_argument(
        "--mlserver-workers",
        type=int,
        default=0,
        help="MLServer parallel_workers (0: inference in the server process, "
        "its fastest setting for single rows).",
    )
    parser.add_argument(
        "--before",
        help="An earlier results file whose Flywheel numbers the table shows next to this run's.",
    )
    parser.add_argument(
        "--before-note", default="an earlier version", help="What the earlier run measured."
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serving.json"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "serving.md"))
    args = parser.parse_args(argv)
    if args.command == "floor":
        run_floor(args.port, args.model)
        return
    if args.command == "kserve":
        run_kserve(args.port, args.model)
        return
    report = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    write_docs(Path(args.docs), report)
    print()
    print(markdown(report))
    print(f"wrote {out} and {args.docs}")


if __name__ == "__main__":
    main()
