"""The batch prediction histogram agrees with Prometheus' own, one observation at a time."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.utils import floatToGoString

from flywheel_inference.metrics import MINUTE_BUCKETS, ServingMetrics


def test_batch_histogram_matches_observing_values_one_by_one() -> None:
    values = np.array([0.5, 1.0, 1.0001, 7.5, 12.0, 179.9, 500.0, 3.0, float("nan")])
    ours = CollectorRegistry()
    ServingMetrics(ours).predictions.observe_many("m", values)
    reference = CollectorRegistry()
    plain = Histogram(
        "flywheel_prediction_minutes",
        "x",
        ["model_name"],
        buckets=MINUTE_BUCKETS,
        registry=reference,
    )
    for value in values[np.isfinite(values)]:
        plain.labels("m").observe(value)
    for bound in [*MINUTE_BUCKETS, float("inf")]:
        labels = {"model_name": "m", "le": floatToGoString(bound)}
        expected = reference.get_sample_value("flywheel_prediction_minutes_bucket", labels)
        assert expected is not None
        assert ours.get_sample_value("flywheel_prediction_minutes_bucket", labels) == expected
    assert ours.get_sample_value("flywheel_prediction_minutes_count", {"model_name": "m"}) == 8
    assert np.isclose(
        ours.get_sample_value("flywheel_prediction_minutes_sum", {"model_name": "m"}),
        np.nansum(values),
    )
