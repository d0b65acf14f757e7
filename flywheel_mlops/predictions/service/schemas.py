"""Request and response bodies of the prediction service: the OpenAPI schemas clients see."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from flywheel_mlops.edge.request_ids import REQUEST_ID_MAX, REQUEST_ID_PATTERN

RequestId = Annotated[
    str,
    Field(
        pattern=REQUEST_ID_PATTERN,
        description="The request id the predictor returned (V1 `request_id`, V2 `id`): 1 to "
        f"{REQUEST_ID_MAX} visible ASCII characters, the one rule every request id follows.",
    ),
]


class FeedbackIn(BaseModel):
    """The actual outcome of one predicted record."""

    model_config = ConfigDict(extra="forbid")

    request_id: RequestId
    actual: Annotated[
        float,
        Field(
            strict=True,  # a number: not true, not "3"
            ge=0,
            allow_inf_nan=False,
            description="The observed value, e.g. minutes until pickup.",
        ),
    ]
    row: Annotated[
        int, Field(ge=0, lt=2**31, description="Index of the record in its request.")
    ] = 0


def _feedback_shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "items" in value else "single"


def feedback_body(max_items: int) -> Any:
    """The feedback request body: one item, or `{"items": [...]}` with 1..max_items items."""
    batch = create_model(
        "FeedbackBatch",
        __config__=ConfigDict(extra="forbid"),
        __doc__="Several actual outcomes at once.",
        items=(list[FeedbackIn], Field(min_length=1, max_length=max_items)),
    )
    return Annotated[
        Annotated[FeedbackIn, Tag("single")] | Annotated[batch, Tag("batch")],
        Discriminator(_feedback_shape),
    ]


class ConflictOut(BaseModel):
    """Feedback for a key that already had a different actual; the stored value was kept."""

    request_id: str
    row: int
    stored: float
    received: float


class FeedbackOut(BaseModel):
    """How feedback was recorded. Every item is in exactly one count."""

    status: Literal["recorded", "pending", "conflict", "buffered"]
    detail: str
    joined: int = Field(description="Stored; its prediction is in the log.")
    pending: int = Field(description="Stored; joins its prediction when that arrives.")
    duplicates: int = Field(description="Same value already stored: nothing changed.")
    conflicts: list[ConflictOut] = Field(description="Different value already stored: kept.")
    buffered: int = Field(description="Held in memory while the database is down; written later.")


class RefusalOut(BaseModel):
    """An event not taken, or a call whose rows were not stored; nothing of it was kept."""

    index: int = Field(description="Position of the event in the delivery (0 in binary mode).")
    id: str = Field(description="The event's id as sent (shortened, ASCII-escaped).")
    reason: str = Field(description="What was expected and what was found.")


class EventsOut(BaseModel):
    """What became of a delivery of payload-logger events: each event is taken or refused."""

    events: int = Field(description="Events in the delivery.")
    paired: int = Field(description="Calls completed by this delivery (request and response).")
    rows: int = Field(description="Prediction rows those calls carried.")
    waiting: int = Field(description="Halves now waiting for their pair (service-wide).")
    buffered: bool = Field(description="True if the rows wait in memory for the database.")
    refused: list[RefusalOut] = Field(
        default_factory=list, description="Events and calls not stored, with the reason (≤100)."
    )


class Problem(BaseModel):
    """An error: what was expected and what was found."""

    detail: str
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
    buffered_rows: int = 0
    quarantined_rows: int = Field(
        default=0, description="Rows the database refused (logged, never retried) since start."
    )
