"""The dataset spec: the short config that lets any tabular dataset go through the loop."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flywheel_mlops.durations import window_offset
from flywheel_mlops.errors import ConfigError
from flywheel_mlops.features import CalendarFeature, compile_baseline, generated_names


class _Strict(BaseModel):
    # A misspelled key is an error, not a silently ignored option.
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnitRule(_Strict):
    """Convert a numeric column to one canonical unit using a column that names the unit."""

    unit_column: str = Field(description="Column holding the unit of each row, e.g. speed_unit.")
    factors: dict[str, float] = Field(
        description="Multiplier from each unit to the canonical one, e.g. {mph: 1.609344}."
    )


class DriftSpec(_Strict):
    """How the monitor's per-feature drift thresholds are calibrated when a model is trained."""

    window: str = Field(
        default="1d",
        description="The monitor's window (12h, 1d, 7d, 2w, 1mo): thresholds are calibrated on "
        "in-distribution windows of this length drawn from the training period.",
    )
    false_alarm_rate: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="Per-feature false-alarm rate the thresholds are set for: the share of "
        "in-distribution windows in which a feature may be flagged.",
    )
    seasonal: list[str] = Field(
        default_factory=list,
        description="Features expected to move with the season (temperature): their drift is "
        "reported but not counted in the drift share, so they lead to a retrain only through "
        "the live error.",
    )

    @model_validator(mode="after")
    def _window_parses(self) -> DriftSpec:
        try:
            window_offset(self.window)
        except ConfigError as error:
            raise ValueError(f"drift.window: {error}") from error
        return self


class JoinSpec(_Strict):
    """A side table joined at ingest on the record's timestamp floored to `freq` (weather)."""

    key: str = Field(description="Timestamp column of the side table (`on` is a YAML boolean).")
    freq: str = Field(default="h", description="Pandas frequency both timestamps are floored to.")
    columns: list[str] = Field(description="Side-table columns to bring in.")


