"""A training run's parameters, typed, with the defaults the pipeline, CLI and loop share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.spec import DatasetSpec


@dataclass(frozen=True)
class TrainingRequest:
    """Everything a training run needs; the pipeline's parameters, typed.

    The class attributes are the defaults: `pipelines/` and `flywheel train` read them from here.
    """

    spec: DatasetSpec
    data_uri: str
    registry_uri: str
    side_uri: str = ""
    start: str = ""
    end: str = ""
    families: tuple[str, ...] = ("xgboost", "hist_gbm", "ridge")
    margin: float = 0.02
    search_seconds: float = 0.0
    tolerance: float = 0.02
    seed: int = 0
    reason: str = "manual run"
    promote_alias: str = Alias.CHAMPION.value

    def arguments(self) -> dict[str, Any]:
        """The pipeline's parameters as KFP takes them."""
        return {
            "dataset_spec": self.spec.model_dump_json(),
            "data_uri": self.data_uri,
            "registry_uri": self.registry_uri,
            "side_uri": self.side_uri,
            "start": self.start,
            "end": self.end,
            "families": list(self.families),
            "margin": self.margin,
            "search_seconds": self.search_seconds,
            "tolerance": self.tolerance,
            "seed": self.seed,
            "reason": self.reason,
            "promote_alias": str(self.promote_alias),
        }
