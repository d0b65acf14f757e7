"""Ingest component: records from a file or object-store URI, joined with the side table."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Output

from flywheel_components.image import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def ingest(
    dataset_spec: str,
    data_uri: str,
    side_uri: str,
    start: str,
    end: str,
    records: Output[Dataset],
    report: Output[Artifact],
) -> int:
    """Read records in [start, end) from data_uri (CSV/Parquet; path, file://, s3://, gs://).

    Args:
        dataset_spec: the dataset spec as JSON.
        data_uri: the records; a glob reads several files.
        side_uri: the side table joined on the hour (the weather feed); empty for none.
        start: first timestamp kept (ISO date); empty for no bound.
        end: first timestamp no longer kept (ISO date); empty for no bound.
        records: the ingested records (Parquet).
        report: what was read and what could not be parsed (JSON).
    Returns:
        The number of records written.
    """
    from flywheel_mlops.training import steps

    return steps.ingest(dataset_spec, data_uri, side_uri, start, end, records.path, report.path)