class DatasetSpec(_Strict):
    """What a dataset looks like and how to treat it, for every stage from ingest to serving."""

    name: str = Field(description="Model name; also the KServe model name, e.g. pickup-eta.")
    target: str = Field(description="Column to predict.")
    numeric: list[str] = Field(default_factory=list, description="Numeric feature columns.")
    categorical: list[str] = Field(default_factory=list, description="Categorical features.")
    categories: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Known vocabulary of a categorical column: values outside it are invalid, "
        "and a value training never saw is still served. Undeclared columns learn theirs.",
    )
    timestamp: str | None = Field(
        default=None,
        description="Event-time column: the time split and hour/weekday features come from it.",
    )
    calendar: list[CalendarFeature] = Field(
        default_factory=list,
        description="Calendar features from the timestamp, beside hour and weekday: `month` adds "
        "month (1-12) with its sine and cosine; `day_of_year` adds day_of_year (1-366) with its "
        "sine and cosine over 365.25 days; `year` adds the year with the share of it elapsed "
        "(2012.5 mid-2012), a trend a linear model can extend. Needs `timestamp`.",
    )
    id_column: str | None = Field(default=None, description="Record id; duplicates are dropped.")
    required: list[str] = Field(
        default_factory=list,
        description="Columns a row cannot do without: missing after repair drops the row.",
    )
    timestamp_formats: list[str] = Field(
        default_factory=list,
        description="strptime formats tried in order; empty means let pandas infer ISO 8601.",
    )
    units: dict[str, UnitRule] = Field(
        default_factory=dict, description="Numeric column -> how to unify its unit."
    )
    ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Inclusive valid range per numeric column (target too); outside is an error.",
    )
    join: JoinSpec | None = Field(default=None, description="Optional side table joined at ingest.")
    baseline: str | None = Field(
        default=None,
        description="Rule-based estimate as a pandas expression over clean columns.",
    )
    slices: list[str] = Field(
        default_factory=list, description="Columns to report errors per slice (plus hour)."
    )
    max_null_rate: float = Field(
        default=0.2, ge=0, le=1, description="Validate: highest share of missing values per column."
    )
    max_invalid_rate: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Validate: highest share of text-in-numeric or out-of-range values per column.",
    )
    max_duplicate_rate: float = Field(
        default=0.0, ge=0, le=1, description="Validate: highest duplicate-id rate after cleaning."
    )
    min_rows: int = Field(default=200, ge=1, description="Validate: fewest rows worth training on.")
    drift: DriftSpec = Field(
        default_factory=DriftSpec,
        description="Drift calibration: the window, the false-alarm rate, the seasonal columns.",
    )
    task: Literal["regression"] = "regression"

    @model_validator(mode="after")
    def _columns_are_consistent(self) -> DatasetSpec:
        features = [*self.numeric, *self.categorical]
        if self.target in features:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        dupes = {c for c in features if features.count(c) > 1}
        if dupes:
            raise ValueError(f"columns listed twice: {sorted(dupes)}")
        for column in self.categories:
            if column not in self.categorical:
                raise ValueError(f"categories for {column!r}, which is not a categorical column")
        for column in self.units:
            if column not in self.numeric:
                raise ValueError(f"units rule for {column!r}, which is not a numeric column")
        if self.calendar and not self.timestamp:
            raise ValueError(
                f"calendar {self.calendar} needs `timestamp`: the event-time column it is read from"
            )
        twice = {c for c in self.calendar if self.calendar.count(c) > 1}
        if twice:
            raise ValueError(f"calendar lists {sorted(twice)} twice")
        unknown = [c for c in self.drift.seasonal if c not in features]
        if unknown:
            raise ValueError(
                f"drift.seasonal lists {unknown}, which are not features; expected names from "
                f"{features}"
            )
        self._generated_names_are_free(features)
        self._baseline_compiles()
        return self

    def _generated_names_are_free(self, features: list[str]) -> None:
        generated = generated_names(bool(self.timestamp), self.calendar, baseline=True)
        taken = [c for c in features if c in generated]
        if taken:
            raise ValueError(
                f"columns {taken} have the names of features Flywheel generates "
                f"({', '.join(generated)}); rename them in the data and the spec"
            )

    def _baseline_compiles(self) -> None:
        if not self.baseline:
            return
        try:
            rule = compile_baseline(self.baseline)
        except ConfigError as error:
            raise ValueError(str(error)) from error
        unknown = [name for name in rule.names if name not in self.numeric]
        if unknown:
            raise ValueError(
                f"baseline {self.baseline!r} uses {unknown}, which are not numeric columns "
                f"of this spec; expected names from {self.numeric}"
            )

    @property
    def feature_columns(self) -> list[str]:
        """Input columns a prediction request must carry, in a stable order."""
        columns = [*self.numeric, *self.categorical]
        return [self.timestamp, *columns] if self.timestamp else columns

    @property
    def side_columns(self) -> list[str]:
        """Columns that come from the joined side table rather than the main records."""
        return list(self.join.columns) if self.join else []


def load_spec(source: str | Path) -> DatasetSpec:
    """Load a dataset spec from a YAML file path, or a built-in spec by name (`ride_hailing`)."""
    path = Path(source)
    if path.suffix in {".yaml", ".yml"}:
        if not path.exists():
            raise ConfigError(f"dataset spec file {str(path)!r} does not exist")
        text = path.read_text()
    else:
        builtin = resources.files("flywheel_mlops.datasets") / f"{source}.yaml"
        if not builtin.is_file():
            raise ConfigError(
                f"unknown dataset spec {str(source)!r}: "
                f"expected a .yaml path or one of {builtins()}"
            )
        text = builtin.read_text()
    try:
        return DatasetSpec.model_validate(yaml.safe_load(text))
    except ValidationError as exc:
        raise ConfigError(f"dataset spec {str(source)!r} is invalid: {exc}") from exc


def builtins() -> list[str]:
    """Names of the dataset specs that ship with Flywheel."""
    folder = resources.files("flywheel_mlops.datasets")
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )
