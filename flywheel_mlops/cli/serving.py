"""`flywheel serve` and `flywheel predict`: the KServe predictor on the champion, and a client."""

from __future__ import annotations

import csv
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flywheel_mlops.cli.common import ModelName, console, failures_exit, model_name, settings


def server_command(
    registry: str,
    name: str,
    alias: str,
    host: str,
    port: int,
    watch_interval: float,
    max_batch: int,
    logger_url: str = "",
) -> list[str]:
    """The predictor's command line for a local server on a registry alias."""
    return [
        sys.executable,
        "-m",
        "flywheel_inference",
        "--model_name",
        name,
        "--registry_uri",
        registry,
        "--alias",
        alias,
        "--watch_interval",
        str(watch_interval),
        "--host",
        host,
        "--http_port",
        str(port),
        "--max_batch",
        str(max_batch),
        "--logger_url",
        logger_url,
    ]


def serve(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0: every one).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port (V1 and V2 REST).")] = 8080,
    registry: Annotated[str, typer.Option(help="Registry URI. Default: <home>/registry.")] = "",
    name: ModelName = "",
    alias: Annotated[str, typer.Option(help="Registry alias to serve and follow.")] = "champion",
    watch_interval: Annotated[
        float, typer.Option(help="Seconds between checks of the alias; 0: never swap.")
    ] = 1.0,
    max_batch: Annotated[int, typer.Option(help="Most records in one request.")] = 10_000,
    logger_url: Annotated[
        str, typer.Option(help="Prediction service receiving every request and answer.")
    ] = "",
) -> None:
    """Serve the champion with KServe's model server; swap to each new champion as it is promoted.

    The process becomes `python -m flywheel_inference` (the image's entry point), so signals
    and exit codes are the server's own.
    """
    name = model_name(name)
    from flywheel_mlops.registry import Registry

    uri = registry or settings().registry
    with failures_exit():
        version = Registry(uri).resolve(name, alias)
    console.print(
        f"serving {name}@{alias} ({version}) on http://{host}:{port} "
        f"- V1 /v1/models/{name}:predict, V2 /v2/models/{name}/infer"
    )
    command = server_command(uri, name, alias, host, port, watch_interval, max_batch, logger_url)
    sys.stdout.flush()
    os.execv(command[0], command)


class Output(StrEnum):
    """How `flywheel predict` prints its answers."""

    table = "table"
    json = "json"
    csv = "csv"


def predict(
    file: Annotated[
        Path | None, typer.Argument(help="Records: .json, .jsonl, .csv or .parquet.")
    ] = None,
    record: Annotated[
        list[str] | None,
        typer.Option("--record", "-r", help="One field of a single record, as key=value."),
    ] = None,
    url: Annotated[str, typer.Option(help="Predictor base URL.")] = "http://127.0.0.1:8080",
    name: ModelName = "",
    request_id: Annotated[
        str, typer.Option(help="Request id to send (x-request-id); default: the server's.")
    ] = "",
    inputs_only: Annotated[
        bool,
        typer.Option(
            "--inputs-only",
            help="Drop every column the model does not take (the target, ids), as the model's "
            "V2 metadata lists its inputs.",
        ),
    ] = False,
    output: Annotated[Output, typer.Option(help="table, json or csv (on stdout).")] = Output.table,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 30.0,
) -> None:
    """Send records to the predictor (V1) and print the predictions with the request id that
    feedback is later posted with (`flywheel feedback`)."""
    name = model_name(name)
    from flywheel_mlops.errors import InvalidInputError
    from flywheel_mlops.serving.client import PredictionClient
    from flywheel_mlops.serving.records import parse_pairs, read_records

    with failures_exit():
        if file is None and not record:
            raise InvalidInputError("give a records file or --record key=value ...")
        records = read_records(file) if file is not None else [parse_pairs(record or [])]
        with PredictionClient(url, name, token=settings().api_token, timeout=timeout) as client:
            if inputs_only:
                wanted = set(client.input_names())
                records = [{k: v for k, v in r.items() if k in wanted} for r in records]
            answer = client.predict(records, request_id=request_id or None)
    rows = [
        {"request_id": answer.request_id, "row": index, "prediction": value}
        for index, value in enumerate(answer.minutes)
    ]
    if output is Output.json:
        typer.echo(json.dumps({"model_version": answer.model_version, "predictions": rows}))
        return
    if output is Output.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=["request_id", "row", "prediction"])
        writer.writeheader()
        writer.writerows(rows)
        return
    table = Table(title=f"{name} {answer.model_version} - request {answer.request_id}")
    shown = [c for c in ("request_time", "zone", "distance_km") if records and c in records[0]]
    for column in ("#", *shown, "prediction"):
        table.add_column(column, justify="right" if column in ("#", "prediction") else "left")
    for index, (values, minutes) in enumerate(zip(records, answer.minutes, strict=True)):
        table.add_row(str(index), *(str(values.get(c, "")) for c in shown), f"{minutes:.2f}")
    console.print(table)


def feedback(
    request_id: Annotated[
        str | None, typer.Argument(help="The request id the prediction was answered with.")
    ] = None,
    actual: Annotated[float | None, typer.Argument(help="The observed outcome.")] = None,
    row: Annotated[int, typer.Option(help="The record's index in its request.")] = 0,
    file: Annotated[
        Path | None,
        typer.Option(
            help="Many outcomes: .csv/.json/.jsonl/.parquet with request_id, actual, row."
        ),
    ] = None,
    url: Annotated[
        str, typer.Option(help="Prediction service base URL.")
    ] = "http://127.0.0.1:8000",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 30.0,
) -> None:
    """Post actual outcomes by request id (one, or a file of them) to the prediction service."""
    from flywheel_mlops.errors import InvalidInputError
    from flywheel_mlops.serving.client import FeedbackClient
    from flywheel_mlops.serving.records import read_records

    with failures_exit():
        if file is not None:
            items = [
                {
                    "request_id": str(r["request_id"]),
                    "actual": r["actual"],
                    "row": int(r.get("row") or 0),
                }
                for r in read_records(file)
            ]
        elif request_id is not None and actual is not None:
            items = [{"request_id": request_id, "actual": actual, "row": row}]
        else:
            raise InvalidInputError("give REQUEST_ID ACTUAL, or --file with request_id and actual")
        if not items:
            raise InvalidInputError(f"{file} holds no outcomes")
        with FeedbackClient(url, token=settings().api_token, timeout=timeout) as client:
            answer = client.post(items)
    console.print(f"[bold]{answer['status']}[/bold]: {answer['detail']}")
    if answer.get("conflicts"):
        raise typer.Exit(1)


def _outcome(record: dict[str, object], index: int, file: Path) -> dict[str, object]:
    """One feedback item from a file's record; a missing field is named with its record."""
    from flywheel_mlops.errors import InvalidInputError

    missing = [k for k in ("request_id", "actual") if record.get(k) is None]
    if missing:
        raise InvalidInputError(f"{file}: record {index} has no {' or '.join(missing)}")
    return {
        "request_id": str(record["request_id"]),
        "actual": record["actual"],
        "row": int(record.get("row") or 0),  # type: ignore[call-overload]
    }
