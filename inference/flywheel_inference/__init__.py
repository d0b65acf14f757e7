"""Flywheel's KServe predictor: the model class, its request checks and its server entry point.

Nothing is imported here: `import flywheel_inference` must not pull in KServe, whose server
module parses sys.argv when imported.
"""
