"""The container image every pipeline step runs in (built from images/pipeline.Dockerfile)."""

# The image already holds flywheel-mlops and kfp: steps pip-install nothing when they start.
PIPELINE_IMAGE = "ghcr.io/flywheel-mlops/flywheel-pipeline:0.1.0"
