"""Featurize: fit the shared feature pipeline and the input schema on clean training records."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flywheel_mlops.features import FeaturePipeline
from flywheel_mlops.schema import InputSchema
from flywheel_mlops.spec import DatasetSpec


def featurize(spec: DatasetSpec, frame: pd.DataFrame) -> tuple[FeaturePipeline, InputSchema]:
    """Learn category vocabularies and the request schema the predictor will enforce.

    The transformation itself is `FeaturePipeline.transform`, which train, evaluate and the
    predictor all call: there is no second copy of it anywhere.
    """
    pipeline = FeaturePipeline.fit(spec, frame)
    integer_columns = [
        c
        for c in spec.numeric
        if c in frame.columns
        and np.all(np.mod(frame[c].dropna().to_numpy(), 1) == 0)
        and c in spec.ranges
    ]
    schema = InputSchema.from_spec(spec, pipeline.categories, integer_columns)
    return pipeline, schema
