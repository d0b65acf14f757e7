"""Helpers for tests and benchmarks: a real bundle in seconds, request bodies built from frames.

Nothing on the serving or training path imports this package.
"""
