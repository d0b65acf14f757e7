"""Benchmark the training pipeline: wall time and peak memory, runner overhead, train vs xgb.train.

    .venv/bin/python benchmarks/pipeline_bench.py [--sizes 100000 1000000] [--out DIR]

Prints a table and writes benchmarks/results/pipeline.json. Not a test: timings on a shared
machine are noisy, so each figure is compared with a peer measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from flywheel_mlops.features import FeaturePipeline
from flywheel_mlops.simulator import SimulationConfig, simulate
from flywheel_mlops.spec import load_spec
from flywheel_mlops.training import steps
from flywheel_mlops.training.local_runner import TrainingRequest, run_training

STEPS = ("ingest", "clean", "validate", "featurize", "split", "train", "evaluate", "register")
_LINE = re.compile(
    r"^(\d\d:\d\d:\d\d\.\d+) - INFO - (?:Executing task '([\w-]+)'|"
    r"Task '([\w-]+)' finished)"
)


def step_times_from_log(log: Path) -> dict[str, float]:
    """Wall time of each task as the local runner logged it (start to finish)."""
    started: dict[str, datetime] = {}
    times: dict[str, float] = {}
    for line in log.read_text().splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        stamp = datetime.strptime(match.group(1), "%H:%M:%S.%f")
        if match.group(2):
            started[match.group(2)] = stamp
        elif match.group(3) in started:
            times[match.group(3)] = (stamp - started.pop(match.group(3))).total_seconds()
    return times


def direct_step_times(request: TrainingRequest, work: Path) -> dict[str, float]:
    """The same steps called as plain functions in this process, timed one by one."""
    spec_json = request.spec.model_dump_json()
    p = {
        name: str(work / name)
        for name in (
            "raw",
            "clean",
            "clean_report",
            "valid",
            "valid_report",
            "pipe",
            "schema",
            "train",
            "val",
            "test",
            "model",
            "cands",
            "eval",
        )
    }
    calls = {
        "ingest": lambda: steps.ingest(
            spec_json,
            request.data_uri,
            request.side_uri,
            "",
            "",
            p["raw"],
            p["clean_report"] + ".ingest",
        ),
        "clean": lambda: steps.clean(spec_json, p["raw"], p["clean"], p["clean_report"]),
        "validate": lambda: steps.validate(
            spec_json, p["clean"], p["clean_report"], p["valid"], p["valid_report"]
        ),
        "featurize": lambda: steps.featurize(spec_json, p["valid"], p["pipe"], p["schema"]),
        "split": lambda: steps.split(spec_json, p["valid"], p["train"], p["val"], p["test"]),
        "train": lambda: steps.train(
            spec_json,
            p["pipe"],
            p["train"],
            p["val"],
            list(request.families),
            0.0,
            0.02,
            0,
            p["model"],
            p["cands"],
        ),
        "evaluate": lambda: steps.evaluate(
            spec_json, str(work / "registry"), 0.02, p["model"], p["pipe"], p["test"], p["eval"]
        ),
        "register": lambda: steps.register(
            spec_json,
            str(work / "registry"),
            p["model"],
            p["pipe"],
            p["schema"],
            p["train"],
            p["eval"],
            {},
        ),
    }
    times = {}
    for name, call in calls.items():
        start = time.perf_counter()
        call()
        times[name] = time.perf_counter() - start
    return times


def train_vs_xgb(request: TrainingRequest, work: Path) -> dict[str, float]:
    """The train step (xgboost only) against a bare xgb.train on the same arrays."""
    import xgboost as xgb

    from flywheel_mlops import models
    from flywheel_mlops.training.train import train

    spec = request.spec
    train_frame = pd.read_parquet(work / "train")
    val_frame = pd.read_parquet(work / "val")
    pipeline = FeaturePipeline.from_json((work / "pipe").read_text())
    start = time.perf_counter()
    train(spec, pipeline, train_frame, val_frame, ["xgboost"])
    step = time.perf_counter() - start
    features = pipeline.transform(train_frame)
    target = train_frame[spec.target].to_numpy()
    params = dict(models.DEFAULT_PARAMS["xgboost"])
    rounds = params.pop("num_boost_round")
    params |= {"objective": "reg:absoluteerror", "tree_method": "hist", "seed": 0}
    start = time.perf_counter()
    xgb.train(params, xgb.QuantileDMatrix(features, label=target), num_boost_round=rounds)
    bare = time.perf_counter() - start
    return {"train_step_s": step, "xgb_train_s": bare, "ratio": step / bare}


def run(size: int, out: Path) -> dict[str, object]:
    work = out / f"rows-{size}"
    data = simulate(SimulationConfig(rows=size, days=28), work / "data")
    request = TrainingRequest(
        load_spec("ride_hailing"),
        str(data.trips_path),
        str(work / "registry-pipeline"),
        side_uri=str(data.weather_path),
    )
    log = work / "runner.log"
    start = time.perf_counter()
    outcome = run_training(request, work / "runs", log_path=log)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    runner = step_times_from_log(log)
    direct_dir = work / "direct"
    direct_dir.mkdir()
    direct = direct_step_times(request, direct_dir)
    overhead = {s: runner[s] - direct[s] for s in STEPS if s in runner}
    return {
        "rows": size,
        "pipeline_wall_s": wall,
        "peak_step_rss_mb": peak_mb,
        "test_mae": outcome.evaluation["test"]["mae"],
        "baseline_mae": outcome.evaluation["baseline"]["mae"],
        "runner_step_s": runner,
        "direct_step_s": direct,
        "overhead_s": overhead,
        "median_overhead_s": statistics.median(overhead.values()),
        "train_vs_xgb": train_vs_xgb(request, direct_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="flywheel-bench-"))
    results = [run(size, out) for size in args.sizes]
    print(
        f"\n{'rows':>10} {'wall s':>8} {'peak MB':>8} {'MAE/base':>9} {'overhead/step s':>16} "
        f"{'train/xgb':>10}"
    )
    for r in results:
        ratio = r["test_mae"] / r["baseline_mae"]  # type: ignore[operator]
        tx = r["train_vs_xgb"]["ratio"]  # type: ignore[index]
        print(
            f"{r['rows']:>10,} {r['pipeline_wall_s']:>8.1f} {r['peak_step_rss_mb']:>8.0f} "
            f"{ratio:>9.2f} {r['median_overhead_s']:>16.2f} {tx:>10.2f}"
        )
    for r in results:
        print(f"\nper-step seconds at {r['rows']:,} rows (runner / direct / overhead):")
        for step in STEPS:
            runner = r["runner_step_s"].get(step, float("nan"))  # type: ignore[attr-defined]
            direct = r["direct_step_s"][step]  # type: ignore[index]
            print(f"  {step:<10} {runner:7.2f} {direct:7.2f} {runner - direct:7.2f}")
    target = Path(__file__).parent / "results" / "pipeline.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(results, indent=2, default=float))
    print(f"\nwrote {target}")
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
