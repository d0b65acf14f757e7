"""The predictor's entry point: KServe's own argument parser and ModelServer, plus Flywheel's parts.

    python -m flywheel_inference --model_name pickup-eta --model_dir /mnt/models
    python -m flywheel_inference --registry_uri flywheel-data/registry --alias champion \
        --watch_interval 1 --host 127.0.0.1 --http_port 8080
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from flywheel_mlops.edge.limits import EdgeLimits
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.serving.bundle_source import BundleSource, ModelDirSource, RegistrySource
from flywheel_mlops.settings import Settings

log = logging.getLogger("flywheel.server")
#: KServe's storage-initializer mounts the InferenceService's storageUri here.
KSERVE_MODEL_DIR = "/mnt/models"
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """KServe's arguments (--http_port, --model_name, --workers...) and Flywheel's.

    Args:
        settings: FLYWHEEL_* environment; supplies the defaults of model name and registry.
    """
    from kserve.model_server import parser as kserve_parser

    parser = argparse.ArgumentParser(
        prog="python -m flywheel_inference",
        parents=[kserve_parser],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Serve a Flywheel model bundle with KServe (V1, V2 REST and gRPC).",
    )
    parser.set_defaults(model_name=settings.model_name)
    source = parser.add_argument_group("where the bundle comes from (one of)")
    source.add_argument(
        "--model_dir",
        default="",
        help=f"Bundle folder or storage URI (KServe mounts the storageUri at "
        f"{KSERVE_MODEL_DIR}, the default when no registry is given).",
    )
    source.add_argument(
        "--registry_uri",
        default="",
        help="Model registry (folder, s3://, gs://); serves --alias of the model. Default: "
        "FLYWHEEL_REGISTRY_URI, unless --model_dir is given (an InferenceService passes "
        "--model_dir while the chart's shared settings also name the registry).",
    )
    parser.set_defaults(registry_from_environment=settings.registry_uri)
    source.add_argument("--alias", default=Alias.CHAMPION, help="Registry alias to serve.")
    source.add_argument(
        "--watch_interval",
        type=float,
        default=0.0,
        help="Seconds between polls of the alias; a new version is verified, "
        "self-tested and swapped in. 0: never.",
    )
    flywheel = parser.add_argument_group("Flywheel serving options")
    flywheel.add_argument(
        "--host",
        default="0.0.0.0",
        help="Interface the HTTP server binds. gRPC (KServe binds it to every "
        "interface) runs only when this is a wildcard address.",
    )
    flywheel.add_argument(
        "--max_batch", type=int, default=10_000, help="Most records in one request."
    )
    flywheel.add_argument(
        "--max_body_bytes",
        type=int,
        default=EdgeLimits.max_body_bytes,
        help="Largest request body (413 beyond).",
    )
    flywheel.add_argument(
        "--max_json_depth",
        type=int,
        default=EdgeLimits.max_json_depth,
        help="Deepest nesting of arrays and objects in a JSON body (400 beyond).",
    )
    flywheel.add_argument(
        "--body_timeout",
        type=float,
        default=EdgeLimits.body_timeout,
        help="Seconds a request body may take to arrive after its headers (408 beyond).",
    )
    flywheel.add_argument(
        "--header_timeout",
        type=float,
        default=EdgeLimits.header_timeout,
        help="Seconds a request's headers may take to arrive; then the connection is closed.",
    )
    flywheel.add_argument(
        "--max_header_bytes",
        type=int,
        default=EdgeLimits.max_header_bytes,
        help="Total size of a request's headers (431 beyond).",
    )
    flywheel.add_argument(
        "--max_concurrency",
        type=int,
        default=64,
        help="Inference requests served at once; more get 503 + Retry-After. 0: no cap.",
    )
    flywheel.add_argument(
        "--offload_rows",
        type=int,
        default=256,
        help="Batches above this many records run on a worker thread.",
    )
    flywheel.add_argument(
        "--nthread",
        type=int,
        default=1,
        help="Threads XGBoost predicts with per request (0: every core; more than one makes "
        "single-row latency collapse when the cores are shared).",
    )
    flywheel.add_argument(
        "--grace_period",
        type=int,
        default=30,
        help="Seconds requests in flight get to finish after SIGTERM.",
    )
    flywheel.add_argument(
        "--logger_url",
        default="",
        help="Prediction service that receives every request and answer as a CloudEvent "
        "(what KServe's logger agent does on a cluster). Empty: off.",
    )
    flywheel.add_argument(
        "--canary_alias",
        default="canary",
        help="With --registry_uri and --watch_interval: the alias whose version gets its "
        "recorded traffic share (a local canary).",
    )
    flywheel.add_argument("--log_level", default="INFO", help="Level of Flywheel's JSON logs.")
    return parser


@dataclass(frozen=True)
class ServerPlan:
    """What `main` will run, decided from the arguments before anything starts."""

    source: BundleSource
    enable_grpc: bool
    grpc_note: str


def plan(args: argparse.Namespace) -> ServerPlan:
    """Pick the bundle source and whether gRPC can run on the requested interface."""
    if args.model_dir and args.registry_uri:
        raise SystemExit("give --model_dir or --registry_uri, not both")
    # An explicit --model_dir wins over the registry the environment names: the setting is a
    # default for `flywheel serve`, not a second instruction.
    registry = args.registry_uri or ("" if args.model_dir else args.registry_from_environment)
    source: BundleSource
    if registry:
        source = RegistrySource(Registry(registry), args.model_name, args.alias, args.nthread)
    else:
        source = ModelDirSource(args.model_dir or KSERVE_MODEL_DIR, args.nthread)
    if args.workers != 1:
        raise SystemExit(
            "--workers must be 1: hot swap and the request gate live in one "
            "process; scale with replicas instead"
        )
    grpc, note = bool(args.enable_grpc), ""
    if grpc and args.host not in _WILDCARD_HOSTS:
        grpc, note = (
            False,
            (
                f"gRPC is off: KServe 0.21 binds it to every interface, and the "
                f"HTTP server was asked to listen on {args.host} only"
            ),
        )
    return ServerPlan(source, grpc, note)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, load the bundle (not ready if it fails), and serve until SIGTERM."""
    settings = Settings()
    args = build_parser(settings).parse_args(argv)
    server_plan = plan(args)

    from fastapi.exceptions import FastAPIDeprecationWarning, RequestValidationError
    from kserve import logging as kserve_logging
    from kserve.model_server import app
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from flywheel_inference import json_logs
    from flywheel_inference.data_plane import FlywheelDataPlane
    from flywheel_inference.errors import request_validation_handler, unparsable_body_handler
    from flywheel_inference.metrics import ServingMetrics
    from flywheel_inference.model_server import FlywheelModelServer
    from flywheel_inference.predictor import PickupPredictor, PredictorLimits
    from flywheel_inference.request_gate import GateOptions, RequestGate
    from flywheel_mlops.predictions.payload_logger import PayloadLogger

    # KServe 0.21 answers V1 with FastAPI's ORJSONResponse, which this FastAPI deprecates with
    # a warning on every request: a multi-line stderr write per prediction.
    warnings.filterwarnings("ignore", category=FastAPIDeprecationWarning)
    if args.log_config_file:
        kserve_logging.configure_logging(args.log_config_file)
    else:
        json_logs.configure(args.log_level.upper())
    if server_plan.grpc_note:
        log.warning(server_plan.grpc_note)

    limits = EdgeLimits(
        max_body_bytes=args.max_body_bytes,
        max_json_depth=args.max_json_depth,
        body_timeout=args.body_timeout,
        header_timeout=args.header_timeout,
        max_header_bytes=args.max_header_bytes,
        keep_alive_timeout=args.timeout_keep_alive,
    )
    metrics = ServingMetrics()
    predictor = PickupPredictor(
        args.model_name,
        server_plan.source,
        metrics,
        PredictorLimits(
            max_batch=args.max_batch,
            offload_rows=args.offload_rows,
            watch_interval=args.watch_interval,
            canary_alias=args.canary_alias,
        ),
        payload_logger=(
            PayloadLogger(args.logger_url, service=args.model_name, token=settings.api_token)
            if args.logger_url
            else None
        ),
    )
    server = FlywheelModelServer(
        host=args.host,
        limits=limits,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,
        max_threads=args.max_threads,
        max_asyncio_workers=args.max_asyncio_workers,
        enable_grpc=server_plan.enable_grpc,
        enable_docs_url=args.enable_docs_url,
        enable_latency_logging=False,
        event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
        grace_period=args.grace_period,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
    )
    server.dataplane = FlywheelDataPlane(model_registry=server.registered_models)
    app.add_middleware(
        RequestGate,
        options=GateOptions(
            limits=limits,
            max_concurrency=args.max_concurrency,
            api_token=settings.api_token,
        ),
        metrics=metrics,
        model_names=server.registered_models.get_models(),
    )
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    app.add_exception_handler(StarletteHTTPException, unparsable_body_handler)

    log.info("loading %s from %s", args.model_name, server_plan.source.describe())
    predictor.load()
    # Registered even when not ready: /v2/models/<name>/ready then answers 503 (not 404), and a
    # later alias move can still make it ready. KServe's start() would refuse to start instead.
    server.register_model(predictor)
    predictor.start()
    # Everything allocated so far (KServe, FastAPI, pandas, the model) lives as long as the
    # process: take it out of the collector's sight, or every full collection walks half a
    # million objects and stalls the event loop for tens of milliseconds (p99 under load).
    gc.freeze()
    server.start([])


if __name__ == "__main__":  # pragma: no cover - `python -m flywheel_inference` goes via __main__
    main(sys.argv[1:])
