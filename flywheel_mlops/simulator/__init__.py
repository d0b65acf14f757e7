"""Simulated raw ride-hailing data: dirty trip logs and an hourly weather feed."""

from flywheel_mlops.simulator.config import DirtCounts, SimulationConfig, SimulationResult
from flywheel_mlops.simulator.simulate import simulate

__all__ = ["DirtCounts", "SimulationConfig", "SimulationResult", "simulate"]
