"""Structured logs for the predictor: one JSON object per line, the request id as a field.

KServe's own loggers and uvicorn's are routed through the same formatter, so a log shipper sees
one format. KServe logs a full traceback for every rejected request; `ClientErrorFilter` drops
those, because the request gate already wrote the one line that rejection deserves.
"""

from __future__ import annotations

import logging
import logging.config
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson
from kserve import errors as kserve_errors

#: LogRecord attributes that are not extra fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_CLIENT_ERRORS = (
    kserve_errors.InvalidInput,
    kserve_errors.ModelNotFound,
    kserve_errors.ModelNotReady,
    kserve_errors.ServerNotLive,
    kserve_errors.ServerNotReady,
    kserve_errors.UnsupportedProtocol,
    NotImplementedError,
)


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record; an exception goes in as one string field, not extra lines."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        try:
            return orjson.dumps(entry, default=str).decode()
        except orjson.JSONEncodeError:  # text a client sent (a lone surrogate): escape it
            return orjson.dumps(_printable(entry), default=str).decode()


def _printable(value: Any) -> Any:
    """`value` with every string made encodable (lone surrogates written as escapes)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


class ClientErrorFilter(logging.Filter):
    """Drops KServe's traceback records for errors that are the client's, not the server's."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record carrying a client error (already logged once by the gate)."""
        if record.exc_info and record.exc_info[1] is not None:
            return not isinstance(record.exc_info[1], _CLIENT_ERRORS)
        return True


def configure(level: str = "INFO") -> None:
    """Route Flywheel's, KServe's and uvicorn's loggers to stderr as JSON lines.

    uvicorn's access log is off (the gate writes one richer line per inference request) and
    KServe's per-request timing lines are kept at DEBUG.
    """
    # The JSON line carries none of the caller's file and line, thread or process names, so
    # the logging module need not look them up for every record: the stack walk alone is a
    # good part of what one log line costs (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"json": {"()": JsonFormatter}},
            "filters": {"client_errors": {"()": ClientErrorFilter}},
            "handlers": {
                "json": {
                    "class": "logging.StreamHandler",
                    "formatter": "json",
                    "filters": ["client_errors"],
                    "stream": sys.stderr,
                }
            },
            "loggers": {
                "flywheel": {"handlers": ["json"], "level": level, "propagate": False},
                "kserve": {"handlers": ["json"], "level": level, "propagate": False},
                "kserve.trace": {"handlers": ["json"], "level": "WARNING", "propagate": False},
                "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
                "uvicorn.error": {"level": level},
                "uvicorn.access": {"handlers": ["json"], "level": "WARNING", "propagate": False},
            },
            "root": {"handlers": ["json"], "level": "WARNING"},
        }
    )
