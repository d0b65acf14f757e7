"""The KServe model that serves a Flywheel bundle: V1 records or V2 columns in, minutes out."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any

import kserve
import numpy as np
import pandas as pd
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferRequest, InferResponse

from flywheel_inference.errors import to_kserve
from flywheel_inference.metrics import ServingMetrics
from flywheel_inference.v2_tensors import (
    columns_from_request,
    infer_response,
    input_metadata,
    v2_log_bodies,
)
from flywheel_mlops.edge.request_ids import new_request_id, request_id_problem
from flywheel_mlops.errors import FlywheelError, InvalidInputError
from flywheel_mlops.predictions.cloudevents import EVENT_TIME_FIELD
from flywheel_mlops.predictions.payload_logger import PayloadLogger
from flywheel_mlops.schema import Columns
from flywheel_mlops.serving.alias_watcher import AliasWatcher, CanarySplit
from flywheel_mlops.serving.bundle_source import BundleSource, RegistrySource
from flywheel_mlops.serving.coalescer import Coalescer
from flywheel_mlops.serving.routing import serves_canary
from flywheel_mlops.serving.served_model import ServedModel

log = logging.getLogger("flywheel.predictor")
REQUEST_ID = "x-request-id"
MODEL_VERSION = "x-model-version"


@dataclass(frozen=True)
class PredictorLimits:
    """Per-request limits of the predictor."""

    max_batch: int = 10_000
    """Most records one request may hold."""

    offload_rows: int = 256
    """Batches larger than this are predicted on a worker thread so small requests keep flowing."""

    watch_interval: float = 0.0
    """Seconds between polls of the registry alias; 0 serves the loaded version until restart."""

    canary_alias: str = "canary"
    """Registry alias whose version gets its recorded share of requests (a local canary)."""


class PickupPredictor(kserve.Model):
    """Serves one bundle at a time and can swap to a newer one without dropping a request.

    Ready only once a bundle is verified against its manifest, loaded, and has reproduced its
    reference predictions; a bundle that fails any of that leaves the model not ready (the
    server still answers health probes) and the reason is logged. Each request reads the
    current bundle once, so a swap in the middle of a request cannot mix two versions.
    """

    def __init__(
        self,
        name: str,
        source: BundleSource,
        metrics: ServingMetrics,
        limits: PredictorLimits | None = None,
        payload_logger: PayloadLogger | None = None,
    ):
        """
        Args:
            name: the model name on the endpoint paths (pickup-eta).
            source: where the bundle comes from (model dir or registry alias).
            metrics: the process's serving metrics.
            limits: per-request limits and the alias polling interval.
            payload_logger: sends every request and answer to the prediction service, as
                KServe's logger agent does on a cluster; None when that agent does it.
        """
        super().__init__(name, return_response_headers=True)
        self.source = source
        self.metrics = metrics
        self.limits = limits or PredictorLimits()
        self.not_ready_reason = "not loaded yet"
        self._served: ServedModel | None = None
        self._swap_lock = threading.Lock()
        self._watcher: AliasWatcher | None = None
        self._canary: tuple[ServedModel, int] | None = None
        self._canary_watcher: AliasWatcher | None = None
        self._payload_logger = payload_logger
        self._payload_logger_started = False
        self._coalescer = Coalescer(
            self.limits.offload_rows, on_call=metrics.requests_per_call.labels(name).observe
        )

    @property
    def served(self) -> ServedModel | None:
        """The bundle answering requests now (None before a successful load)."""
        return self._served

    def load(self) -> bool:
        """Load, verify and self-test the source's bundle; ready only if all of that passed.

        A bundle that fails its hash check or self-test is an expected outcome here, not a
        crash: the reason is logged and kept in `not_ready_reason`, and the server keeps
        running, not ready, so probes and operators can see why.
        """
        try:
            served = self.source.load()
        except FlywheelError as error:
            self.not_ready_reason = str(error)
            self.ready = False
            self.metrics.ready.labels(self.name).set(0)
            log.error(
                "model %s is not ready: %s",
                self.name,
                error,
                extra={"model_name": self.name, "source": self.source.describe()},
            )
            return False
        self._activate(served, reason="loaded")
        return True

    def start(self) -> None:
        """Follow the registry alias when asked to (KServe's Model.start would mark it ready)."""
        if isinstance(self.source, RegistrySource) and self.limits.watch_interval > 0:
            seen = self._served.version if self._served else None
            self._watcher = AliasWatcher(
                self.source.current, self.swap_to, self.limits.watch_interval, seen=seen
            )
            self._watcher.start()
            log.info("following %s every %gs", self.source.describe(), self.limits.watch_interval)
            self._canary_watcher = AliasWatcher(
                self._canary_state, self._follow_canary, self.limits.watch_interval, seen=None
            )
            self._canary_watcher.start()

    def stop(self) -> None:
        """Stop following the alias; KServe calls this when the server shuts down."""
        for watcher in (self._watcher, self._canary_watcher):
            if watcher is not None:
                watcher.stop()
        self._watcher = self._canary_watcher = None
        super().stop()

    def swap_to(self, version: str) -> bool:
        """Load, verify and self-test `version` fully, then serve it; the old one serves until then.

        Returns whether the swap happened; a version that fails is logged and not served.
        """
        if not isinstance(self.source, RegistrySource):
            raise InvalidInputError(f"{self.source.describe()} has no versions to swap to")
        with self._swap_lock:
            current = self._served.version if self._served else None
            try:
                served = self.source.load(version)
            except FlywheelError as error:
                self.metrics.swaps.labels(self.name, "rejected").inc()
                log.error(
                    "kept %s: version %s failed to load: %s",
                    current,
                    version,
                    error,
                    extra={"model_name": self.name, "rejected_version": version},
                )
                return False
            self._activate(served, reason=f"swapped from {current}")
            self.metrics.swaps.labels(self.name, "swapped").inc()
            return True

    def _canary_state(self) -> CanarySplit | None:
        """The canary alias's version and traffic share, or None when there is no canary."""
        assert isinstance(self.source, RegistrySource)
        record = self.source.registry.alias(self.source.name, self.limits.canary_alias)
        if record is None or not record.version:
            return None
        return CanarySplit(record.version, record.traffic_percent or 0)

    def _follow_canary(self, state: CanarySplit | None) -> None:
        """Start, change or end the canary split; a canary that fails its checks never serves."""
        if state is None:
            if self._canary is not None:
                log.info("canary %s ended", self._canary[0].version)
            self._canary = None
            self.metrics.canary.clear()
            return
        version, percent = state.version, state.percent
        assert isinstance(self.source, RegistrySource)
        try:
            served = self.source.load(version)
        except FlywheelError as error:
            log.error(
                "canary %s not served: %s",
                version,
                error,
                extra={"model_name": self.name, "rejected_version": version},
            )
            return
        self._canary = (served, int(percent))
        self.metrics.canary.clear()
        self.metrics.canary.labels(self.name, version).set(int(percent))
        log.info(
            "canary %s takes %s%% of requests",
            version,
            percent,
            extra={"model_name": self.name, "model_version": version},
        )

    def _route(self, request_id: str) -> ServedModel | None:
        """The bundle for this request: the canary for its share of request ids, else the
        champion. Hashing the id (not a coin toss) makes a retried request land the same way."""
        canary = self._canary
        if canary is not None and serves_canary(request_id, canary[1]):
            return canary[0]
        return self._served

    async def _log_payload(
        self, request_id: str, request: dict[str, Any], response: dict[str, Any]
    ) -> None:
        """Hand the exchange to the payload logger (never blocks the answer)."""
        logger = self._payload_logger
        if logger is None:
            return
        if not self._payload_logger_started:
            self._payload_logger_started = True
            await logger.start()
        logger.log(request_id, request, response)

    def _activate(self, served: ServedModel, reason: str) -> None:
        # One reference assignment: a request sees the old bundle or the new one, never a mix.
        self._served = served
        self.not_ready_reason = ""
        self.ready = True
        self.metrics.model.labels(self.name).info(
            {"version": served.version, "family": served.family, "path": str(served.bundle.path)}
        )
        self.metrics.ready.labels(self.name).set(1)
        log.info(
            "serving %s %s (%s)",
            self.name,
            served.version,
            reason,
            extra={"model_name": self.name, "model_version": served.version},
        )

    def get_input_types(self) -> list[dict[str, Any]]:
        """V2 metadata: one input per schema field."""
        return input_metadata(self._served.bundle.schema) if self._served else []

    def get_output_types(self) -> list[dict[str, Any]]:
        """V2 metadata: the predicted minutes."""
        name = self._served.target if self._served else "prediction"
        return [{"name": name, "datatype": "FP64", "shape": [-1]}]

    async def predict(
        self,
        payload: dict[str, Any] | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        """Answer a V1 body ({"instances": [...]}) or a V2 InferRequest (REST or gRPC).

        Raises KServe's InvalidInput (400) for anything the schema rejects, naming the field,
        the record and what was expected.
        """
        request_id = _request_id(headers, payload)
        served = self._route(request_id)
        if served is None:
            # The reason (file paths included) is in the server's log, not in answers to clients.
            raise ModelNotReady(self.name, "Its bundle failed verification; see the server log.")
        try:
            columns: dict[str, Any] = {}
            if isinstance(payload, InferRequest):
                columns = columns_from_request(payload, served.bundle.schema, self.limits.max_batch)
                rows = len(next(iter(columns.values())))
                predictions = await self._run(rows, served.check_columns, columns, served)
            else:
                records = _v1_instances(payload, self.limits.max_batch)
                predictions = await self._run(len(records), served.check_records, records, served)
            self.metrics.predictions.observe_many(self.name, predictions)
            if response_headers is not None:
                response_headers[REQUEST_ID] = request_id
                response_headers[MODEL_VERSION] = served.version
            response: dict[str, Any] | InferResponse
            if isinstance(payload, InferRequest):
                response = infer_response(
                    payload,
                    self.name,
                    served.version,
                    request_id,
                    served.target,
                    predictions,
                    served.event_time_field,
                )
            else:
                response = {
                    "predictions": predictions.tolist(),
                    "model_name": self.name,
                    "model_version": served.version,
                    "request_id": request_id,
                }
                if served.event_time_field:
                    response[EVENT_TIME_FIELD] = served.event_time_field
        except FlywheelError as error:
            raise to_kserve(error, self.name) from error
        if isinstance(payload, InferRequest):
            # Built from what was predicted, not from to_rest(): binary tensors and binary
            # outputs have no JSON form there, and every answered call must reach the log.
            logged = v2_log_bodies(payload, columns, request_id, served, self.name, predictions)
            await self._log_payload(request_id, *logged)
        else:
            await self._log_payload(request_id, payload, response)
        return response

    async def _run(self, rows: int, check: Any, data: Any, served: ServedModel) -> np.ndarray:
        """Small batches: checked and featurized inline, then predicted in one model call with
        the other requests of this loop turn. Large ones: all of it on a worker thread."""

        if rows <= self.limits.offload_rows:
            matrix = served.features(check(data))
            return await self._coalescer.predict(served, served.predict_matrix, matrix)

        def work() -> np.ndarray:
            columns: Columns | pd.DataFrame = check(data)
            return served.predict(columns)

        return await asyncio.get_running_loop().run_in_executor(None, work)


def _v1_instances(payload: Any, max_batch: int) -> list[Any]:
    """The records of a V1 body, after checking its shape (the schema checks each record)."""
    if isinstance(payload, bytes | str):
        raise InvalidInput('the body must be JSON: {"instances": [{...}, ...]}')
    if not isinstance(payload, dict):
        raise InvalidInputError(
            f'the body must be a JSON object {{"instances": [...]}}, got {_json_type(payload)}'
        )
    if "instances" not in payload:
        raise InvalidInputError(
            f'the body must hold "instances": a list with one object per '
            f"record; got keys {sorted(payload)}"
        )
    records = payload["instances"]
    if not isinstance(records, list):
        raise InvalidInputError(f"instances must be a list of objects, got {_json_type(records)}")
    if len(records) > max_batch:
        raise InvalidInputError(
            f"instances holds {len(records)} records; at most {max_batch} are accepted per request"
        )
    return records


def _request_id(headers: dict[str, str] | None, payload: Any) -> str:
    """The client's x-request-id, else the V2 request's id, else a new one.

    A header id that breaks the request id rule is replaced (the HTTP gate has done so already
    and said so; this covers gRPC); a V2 `id` that breaks it is refused with 400 before
    anything is predicted, since the client named the call by it.
    """
    given = headers.get(REQUEST_ID) if headers else None
    if given:
        return given if request_id_problem(given) is None else new_request_id()
    if isinstance(payload, InferRequest) and payload.id:
        problem = request_id_problem(payload.id)
        if problem is not None:
            raise InvalidInput(f"id (the request id) {problem}")
        return str(payload.id)
    return new_request_id()


def _json_type(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)
