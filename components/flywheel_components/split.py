"""Split component: time-based train / validation / test."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from flywheel_components.image import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def split(
    dataset_spec: str,
    validated: Input[Dataset],
    train: Output[Dataset],
    validation: Output[Dataset],
    test: Output[Dataset],
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
):
    """Cut validated records into three consecutive time ranges.

    Args:
        dataset_spec: the dataset spec as JSON.
        validated: records that passed the gate (Parquet).
        train: the oldest records.
        validation: the next ones, for choosing among candidates.
        test: the newest ones, for the final verdict.
        validation_fraction: share of rows in validation.
        test_fraction: share of rows in test.
    """
    from flywheel_mlops.training import steps

    steps.split(
        dataset_spec,
        validated.path,
        train.path,
        validation.path,
        test.path,
        validation_fraction,
        test_fraction,
    )
