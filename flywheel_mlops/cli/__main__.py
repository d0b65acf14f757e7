"""`python -m flywheel_mlops.cli`: the same command line as the `flywheel` script."""

from flywheel_mlops.cli import app

app()
