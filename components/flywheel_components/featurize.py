"""Featurize component: fit the shared feature pipeline and the request schema."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from flywheel_components.image import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def featurize(
    dataset_spec: str,
    validated: Input[Dataset],
    feature_pipeline: Output[Artifact],
    schema: Output[Artifact],
):
    """Learn category vocabularies and the input schema from validated records.

    Args:
        dataset_spec: the dataset spec as JSON.
        validated: records that passed the gate (Parquet).
        feature_pipeline: the fitted feature pipeline the predictor runs unchanged (JSON).
        schema: the input schema every request is checked against (JSON).
    """
    from flywheel_mlops.training import steps

    steps.featurize(dataset_spec, validated.path, feature_pipeline.path, schema.path)
