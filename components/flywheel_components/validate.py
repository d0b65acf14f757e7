"""Validate component: the gate; a failing batch fails the step and nothing downstream runs."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from flywheel_components.image import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def validate(
    dataset_spec: str,
    cleaned: Input[Dataset],
    clean_report: Input[Artifact],
    validated: Output[Dataset],
    report: Output[Artifact],
):
    """Check schema, types, ranges, null rates, duplicates and row count.

    Args:
        dataset_spec: the dataset spec as JSON.
        cleaned: repaired records (Parquet).
        clean_report: clean's report; null and invalid rates are judged on the raw batch.
        validated: the same records, written only when every check passed.
        report: every check with what was observed and the limit (JSON).
    """
    from flywheel_mlops.training import steps

    steps.validate(dataset_spec, cleaned.path, clean_report.path, validated.path, report.path)
