"""Train component: candidate families, the cheapest accurate one wins."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from flywheel_components.image import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def train(
    dataset_spec: str,
    feature_pipeline: Input[Artifact],
    train: Input[Dataset],
    validation: Input[Dataset],
    families: list,
    search_seconds: float,
    tolerance: float,
    seed: int,
    model: Output[Model],
    candidates: Output[Artifact],
) -> str:
    """Fit each family, optionally search hyper-parameters for search_seconds, and choose.

    Args:
        dataset_spec: the dataset spec as JSON.
        feature_pipeline: the fitted feature pipeline (JSON).
        train: training records (Parquet).
        validation: validation records (Parquet).
        families: candidate families, e.g. ["xgboost", "hist_gbm", "ridge"].
        search_seconds: time budget for random hyper-parameter search; 0 for defaults only.
        tolerance: relative validation-MAE slack within which the fastest model wins.
        seed: random seed.
        model: folder with the chosen model in a safe format.
        candidates: every candidate's validation MAE, latency and fit time (JSON).
    Returns:
        The chosen family.
    """
    from flywheel_mlops.training import steps

    return steps.train(
        dataset_spec,
        feature_pipeline.path,
        train.path,
        validation.path,
        [str(f) for f in families],
        search_seconds,
        tolerance,
        seed,
        model.path,
        candidates.path,
    )
