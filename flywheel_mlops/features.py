"""The feature module: one transformation, used by the featurize stage and by the predictor."""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from flywheel_mlops.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:  # the spec validates its baseline with this module's compiler
    from flywheel_mlops.spec import DatasetSpec

BASELINE_FEATURE = "baseline"
TIME_FEATURES = ("hour", "hour_sin", "hour_cos", "weekday", "is_weekend")
#: What the dataset spec's `calendar` may ask for, beside the time features.
CalendarFeature = Literal["month", "day_of_year", "year"]
#: The matrix columns each calendar choice adds, in order.
CALENDAR_FEATURES: dict[CalendarFeature, tuple[str, ...]] = {
    "month": ("month", "month_sin", "month_cos"),
    "day_of_year": ("day_of_year", "day_of_year_sin", "day_of_year_cos"),
    "year": ("year",),
}
_DAYS_PER_YEAR = 365.25
#: 1970-01-01, day 0 of datetime64, was a Thursday (Monday is 0, as in pandas' dt.weekday).
_EPOCH_WEEKDAY = 3
_MINUTES_PER_DAY = 24 * 60

#: What `transform` reads: a DataFrame (training) or column name -> numpy array (serving).
Records = pd.DataFrame | Mapping[str, Any]


class BaselineRule:
    """The dataset spec's rule-based estimate, compiled once into numpy arithmetic.

    The rule is an arithmetic expression over column names ("distance_km / driver_speed * 60"):
    names, numbers, + - * / **, unary minus and parentheses. Anything else (calls, attributes,
    comparisons, subscripts) is refused when the rule is compiled, so a spec cannot smuggle code
    into training or serving the way a general-purpose evaluator would let it.
    """

    _BINARY: ClassVar[dict[type[ast.operator], Callable[[Any, Any], Any]]] = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: operator.truediv,
        ast.Pow: operator.pow,
    }

    def __init__(self, expression: str):
        """
        Args:
            expression: the rule's text, as in the dataset spec's `baseline`.

        Raises:
            ConfigError: naming the expression and the first construct that is not allowed.
        """
        self.expression = expression
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError as error:
            raise ConfigError(
                f"baseline expression {expression!r} is not valid arithmetic: {error.msg}"
            ) from error
        names: list[str] = []
        self._evaluate = self._compile(tree.body, names)
        self.names = tuple(dict.fromkeys(names))

    def __reduce__(self) -> tuple[type[BaselineRule], tuple[str]]:
        # The compiled closures do not pickle; the expression does.
        return BaselineRule, (self.expression,)

    def __call__(self, column: Callable[[str], np.ndarray]) -> np.ndarray:
        """The rule per row (float64); NaN where it is undefined (a zero speed), never infinity.

        Args:
            column: returns a column's values as float64 by name.
        """
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            result = np.array(self._evaluate(column), dtype=np.float64, ndmin=1)
        result[~np.isfinite(result)] = np.nan
        return result

    def _compile(self, node: ast.expr, names: list[str]) -> Callable[[Any], Any]:
        if isinstance(node, ast.Name):
            name = node.id
            names.append(name)
            return lambda column: column(name)
        constant = node.value if isinstance(node, ast.Constant) else None
        if isinstance(constant, int | float) and not isinstance(constant, bool):
            # A float64 scalar, so that a rule made only of numbers divides by zero like arrays.
            value = np.float64(constant)
            return lambda column: value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self._compile(node.operand, names)
            return lambda column: -inner(column)
        if isinstance(node, ast.BinOp) and type(node.op) in self._BINARY:
            apply = self._BINARY[type(node.op)]
            left = self._compile(node.left, names)
            right = self._compile(node.right, names)
            return lambda column: apply(left(column), right(column))
        raise ConfigError(
            f"baseline expression {self.expression!r}: {ast.unparse(node)!r} is not allowed; "
            f"use column names, numbers, + - * / **, unary minus and parentheses"
        )


@lru_cache(maxsize=64)
def compile_baseline(expression: str) -> BaselineRule:
    """The compiled rule for `expression` (compiled once per distinct text)."""
    return BaselineRule(expression)


def generated_names(
    timestamp: bool, calendar: Sequence[CalendarFeature], baseline: bool
) -> list[str]:
    """Names of the matrix columns the pipeline makes rather than reads, in matrix order.

    Args:
        timestamp: whether there is an event-time column (time and calendar features need one).
        calendar: the calendar features asked for, as in the spec's `calendar`.
        baseline: whether there is a baseline rule.
    """
    names: list[str] = []
    if timestamp:
        names += TIME_FEATURES
        for choice in calendar:
            names += CALENDAR_FEATURES[choice]
    if baseline:
        names.append(BASELINE_FEATURE)
    return names


def baseline_prediction(expression: str, records: Records) -> np.ndarray:
    """Evaluate the rule-based estimate (arithmetic over clean columns) per row.

    Rows where the rule is undefined (a zero speed, say) come back as NaN, never infinity.
    """
    return compile_baseline(expression)(_NumericColumns(records))


