"""The training pipeline: ingest -> clean -> validate -> featurize -> split -> train -> evaluate
-> register; its outputs say what was registered and why."""

from pathlib import Path
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Artifact

from flywheel_components.clean import clean
from flywheel_components.evaluate import evaluate
from flywheel_components.featurize import featurize
from flywheel_components.ingest import ingest
from flywheel_components.register import register
from flywheel_components.split import split
from flywheel_components.train import train
from flywheel_components.validate import validate
from flywheel_mlops.training.request import TrainingRequest

PIPELINE_NAME = "flywheel-training"
COMPILED = Path(__file__).with_name("training.yaml")
#: Defaults come from the one request type the CLI and the loop build runs with.
DEFAULTS = TrainingRequest


class Outputs(NamedTuple):
    """What a run reports: the version registered ("" when none), whether it moved the alias,
    and every evaluation number."""

    version: str
    promoted: bool
    evaluation: Artifact


@dsl.pipeline(name=PIPELINE_NAME, description="Train, evaluate and register a Flywheel model.")
def training_pipeline(
    dataset_spec: str,
    data_uri: str,
    registry_uri: str,
    side_uri: str = DEFAULTS.side_uri,
    start: str = DEFAULTS.start,
    end: str = DEFAULTS.end,
    families: list = list(DEFAULTS.families),  # noqa: B006 - KFP reads the default once
    margin: float = DEFAULTS.margin,
    search_seconds: float = DEFAULTS.search_seconds,
    tolerance: float = DEFAULTS.tolerance,
    seed: int = DEFAULTS.seed,
    reason: str = DEFAULTS.reason,
    promote_alias: str = DEFAULTS.promote_alias,
) -> Outputs:
    """Parameters:

    dataset_spec: the dataset spec as JSON (target, columns, baseline rule...).
    data_uri: records to train on (CSV/Parquet; path, file://, s3://, gs://; globs allowed).
    registry_uri: the model registry (a folder locally, object storage on a cluster).
    side_uri: side table joined at ingest (the weather feed); empty for none.
    start, end: the time window [start, end) of records used; empty for all.
    families: candidate model families.
    margin: relative test-MAE gain over the champion needed to promote.
    search_seconds: hyper-parameter search budget; 0 trains defaults only.
    tolerance: validation-MAE slack within which the fastest candidate wins.
    seed: random seed.
    reason: why this run was started (a person, or the monitor's decision); kept in lineage.
    promote_alias: the alias moved when the model beats the champion; the retraining loop
        uses "candidate", so a canary rollout decides about "champion".
    """
    # Reading object storage can fail for a moment; reading it again is harmless.
    ingested = ingest(
        dataset_spec=dataset_spec, data_uri=data_uri, side_uri=side_uri, start=start, end=end
    ).set_retry(num_retries=3, backoff_duration="10s")
    # Steps without side effects run once more if their process dies: a pod can be preempted,
    # and Arrow's thread pool can abort the interpreter at exit after the outputs are written
    # (apache/arrow#34314; seen on featurize in a CI run, and on validate in a 93-window
    # backtest). validate has no side effect either: a second run of a failed one repeats the
    # data's verdict at the cost of a few seconds. register is left alone: it publishes.
    cleaned = clean(dataset_spec=dataset_spec, records=ingested.outputs["records"]).set_retry(
        num_retries=1
    )
    validated = validate(
        dataset_spec=dataset_spec,
        cleaned=cleaned.outputs["cleaned"],
        clean_report=cleaned.outputs["report"],
    ).set_retry(num_retries=1)
    features = featurize(
        dataset_spec=dataset_spec, validated=validated.outputs["validated"]
    ).set_retry(num_retries=1)
    parts = split(dataset_spec=dataset_spec, validated=validated.outputs["validated"]).set_retry(
        num_retries=1
    )
    trained = train(
        dataset_spec=dataset_spec,
        feature_pipeline=features.outputs["feature_pipeline"],
        train=parts.outputs["train"],
        validation=parts.outputs["validation"],
        families=families,
        search_seconds=search_seconds,
        tolerance=tolerance,
        seed=seed,
    ).set_retry(num_retries=1)
    verdict = evaluate(
        dataset_spec=dataset_spec,
        registry_uri=registry_uri,
        margin=margin,
        model=trained.outputs["model"],
        feature_pipeline=features.outputs["feature_pipeline"],
        test=parts.outputs["test"],
    ).set_retry(num_retries=1)
    # The champion can change between runs: a cached verdict would compare with a stale one.
    verdict.set_caching_options(enable_caching=False)
    registered = register(
        dataset_spec=dataset_spec,
        registry_uri=registry_uri,
        data_uri=data_uri,
        start=start,
        end=end,
        model=trained.outputs["model"],
        feature_pipeline=features.outputs["feature_pipeline"],
        schema=features.outputs["schema"],
        train=parts.outputs["train"],
        validated=validated.outputs["validated"],
        evaluation=verdict.outputs["evaluation"],
        reason=reason,
        promote_alias=promote_alias,
    )
    # Publishing a version is a side effect: it must happen on every run, never from cache.
    registered.set_caching_options(enable_caching=False)
    return Outputs(
        version=registered.outputs["version"],
        promoted=registered.outputs["promoted"],
        evaluation=verdict.outputs["evaluation"],
    )


def compile_pipeline(path: Path = COMPILED) -> Path:
    """Compile to KFP IR YAML (what `kfp.Client` uploads) and return the path."""
    compiler.Compiler().compile(training_pipeline, str(path))
    return path
