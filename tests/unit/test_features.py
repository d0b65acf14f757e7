"""The feature module: one transformation, stable names, JSON round trip, strict categories."""

import numpy as np
import pandas as pd
import pytest

from flywheel_mlops.errors import InvalidInputError
from flywheel_mlops.features import FeaturePipeline, baseline_prediction


@pytest.fixture(scope="module")
def pipeline(spec, clean_frame) -> FeaturePipeline:
    return FeaturePipeline.fit(spec, clean_frame)


def test_matrix_has_one_named_column_per_feature(pipeline, clean_frame):
    matrix = pipeline.transform(clean_frame)
    assert matrix.shape == (len(clean_frame), len(pipeline.feature_names))
    assert matrix.dtype == np.float32
    assert {"hour_sin", "weekday", "baseline", "zone=Z00", "weather=clear"} <= set(
        pipeline.feature_names
    )


def test_one_hot_columns_mark_exactly_one_category(pipeline, clean_frame):
    matrix = pipeline.transform(clean_frame)
    zone_columns = [i for i, n in enumerate(pipeline.feature_names) if n.startswith("zone=")]
    assert (matrix[:, zone_columns].sum(axis=1) == 1).all()


def test_time_features_follow_the_clock(pipeline):
    frame = pd.DataFrame(
        {c: [1.0, 1.0] for c in pipeline.numeric}
        | {
            "zone": ["Z00", "Z00"],
            "weather": ["clear", "clear"],
            "request_time": pd.to_datetime(["2026-03-07 06:30", "2026-03-09 18:00"]),
        }
    )
    names = pipeline.feature_names
    matrix = pipeline.transform(frame)
    assert matrix[:, names.index("hour")].tolist() == [6.5, 18.0]
    assert matrix[:, names.index("is_weekend")].tolist() == [1.0, 0.0]


def test_json_round_trip_gives_the_same_matrix(pipeline, clean_frame):
    again = FeaturePipeline.from_json(pipeline.to_json())
    assert again == pipeline
    np.testing.assert_array_equal(again.transform(clean_frame), pipeline.transform(clean_frame))


def test_unknown_category_names_column_value_and_record(pipeline, clean_frame):
    frame = clean_frame.head(3).copy()
    frame.loc[2, "zone"] = "Z99"
    with pytest.raises(InvalidInputError, match=r"zone must be one of .* got 'Z99' in record 2"):
        pipeline.transform(frame)


def test_baseline_rule_is_distance_over_speed(spec):
    frame = pd.DataFrame({"distance_km": [5.0, 1.0], "driver_speed": [30.0, 0.0]})
    result = baseline_prediction(spec.baseline, frame)
    assert result[0] == pytest.approx(10.0)
    assert np.isnan(result[1])


def test_declared_categories_are_served_even_if_training_never_saw_them(spec, clean_frame):
    dry = clean_frame[clean_frame["weather"] != "snow"]
    pipeline = FeaturePipeline.fit(spec, dry)
    assert pipeline.categories["weather"] == ["clear", "fog", "rain", "snow"]
    snowy = dry.head(2).assign(weather="snow")
    matrix = pipeline.transform(snowy)
    assert matrix[:, pipeline.feature_names.index("weather=snow")].tolist() == [1.0, 1.0]
