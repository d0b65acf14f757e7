"""Clean component: repair, fill and drop, with a report of every change."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from flywheel_components.image import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def clean(
    dataset_spec: str, records: Input[Dataset], cleaned: Output[Dataset], report: Output[Artifact]
) -> int:
    """Fix units, types and ranges, fill gaps, drop unrepairable rows.

    Args:
        dataset_spec: the dataset spec as JSON.
        records: ingested records (Parquet).
        cleaned: repaired records (Parquet).
        report: counts of every change per column (JSON).
    Returns:
        The number of records kept.
    """
    from flywheel_mlops.training import steps

    return steps.clean(dataset_spec, records.path, cleaned.path, report.path)
