"""The predictor's own Prometheus metrics, next to the per-stage histograms KServe already exports.

KServe 0.21 exposes `request_preprocess_seconds`, `request_predict_seconds` and
`request_postprocess_seconds` per model at /metrics; these add what it does not count: every
answer by protocol and status (rejections included), end-to-end latency, the distribution of
predicted minutes, which version is served, and hot swaps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
MINUTE_BUCKETS = (1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0)


class PredictionHistogram(Collector):
    """A histogram fed a whole batch at once: numpy bins 1,000 predictions in microseconds,
    where `Histogram.observe` per value would cost a millisecond on the request path."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]):
        self._name = name
        self._documentation = documentation
        self._bounds = np.asarray(buckets, dtype=np.float64)
        self._counts: dict[str, np.ndarray] = {}
        self._sums: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe_many(self, model: str, values: np.ndarray) -> None:
        """Add every value of a batch to the model's histogram."""
        finite = values[np.isfinite(values)]
        # Bucket i counts values <= bound i; the last slot is +Inf.
        slots = np.searchsorted(self._bounds, finite, side="left")
        counts = np.bincount(slots, minlength=len(self._bounds) + 1)
        with self._lock:
            if model not in self._counts:
                self._counts[model] = np.zeros(len(self._bounds) + 1, dtype=np.int64)
                self._sums[model] = 0.0
            self._counts[model] += counts
            self._sums[model] += float(finite.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """Cumulative buckets, as Prometheus expects them."""
        family = HistogramMetricFamily(self._name, self._documentation, labels=["model_name"])
        with self._lock:
            for model, counts in self._counts.items():
                cumulative = np.cumsum(counts)
                buckets = [
                    (floatToGoString(b), float(c))
                    for b, c in zip(self._bounds, cumulative, strict=False)
                ]
                buckets.append(("+Inf", float(cumulative[-1])))
                family.add_metric([model], buckets, self._sums[model])
        yield family

    def describe(self) -> Iterator[HistogramMetricFamily]:
        """Register without collecting."""
        yield HistogramMetricFamily(self._name, self._documentation, labels=["model_name"])


class ServingMetrics:
    """Every metric the predictor and its request gate update, registered once per process."""

    def __init__(self, registry: CollectorRegistry = REGISTRY):
        """Args: registry: where to register (a fresh CollectorRegistry in unit tests)."""
        self.requests = Counter(
            "flywheel_requests",
            "Inference requests answered, by protocol and HTTP status.",
            ["model_name", "protocol", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "flywheel_request_seconds",
            "Time from request to response, by protocol.",
            ["model_name", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.requests_per_call = Histogram(
            "flywheel_requests_per_model_call",
            "Requests answered by one model call (requests arriving together share one).",
            ["model_name"],
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=registry,
        )
        self.inflight = Gauge(
            "flywheel_inflight_requests", "Inference requests being served now.", registry=registry
        )
        self.predictions = PredictionHistogram(
            "flywheel_prediction_minutes",
            "Predicted minutes, one observation per record.",
            MINUTE_BUCKETS,
        )
        registry.register(self.predictions)
        self.model = Info(
            "flywheel_model", "The bundle being served.", ["model_name"], registry=registry
        )
        self.ready = Gauge(
            "flywheel_model_ready",
            "1 when the model passed its self-test and serves.",
            ["model_name"],
            registry=registry,
        )
        self.canary = Gauge(
            "flywheel_canary_percent",
            "Share of requests the canary version serves now (no series: no canary).",
            ["model_name", "version"],
            registry=registry,
        )
        self.swaps = Counter(
            "flywheel_model_swaps",
            "Hot swaps to a new version, by outcome.",
            ["model_name", "outcome"],
            registry=registry,
        )
