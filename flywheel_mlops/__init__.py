"""Flywheel's core: dataset spec, simulator, stage functions, feature module, registry and CLI."""

__version__ = "0.1.0"
