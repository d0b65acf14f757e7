"""KServe's ModelServer, listening on a chosen interface instead of always 0.0.0.0."""

from __future__ import annotations

import asyncio
from typing import Any

from kserve.model import BaseKServeModel
from kserve.model_server import ModelServer

from flywheel_mlops.edge.limits import EdgeLimits, uvicorn_options


class FlywheelModelServer(ModelServer):
    """ModelServer that binds `host`, bounds what a connection holds, and runs on the event
    loop `--event-loop` asked for.

    KServe 0.21 hard-codes host="0.0.0.0" in RESTServer's uvicorn config and offers no option.
    `setup_event_loop` is the last hook `start()` calls after building the REST server and
    before it binds, so the host is set there. And while KServe takes `--event-loop` (default
    auto: uvloop when installed), its single-process start() runs `asyncio.run`, which ignores
    it; `start` here installs uvloop's policy first, which halves the time spent writing
    responses. Everything else is KServe's own code path.
    """

    def __init__(
        self, host: str = "0.0.0.0", limits: EdgeLimits | None = None, **kwargs: Any
    ) -> None:
        """Args: host: interface to bind; limits: the edge policy whose transport half
        (header buffer, keep-alive) uvicorn enforces; kwargs: ModelServer's own arguments."""
        super().__init__(**kwargs)
        self.host = host
        self.limits = limits or EdgeLimits()

    def start(self, models: list[BaseKServeModel]) -> None:
        """Serve on uvloop when `event_loop` is auto or uvloop (and it is installed)."""
        if self.event_loop in ("auto", "uvloop"):
            try:
                import uvloop
            except ImportError:
                if self.event_loop == "uvloop":
                    raise
            else:
                asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
                # KServe's setup_event_loop() asks for the current loop before asyncio.run.
                asyncio.set_event_loop(asyncio.new_event_loop())
        super().start(models)

    def setup_event_loop(self) -> None:
        """Point the REST server at `host`, then set up the loop as KServe does."""
        rest = getattr(self, "_rest_server", None)
        if rest is not None:
            rest.config.host = self.host
            for name, value in uvicorn_options(self.limits).items():
                setattr(rest.config, name, value)
            # KServe always wraps its app in timing_asgi's TimingMiddleware, which takes two
            # getrusage readings and formats a log line for every request, then hands it to
            # the kserve.trace logger that Flywheel's logging keeps at DEBUG: a tenth of the
            # single-row latency and a quarter of the throughput, spent on lines nobody sees.
            # The request gate already times and logs each request once; nothing else (access
            # log formats are not offered by this server) is added by that hook.
            rest._add_middlewares = _no_middlewares
        super().setup_event_loop()


def _no_middlewares(app: Any) -> None:
    """Stands in for RESTServer._add_middlewares: the request gate does their job."""
