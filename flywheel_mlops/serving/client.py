"""Small HTTP clients: the predictor's V1 endpoint (`flywheel predict`) and the prediction
service's feedback API (`flywheel feedback`)."""

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

    def input_names(self) -> list[str]:
        """The model's input fields, from its V2 metadata (`GET /v2/models/<name>`)."""
        try:
            response = self._http.get(f"/v2/models/{self.model_name}")
        except httpx.TransportError as error:
            raise FlywheelError(f"no answer from {self.url} ({error})") from error
        if response.status_code != 200:
            raise _error(response)
        return [str(field["name"]) for field in response.json()["inputs"]]


class FeedbackClient:
    """Posts actual outcomes by request id to the prediction service's `/v1/feedback`."""

    def __init__(self, url: str, token: str = "", timeout: float = 30.0):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> FeedbackClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def post(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Send one item or a batch; the service's account of what it stored. A 409 (a
        different actual already stored) is an answer, not an error: its body says which."""
        body: dict[str, Any] = items[0] if len(items) == 1 else {"items": items}
        try:
            response = self._http.post("/v1/feedback", json=body)
        except httpx.TransportError as error:
            raise FlywheelError(
                f"no answer from {self.url} ({error}); is `flywheel prediction-service` running?"
            ) from error
        if response.status_code not in (200, 202, 409):
            raise _error(response)
        answer: dict[str, Any] = response.json()
        return answer


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
