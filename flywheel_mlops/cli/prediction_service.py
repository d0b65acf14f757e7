"""`flywheel prediction-service`: the payload-logger sink and feedback API on uvicorn."""

from __future__ import annotations

import functools
from typing import Annotated, Any

import typer

from flywheel_mlops.cli.common import console


def prediction_service(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0: every one).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    database_url: Annotated[
        str,
        typer.Option(
            help="SQLAlchemy URL of the prediction log. "
            "Default: FLYWHEEL_DATABASE_URL, else SQLite "
            "under FLYWHEEL_HOME."
        ),
    ] = "",
    max_body_bytes: Annotated[
        int | None,
        typer.Option(help="Largest request body in bytes; larger gets 413. Default: 8 MiB."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve /v1/events (KServe payload logger), /v1/feedback, /healthz, /readyz, /metrics.

    The bearer token comes from FLYWHEEL_API_TOKEN only, so it never shows in a process list.
    """
    import uvicorn

    from flywheel_mlops.edge.limits import uvicorn_options
    from flywheel_mlops.predictions.service import ServiceSettings, create_app

    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    if max_body_bytes is not None:
        overrides["max_body_bytes"] = max_body_bytes
    service = ServiceSettings(**overrides)
    auth = "bearer token required" if service.api_token else "no authentication"
    console.print(
        f"prediction service on http://{host}:{port} ({auth}) - POST /v1/events, POST /v1/feedback"
    )
    uvicorn.run(
        create_app(service),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=10,
        **uvicorn_options(service.edge_limits()),
    )


# The command's name before 0.2, kept (hidden) so manifests that still run it keep starting;
# `wraps` gives typer the signature of `prediction_service`, so the options stay identical.
@functools.wraps(prediction_service)
def monitoring_service(**options: Any) -> None:
    typer.echo(
        "warning: `flywheel monitoring-service` is deprecated; "
        "use `flywheel prediction-service` (same options).",
        err=True,
    )
    prediction_service(**options)
