"""Register component: publish an immutable bundle; move the champion alias when it is earned."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model

from flywheel_components.image import PIPELINE_IMAGE


@dsl.component(base_image=PIPELINE_IMAGE, install_kfp_package=False)
def register(
    dataset_spec: str,
    registry_uri: str,
    data_uri: str,
    start: str,
    end: str,
    model: Input[Model],
    feature_pipeline: Input[Artifact],
    schema: Input[Artifact],
    train: Input[Dataset],
    validated: Input[Dataset],
    evaluation: Input[Artifact],
    reason: str,
    promote_alias: str,
    run_id: str = dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
) -> NamedTuple("Registration", [("version", str), ("uri", str), ("promoted", bool)]):  # type: ignore[valid-type]
    """Publish the bundle as the next version if it beats the baseline; promote it if it also
    beats the champion.

    Args:
        dataset_spec: the dataset spec as JSON.
        registry_uri: where bundles live (a folder, s3://, gs://).
        data_uri: lineage: the data the model was trained on.
        start: lineage: start of the data window.
        end: lineage: end of the data window.
        model: the candidate.
        feature_pipeline: the fitted feature pipeline (JSON).
        schema: the input schema (JSON).
        train: training records, sampled for the drift reference.
        validated: every record of the training period: its windows calibrate the monitor's
            drift thresholds.
        evaluation: evaluate's numbers, which decided promotion.
        reason: lineage: why the run was started.
        promote_alias: the alias to move when the candidate beats the champion.
        run_id: lineage: the pipeline run.
    Returns:
        The version (empty when not published), its storage URI (KServe's storageUri) and
        whether it moved the alias.
    """
    from collections import namedtuple

    from flywheel_mlops.training import steps

    lineage = {
        "data_uri": data_uri,
        "window": [start or None, end or None],
        "run_id": run_id,
        "reason": reason,
    }
    done = steps.register(
        dataset_spec,
        registry_uri,
        model.path,
        feature_pipeline.path,
        schema.path,
        train.path,
        validated.path,
        evaluation.path,
        lineage,
        promote_alias,
    )
    print(f"registered {done.version} at {done.uri}; promoted={done.promoted}: {done.reason}")
    Registration = namedtuple("Registration", ["version", "uri", "promoted"])
    return Registration(done.version, done.uri, done.promoted)