@dataclass(frozen=True)
class FeaturePipeline:
    """Clean records in, a float32 matrix out; fitted once on training data, stored as JSON."""

    numeric: list[str]
    categories: dict[str, list[str]]
    timestamp: str | None = None
    baseline: str | None = None
    version: int = field(default=1)
    #: Empty in bundles saved before calendar features existed: they load and transform as then.
    calendar: list[CalendarFeature] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Compiled once per pipeline (fit, or from_json when a bundle loads), never per request,
        # so a rule that is not allowed fails the featurize stage or the bundle load.
        _ = self._rule, self._codes
        unknown = [c for c in self.calendar if c not in CALENDAR_FEATURES]
        if unknown:
            raise ConfigError(
                f"calendar features {unknown} are unknown; "
                f"expected some of {list(CALENDAR_FEATURES)}"
            )
        if self.calendar and not self.timestamp:
            raise ConfigError(f"calendar features {self.calendar} need a timestamp column")

    @cached_property
    def _rule(self) -> BaselineRule | None:
        return compile_baseline(self.baseline) if self.baseline else None

    @cached_property
    def _codes(self) -> dict[str, dict[str, int]]:
        # Sorted, so the matrix layout does not depend on the order keys were stored in JSON.
        return {
            column: {value: index for index, value in enumerate(values)}
            for column, values in sorted(self.categories.items())
        }

    @classmethod
    def fit(cls, spec: DatasetSpec, frame: pd.DataFrame) -> FeaturePipeline:
        """Category vocabularies: declared in the spec, else learned from clean training records."""
        categories = {
            column: sorted(spec.categories[column])
            if column in spec.categories
            else sorted(frame[column].dropna().astype(str).unique().tolist())
            for column in spec.categorical
        }
        return cls(
            numeric=list(spec.numeric),
            categories=categories,
            timestamp=spec.timestamp,
            baseline=spec.baseline,
            calendar=list(spec.calendar),
        )

    @property
    def input_columns(self) -> list[str]:
        """Columns `transform` reads."""
        columns = [*self.numeric, *self.categories]
        return [self.timestamp, *columns] if self.timestamp else columns

    @property
    def feature_names(self) -> list[str]:
        """Names of the matrix columns `transform` returns, in order."""
        names = [
            *self.numeric,
            *generated_names(bool(self.timestamp), self.calendar, bool(self.baseline)),
        ]
        for column, values in sorted(self.categories.items()):
            names += [f"{column}={value}" for value in values]
        return names

    def known_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows whose every category is one of this pipeline's levels (or missing): the rows
        `transform` accepts. Matched exactly as `transform` matches them."""
        known = np.ones(len(frame), dtype=bool)
        for column, index in self._codes.items():
            if column in frame:
                items, codes = _level_codes(frame[column], index)
                known &= (codes >= 0) | np.array([_is_missing(v) for v in items], dtype=bool)
        return known

    def transform(self, records: Records) -> np.ndarray:
        """Turn clean records into the model's matrix (rows in, rows out, same order).

        Args:
            records: a DataFrame (training), or column name -> numpy array as the serving
                schema check returns them (numbers float64, timestamps datetime64, categories
                strings). Both go through the same code below.

        Raises InvalidInputError naming the column when one is missing or a category is unknown;
        the predictor's schema check normally catches those first with the record's index.
        """
        missing = [c for c in self.input_columns if c not in records]
        if missing:
            raise InvalidInputError(f"missing feature columns {missing}")
        numbers = _NumericColumns(records)
        rows = _row_count(records, self.input_columns)
        matrix = np.empty((rows, len(self.feature_names)), dtype=np.float32)
        at = 0
        for name in self.numeric:
            matrix[:, at] = numbers(name)
            at += 1
        if self.timestamp:
            stamps = _datetimes(records[self.timestamp])
            for block in (_time_features(stamps), *_calendar_features(stamps, self.calendar)):
                matrix[:, at : at + block.shape[1]] = block
                at += block.shape[1]
        if self._rule is not None:
            matrix[:, at] = self._rule(numbers)
            at += 1
        for column, index in self._codes.items():
            block = matrix[:, at : at + len(index)]
            _one_hot(records[column], column, index, block)
            at += len(index)
        return matrix

    def to_json(self) -> str:
        """Serialise to JSON: the bundle never stores a pickled transformer."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeaturePipeline:
        """Rebuild a pipeline saved with `to_json`."""
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


class _NumericColumns:
    """Columns of `records` as float64 arrays by name, each converted once."""

    def __init__(self, records: Records):
        self._records = records
        self._seen: dict[str, np.ndarray] = {}

    def __call__(self, name: str) -> np.ndarray:
        found = self._seen.get(name)
        if found is None:
            if name not in self._records:
                raise InvalidInputError(f"missing feature columns {[name]}")
            values = self._records[name]
            if isinstance(values, pd.Series):
                found = values.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                found = np.asarray(values, dtype=np.float64)
            self._seen[name] = found
        return found


