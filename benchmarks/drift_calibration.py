"""Per-feature drift false-alarm rate before and after calibration, and detection delay.

    .venv/bin/python benchmarks/drift_calibration.py [--out DIR] [--skip-bikes]

Two data sets, each calibrated as the register step calibrates a bundle (whole windows of the
training period, `monitoring.calibration.calibrate`), then scored window by window on periods
calibration never saw, with Evidently's stat test per feature (the one the monitor runs):

1. The simulated city with no closure, 36 days: train on the first 7, then the 29 days after
   are normal days (new weather, same world). The per-feature share of flagged days is the
   false-alarm rate, at Evidently's default thresholds and at the calibrated ones.
2. The city with the demo's closure on day 11 (18 days): the first day from the closure on
   whose counted (non-seasonal) share reaches the verdict's drift share, and whether any
   feature is flagged at all, is the detection delay.
3. The bike-sharing table (when `.tools/data/hourly_bikesharing.csv` is there): calibrate on
   the 24 months 2011-2012, score the 48 months 2013-2016.

Prints a table per data set and writes benchmarks/results/drift-calibration.json. Not a test.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flywheel_mlops.durations import window_offset
from flywheel_mlops.loop.backtest import History
from flywheel_mlops.monitoring.calibration import _stattest, _typed, calibrate
from flywheel_mlops.monitoring.thresholds import Thresholds
from flywheel_mlops.simulator import SimulationConfig, simulate
from flywheel_mlops.spec import DatasetSpec, load_spec

ROOT = Path(__file__).resolve().parents[1]
BIKES = ROOT / ".tools" / "data" / "hourly_bikesharing.csv"


def _columns(spec: DatasetSpec, frame: pd.DataFrame) -> dict[str, str]:
    found = {n: "numeric" for n in spec.numeric if n in frame}
    return found | {n: "categorical" for n in spec.categorical if n in frame}


def _score(reference: pd.Series, current: pd.Series, kind: str) -> float:
    test, column_type = _stattest(reference, kind)
    return float(
        test(_typed(reference, kind), _typed(current, kind), column_type, None).drift_score
    )


def _scored_windows(
    spec: DatasetSpec, frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, window: str
) -> list[tuple[pd.Timestamp, pd.DataFrame]]:
    stamps = pd.to_datetime(frame[spec.timestamp])
    found, edge, offset = [], start, window_offset(window)
    while edge + offset <= end:
        rows = frame[(stamps >= edge) & (stamps < edge + offset)]
        if len(rows) >= Thresholds().min_rows:
            sample = rows.sample(n=min(len(rows), Thresholds().sample_rows), random_state=0)
            found.append((edge, sample))
        edge = edge + offset
    return found


def false_alarms(
    spec: DatasetSpec, frame: pd.DataFrame, train_until: pd.Timestamp, end: pd.Timestamp
) -> dict[str, Any]:
    """Calibrate on everything before `train_until`; flag rate per feature on the windows after."""
    stamps = pd.to_datetime(frame[spec.timestamp])
    training = frame[stamps < train_until]
    reference = training.sample(n=min(5000, len(training)), random_state=0)
    columns = _columns(spec, frame)
    found = calibrate(
        training,
        reference,
        spec.timestamp,
        columns,
        spec.drift.window,
        spec.drift.false_alarm_rate,
        Thresholds().sample_rows,
    )
    if found is None:
        raise SystemExit(f"{spec.name}: too few windows to calibrate")
    windows = _scored_windows(spec, frame, train_until, end, spec.drift.window)
    rows = {}
    for name, kind in columns.items():
        scores = np.asarray([_score(reference[name], w[name], kind) for _, w in windows])
        column = found.columns[name]
        rows[name] = {
            "method": column.method,
            "seasonal": name in spec.drift.seasonal,
            "default_threshold": column.default_threshold,
            "calibrated_threshold": column.threshold,
            "flagged_default": int((scores >= column.default_threshold).sum()),
            "flagged_calibrated": int((scores >= column.threshold).sum()),
        }
    return {
        "calibration_windows": found.windows,
        "scored_windows": len(windows),
        "false_alarm_rate": spec.drift.false_alarm_rate,
        "confidence": found.confidence,
        "features": rows,
    }


def detection(
    spec: DatasetSpec, frame: pd.DataFrame, train_until: pd.Timestamp, closure: pd.Timestamp
) -> list[dict[str, Any]]:
    """Per window from the first after training: counted flags at default and calibrated."""
    stamps = pd.to_datetime(frame[spec.timestamp])
    training = frame[stamps < train_until]
    reference = training.sample(n=min(5000, len(training)), random_state=0)
    columns = _columns(spec, frame)
    found = calibrate(training, reference, spec.timestamp, columns, spec.drift.window, 0.01, 10_000)
    assert found is not None
    counted = [n for n in columns if n not in spec.drift.seasonal]
    out = []
    for edge, w in _scored_windows(spec, frame, train_until, stamps.max(), spec.drift.window):
        flags = {
            n: _score(reference[n], w[n], k) >= found.columns[n].threshold
            for n, k in columns.items()
        }
        default = {
            n: _score(reference[n], w[n], k) >= found.columns[n].default_threshold
            for n, k in columns.items()
        }
        out.append(
            {
                "day": str(edge.date()),
                "after_closure": edge >= closure,
                "flagged_calibrated": sorted(n for n in counted if flags[n]),
                "share_calibrated": sum(flags[n] for n in counted) / len(counted),
                "share_default_all_features": sum(default.values()) / len(columns),
            }
        )
    return out


def _print(title: str, result: dict[str, Any]) -> None:
    n = result["scored_windows"]
    print(f"\n{title}: calibrated on {result['calibration_windows']} windows, scored {n}")
    print(f"{'feature':18s} {'method':14s} {'default':>8s} {'calib':>8s} {'FA default':>11s} "
          f"{'FA calib':>9s}")  # fmt: skip
    for name, r in result["features"].items():
        tag = " (seasonal)" if r["seasonal"] else ""
        print(
            f"{name:18s} {r['method']:14s} {r['default_threshold']:8.3f} "
            f"{r['calibrated_threshold']:8.3f} {r['flagged_default'] / n:11.1%} "
            f"{r['flagged_calibrated'] / n:9.1%}{tag}"
        )


def main() -> None:
    """Run the three measurements, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--skip-bikes", action="store_true")
    args = parser.parse_args()
    spec = load_spec("ride_hailing")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        normal = simulate(SimulationConfig(rows=80_000, days=36, seed=7), Path(tmp) / "normal")
        history = History(spec, str(normal.trips_path), str(normal.weather_path))
        t0 = pd.Timestamp(SimulationConfig().start)
        results["city_normal_days"] = false_alarms(
            spec, history.frame, t0 + pd.Timedelta(days=7), t0 + pd.Timedelta(days=36)
        )
        _print("simulated city, 29 normal days after a 7-day training period",
               results["city_normal_days"])  # fmt: skip
        story = simulate(
            SimulationConfig(rows=40_000, days=18, closure_day=11, seed=7), Path(tmp) / "story"
        )
        history = History(spec, str(story.trips_path), str(story.weather_path))
        days = detection(spec, history.frame, t0 + pd.Timedelta(days=7), t0 + pd.Timedelta(days=11))
        results["city_closure_days"] = days
        print("\nthe demo's city: counted (non-seasonal) features flagged per day")
        for d in days:
            mark = "closure" if d["after_closure"] else "normal "
            print(f"{d['day']} {mark} share {d['share_calibrated']:.2f} "
                  f"(default, all features: {d['share_default_all_features']:.2f}) "
                  f"{', '.join(d['flagged_calibrated'])}")  # fmt: skip
    if BIKES.is_file() and not args.skip_bikes:
        bikes = load_spec("bike_sharing")
        frame = pd.read_csv(BIKES)
        frame[bikes.timestamp] = pd.to_datetime(frame[bikes.timestamp])
        since_2011 = frame[frame[bikes.timestamp] >= "2011-01-01"]
        results["bikes_2013_2016"] = false_alarms(
            bikes, since_2011, pd.Timestamp("2013-01-01"), pd.Timestamp("2017-01-01")
        )
        _print("bike sharing, 48 months 2013-2016 after calibrating on 2011-2012",
               results["bikes_2013_2016"])  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "drift-calibration.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
