"""The prediction service's Prometheus metrics, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ServiceMetrics:
    """Counters and gauges the service exports on /metrics."""

    def __init__(self) -> None:
        """Create the metrics in a fresh registry."""
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "flywheel_events_received", "CloudEvents received, by kind.", ["kind"], registry=r
        )
        self.rows_logged = Counter(
            "flywheel_prediction_rows_logged",
            "Prediction rows written to the log (new rows only).",
            registry=r,
        )
        self.feedback = Counter(
            "flywheel_feedback_items", "Feedback items, by outcome.", ["outcome"], registry=r
        )
        self.db_errors = Counter("flywheel_db_errors", "Database calls that failed.", registry=r)
        self.buffer_rows = Gauge(
            "flywheel_write_buffer_rows", "Rows waiting in memory for the database.", registry=r
        )
        self.buffer_full = Counter(
            "flywheel_write_buffer_full",
            "Requests refused with 503 because the buffer was full.",
            registry=r,
        )
        self.flush_failures = Counter(
            "flywheel_write_buffer_failed_rows",
            "Rows the database refused (not unreachable): quarantined, logged, not retried.",
            registry=r,
        )
        self.waiting = Gauge(
            "flywheel_events_waiting", "Request/response halves waiting for their pair.", registry=r
        )
        self.evicted = Counter(
            "flywheel_events_evicted", "Halves evicted before their pair arrived.", registry=r
        )
        self.refused_events = Counter(
            "flywheel_events_refused",
            "Events (or the calls they completed) refused one by one inside a delivery.",
            registry=r,
        )
        self.rejected = Counter(
            "flywheel_requests_rejected",
            "Requests answered 4xx, by status.",
            ["status"],
            registry=r,
        )
