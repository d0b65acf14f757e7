"""The few exception types Flywheel raises, each mapped once to an HTTP status and an exit code."""

from __future__ import annotations


class FlywheelError(Exception):
    """Base of every error Flywheel raises on purpose."""

    status_code = 500
    exit_code = 1


class InvalidInputError(FlywheelError):
    """Input does not match what was declared: a field, a type, a range, a category."""

    status_code = 400
    exit_code = 2


class ConfigError(FlywheelError):
    """A configuration file or option is wrong; the message names the key and what was expected."""

    status_code = 400
    exit_code = 2


class ValidationFailed(FlywheelError):
    """A data batch failed the validation gate; carries the readable report."""

    status_code = 422
    exit_code = 3

    def __init__(self, message: str, report: dict[str, object]):
        super().__init__(message)
        self.report = report


class BundleIntegrityError(FlywheelError):
    """A model bundle file is missing, unexpected or does not match its sha256 in the manifest."""

    status_code = 503
    exit_code = 4


class NotFoundError(FlywheelError):
    """A model, version, alias or record that was asked for does not exist."""

    status_code = 404
    exit_code = 5