def _row_count(records: Records, columns: list[str]) -> int:
    if isinstance(records, pd.DataFrame):
        return len(records)
    return len(records[columns[0]]) if columns else 0


def _datetimes(values: Any) -> np.ndarray:
    """Naive datetime64 values (wall-clock time) from a column of timestamps."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values
    if (
        isinstance(values, pd.Series | pd.Index)
        and isinstance(values.dtype, np.dtype)  # not a time zone's DatetimeTZDtype
        and values.dtype.kind == "M"
    ):
        return values.to_numpy()
    # Text, objects or time zones: parse as the feature module always has (training data only;
    # the serving schema check hands over datetime64 already).
    times = pd.to_datetime(pd.Series(values))
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_localize(None)
    return times.to_numpy()


def _time_features(stamps: np.ndarray) -> np.ndarray:
    """hour (with minutes as a fraction), its sine and cosine, weekday, is_weekend; NaN for NaT."""
    minutes = stamps.astype("datetime64[m]").view(np.int64)
    # Floor division and modulo, so times before 1970 land on the right day and minute.
    minute_of_day = minutes % _MINUTES_PER_DAY
    hour = (minute_of_day // 60) + (minute_of_day % 60) / 60.0
    weekday = ((minutes // _MINUTES_PER_DAY + _EPOCH_WEEKDAY) % 7).astype(np.float64)
    missing = np.isnat(stamps)
    if missing.any():
        hour[missing] = np.nan
        weekday[missing] = np.nan
    angle = 2 * np.pi * hour / 24.0
    return np.column_stack(
        [hour, np.sin(angle), np.cos(angle), weekday, (weekday >= 5).astype(np.float64)]
    ).astype(np.float32)


def _calendar_features(stamps: np.ndarray, calendar: Sequence[CalendarFeature]) -> list[np.ndarray]:
    """One block per calendar choice, columns as named in CALENDAR_FEATURES; NaN for NaT."""
    if not calendar:
        return []
    years = stamps.astype("datetime64[Y]")
    missing = np.isnat(stamps)
    blocks = []
    for choice in calendar:
        if choice == "month":
            # Months since 1970-01 modulo 12: numpy's modulo floors, so before 1970 counts too.
            month = stamps.astype("datetime64[M]").view(np.int64) % 12 + 1
            blocks.append(_with_cycle(month.astype(np.float64), 12.0, missing))
        elif choice == "day_of_year":
            days = stamps.astype("datetime64[D]") - years.astype("datetime64[D]")
            day = days.view(np.int64) + 1
            blocks.append(_with_cycle(day.astype(np.float64), _DAYS_PER_YEAR, missing))
        else:
            # The calendar year plus the share of it elapsed: a trend a linear model can extend.
            start = years.astype("datetime64[m]")
            elapsed = stamps.astype("datetime64[m]") - start
            length = (years + 1).astype("datetime64[m]") - start
            year = years.view(np.int64) + 1970 + elapsed.view(np.int64) / length.view(np.int64)
            year[missing] = np.nan
            blocks.append(year[:, None].astype(np.float32))
    return blocks


def _with_cycle(value: np.ndarray, period: float, missing: np.ndarray) -> np.ndarray:
    """The value, its sine and cosine over `period`, as float32 columns; NaN where missing."""
    value[missing] = np.nan
    angle = 2 * np.pi * value / period
    return np.column_stack([value, np.sin(angle), np.cos(angle)]).astype(np.float32)


def _level_codes(values: Any, index: dict[str, int]) -> tuple[list[Any], np.ndarray]:
    """The values as a list and each one's level in `index` (-1: missing or not a level)."""
    items = values.tolist() if isinstance(values, np.ndarray | pd.Series) else list(values)
    codes = np.array(
        [index.get(v if type(v) is str else _as_text(v), -1) for v in items], dtype=np.intp
    )
    return items, codes


def _one_hot(values: Any, column: str, index: dict[str, int], out: np.ndarray) -> None:
    """Write the one-hot block of `column` into `out`; missing values leave an all-zero row."""
    items, codes = _level_codes(values, index)
    unknown = np.flatnonzero(codes < 0)
    for row in unknown:
        if not _is_missing(items[row]):
            raise InvalidInputError(
                f"{column} must be one of {list(index)}, got {items[row]!r} in record {row}"
            )
    out[:] = 0.0
    known = np.flatnonzero(codes >= 0)
    out[known, codes[known]] = 1.0


def _as_text(value: Any) -> Any:
    # Categories are matched as text, as training's astype(str) saw them; missing stays missing.
    return None if _is_missing(value) else str(value)


def _is_missing(value: Any) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and value != value)
    )
