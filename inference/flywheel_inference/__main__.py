"""`python -m flywheel_inference`: the predictor image's entry point."""

import sys

from flywheel_inference.server import main

main(sys.argv[1:])
