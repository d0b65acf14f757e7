"""Evaluate component: test error and slices against the baseline and the champion."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from flywheel_components.image import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def evaluate(
    dataset_spec: str,
    registry_uri: str,
    margin: float,
    model: Input[Model],
    feature_pipeline: Input[Artifact],
    test: Input[Dataset],
    metrics: Output[Metrics],
    evaluation: Output[Artifact],
) -> bool:
    """Score the candidate on the test split.

    Args:
        dataset_spec: the dataset spec as JSON.
        registry_uri: the registry holding the current champion (read only).
        margin: relative MAE improvement over the champion needed for promotion.
        model: the candidate.
        feature_pipeline: the fitted feature pipeline (JSON).
        test: test records (Parquet).
        metrics: headline numbers for the KFP UI.
        evaluation: every number, per slice, baseline and champion included (JSON).
    Returns:
        Whether the candidate beats the rule-based baseline (register reads this, and whether
        it beats the champion, from `evaluation`).
    """
    from flywheel_mlops.training import steps

    result = steps.evaluate(
        dataset_spec,
        registry_uri,
        margin,
        model.path,
        feature_pipeline.path,
        test.path,
        evaluation.path,
    )
    metrics.log_metric("test_mae", result["test"]["mae"])
    metrics.log_metric("test_p90", result["test"]["p90"])
    if "baseline" in result:
        metrics.log_metric("baseline_mae", result["baseline"]["mae"])
    if "champion" in result:
        metrics.log_metric("champion_mae", result["champion"]["mae"])
    return bool(result["beats_baseline"])
