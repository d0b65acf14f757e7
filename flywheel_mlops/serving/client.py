"""A small HTTP client for the predictor's V1 endpoint, used by `flywheel predict` and tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from flywheel_mlops.errors import FlywheelError, InvalidInputError, NotFoundError


@dataclass(frozen=True)
class Prediction:
    """The server's answer to one request."""

    minutes: list[float]
    model_version: str
    request_id: str


class PredictionClient:
    """Sends records to `/v1/models/<name>:predict` and returns the minutes."""

    def __init__(self, url: str, model_name: str, token: str = "", timeout: float = 30.0):
        """
        Args:
            url: the server's base URL (http://127.0.0.1:8080).
            model_name: the model on the endpoint path.
            token: bearer token, when the server requires one.
            timeout: seconds per request.
        """
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.model_name = model_name
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> PredictionClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def predict(self, records: list[dict[str, Any]], request_id: str | None = None) -> Prediction:
        """Minutes for `records`; a 4xx becomes InvalidInputError/NotFoundError with the
        server's message, an unreachable server a FlywheelError saying so."""
        headers = {"x-request-id": request_id} if request_id else {}
        try:
            response = self._http.post(
                f"/v1/models/{self.model_name}:predict",
                json={"instances": records},
                headers=headers,
            )
        except httpx.TransportError as error:
            raise FlywheelError(
                f"no answer from {self.url} ({error}); is `flywheel serve` running?"
            ) from error
        if response.status_code != 200:
            raise _error(response)
        body = response.json()
        return Prediction(body["predictions"], body["model_version"], body["request_id"])


def _error(response: httpx.Response) -> FlywheelError:
    try:
        message = response.json().get("error", response.text)
    except ValueError:
        message = response.text
    text = f"{response.status_code}: {message}"
    if response.status_code == 404:
        return NotFoundError(text)
    if 400 <= response.status_code < 500:
        return InvalidInputError(text)
    return FlywheelError(text)
