"""Benchmark the monitor against a plain Evidently DataDriftPreset run on a 1M-row window.

    .venv/bin/python benchmarks/monitor_bench.py [--rows N] [--repeat 3] [--out DIR] [--no-docs]

Builds a 20-feature bundle (15 numeric, 5 categorical) through the real stage functions, writes
a window of `--rows` rows in which some columns drift and others do not, then runs, each in its
own subprocess so they never share a heap: (1) `run_monitor` on the window's Parquet file, and
(2) a plain `DataDriftPreset` on the full window against the same reference, alternately,
`--repeat` times each. Reports medians of wall time (whole process, and after imports), peak
RSS, and the share of columns where both reach the same drift verdict. Prints a table, writes
benchmarks/results/monitor.json and the table into docs/monitoring.md. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
NUMERIC = [f"x{i:02d}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
FEATURES = [*NUMERIC, *CATEGORICAL]
LEVELS = ["a", "b", "c", "d", "e", "f"]
#: How each column moves in the window (numeric: mean shift and scale in reference stds;
#: categorical: probability mass moved onto the first level). Zero rows do not drift.
SHIFTS: dict[str, tuple[float, float]] = {
    "x00": (0.0, 1.0), "x01": (0.0, 1.0), "x02": (0.0, 1.0), "x03": (0.0, 1.0),
    "x04": (0.0, 1.0), "x05": (0.0, 1.0), "x06": (0.03, 1.0), "x07": (0.05, 1.0),
    "x08": (0.2, 1.0), "x09": (0.3, 1.0), "x10": (0.5, 1.0), "x11": (1.0, 1.0),
    "x12": (0.0, 1.6), "x13": (0.0, 0.5), "x14": (0.3, 1.3),
}  # fmt: skip
CAT_SHIFTS = {"c0": 0.0, "c1": 0.0, "c2": 0.02, "c3": 0.15, "c4": 0.4}
DOC_BEGIN = "<!-- monitor-bench:begin -->"
DOC_END = "<!-- monitor-bench:end -->"


def generate(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    """Synthetic records: 15 numeric and 5 categorical features, a timestamp and a target."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "ts": pd.Timestamp("2026-03-02") + pd.to_timedelta(rng.integers(0, 86400 * 7, rows), "s")
    }
    for i, name in enumerate(NUMERIC):
        shift, scale = SHIFTS[name] if drifted else (0.0, 1.0)
        base = rng.normal(0.0, 1.0, rows) if i % 3 else rng.gamma(2.0, 1.0, rows) / 1.414
        data[name] = (base * scale + shift).astype(np.float64)
    for name in CATEGORICAL:
        p = np.array([0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
        moved = CAT_SHIFTS[name] if drifted else 0.0
        p = p * (1 - moved)
        p[0] += moved
        data[name] = rng.choice(LEVELS, rows, p=p / p.sum())
    frame = pd.DataFrame(data)
    level = frame["c0"].map({k: i for i, k in enumerate(LEVELS)}).to_numpy()
    frame["y"] = (
        10 + 2 * frame["x00"] - frame["x01"] + 0.5 * frame["x02"] * frame["x03"] + level
        + rng.normal(0, 1, rows)
    )  # fmt: skip
    return frame


def build_bundle(work: Path) -> Path:
    """Train a small XGBoost model on the reference world and publish it; returns the registry."""
    from flywheel_mlops.spec import DatasetSpec
    from flywheel_mlops.testing.quick_train import register_frame

    spec = DatasetSpec(
        name="bench", target="y", timestamp="ts", numeric=NUMERIC, categorical=CATEGORICAL,
        slices=["c0"],
    )  # fmt: skip
    register_frame(spec, generate(30_000, seed=1, drifted=False), work / "registry")
    return work / "registry"


def write_window(registry: Path, rows: int, path: Path) -> None:
    """The window as the prediction log gives it: features, prediction, actual, ids, times."""
    from flywheel_mlops.registry import Registry

    bundle = Registry(registry).load("bench")
    frame = generate(rows, seed=2, drifted=True)
    frame["prediction"] = bundle.predict(frame)
    frame["actual"] = frame.pop("y")
    frame["request_id"] = np.char.add("r", np.arange(rows).astype(str))
    frame["row"] = 0
    frame["model_version"] = bundle.version
    frame["logged_at"] = frame["ts"].dt.tz_localize("UTC")
    frame.to_parquet(path, index=False, row_group_size=250_000)


#: Peak RSS of the child itself. Not `getrusage(RUSAGE_SELF).ru_maxrss`: Linux carries the
#: parent's high-water mark across fork+exec, so every child reported at least this harness's own
#: peak (~840 MB after generating the window), which hid the monitor's real peak entirely.
PEAK = """
import resource
def peak_rss_mb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

OURS = (
    PEAK
    + """
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
started = time.perf_counter()
from flywheel_mlops.monitoring import RetrainPolicy, run_monitor
from flywheel_mlops.registry import Registry
import evidently  # imported lazily by the monitor; counted here so import and work separate
imported = time.perf_counter()
registry, window, out = map(Path, sys.argv[1:4])
bundle = Registry(registry).load("bench")
result = run_monitor(bundle, window, RetrainPolicy(out / "state.json"), out / "run",
                     datetime.now(UTC), cache_dir=out / "cache")
d = result.decision.to_dict()
if d["verdict"] == "error":
    raise SystemExit(d["error"])
verdicts = {k: v["drifted"] for k, v in d["drift"]["features"].items()}
scores = {k: v["score"] for k, v in d["drift"]["features"].items()}
print(json.dumps({"wall_s": time.perf_counter() - started,
                  "compute_s": time.perf_counter() - imported, "import_s": imported - started,
                  "peak_rss_mb": peak_rss_mb(),
                  "verdicts": verdicts, "scores": scores, "verdict": d["verdict"],
                  "sampled_rows": d["drift"]["sampled_rows"]}))
"""
)

PLAIN = (
    PEAK
    + """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
from flywheel_mlops.registry import Registry
imported = time.perf_counter()
registry, window = map(Path, sys.argv[1:3])
numeric, categorical = json.loads(sys.argv[3]), json.loads(sys.argv[4])
columns = numeric + categorical
reference = Registry(registry).load("bench").reference()[columns]
current = pd.read_parquet(window, columns=columns)
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
snapshot = Report([DataDriftPreset(columns=columns)], include_tests=True).run(
    Dataset.from_pandas(current, data_definition=definition),
    Dataset.from_pandas(reference, data_definition=definition))
d = snapshot.dict()
scores = {m["config"]["column"]: m["value"] for m in d["metrics"]
          if m["config"]["type"] == "evidently:metric_v2:ValueDrift"}
verdicts = {t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in d["tests"]
            if t["metric_config"]["params"]["type"] == "evidently:metric_v2:ValueDrift"}
print(json.dumps({"wall_s": time.perf_counter() - started,
                  "compute_s": time.perf_counter() - imported, "import_s": imported - started,
                  "peak_rss_mb": peak_rss_mb(),
                  "verdicts": verdicts, "scores": scores}))
"""
)


def run_child(code: str, *args: str) -> dict[str, object]:
    """Run one measurement in a fresh interpreter; its last stdout line is its JSON result."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - started
    return result


def median_of(runs: list[dict[str, object]]) -> dict[str, object]:
    """The last run's verdicts and scores (deterministic) with the medians of every timing."""
    out = dict(runs[-1])
    for key in ("wall_s", "compute_s", "import_s", "peak_rss_mb", "process_wall_s"):
        out[key] = statistics.median(float(r[key]) for r in runs)  # type: ignore[arg-type]
    out["runs"] = [{k: r[k] for k in ("process_wall_s", "import_s", "compute_s", "peak_rss_mb")}
                   for r in runs]  # fmt: skip
    return out


def table(result: dict[str, object]) -> str:
    """The Markdown table written to the console and docs/monitoring.md."""
    ours, plain = result["monitor"], result["plain_evidently"]
    return "\n".join(
        [
            f"Window: {result['rows']:,} rows x {len(FEATURES)} features; reference "
            f"{result['reference_rows']:,} rows; {result['drifting_columns']} columns drift "
            f"by construction. Machine: {result['cpus']} CPUs (shared). Medians of "
            f"{result['repeat']} runs of each, alternating. Run {result['at']}.",
            "",
            "| | wall time (s) | of which importing (s) | after imports (s) | peak RSS (MB) "
            "| same drift verdict |",
            "|---|---|---|---|---|---|",
            f"| `run_monitor` (Parquet by row group, Evidently on a "
            f"{ours['sampled_rows']:,}-row sample, HTML + .prom) | {ours['process_wall_s']:.1f} "
            f"| {ours['import_s']:.1f} | {ours['compute_s']:.1f} | {ours['peak_rss_mb']:.0f} "
            f"| {result['agreement']:.0%} of columns |",
            f"| plain `DataDriftPreset` on the full window | {plain['process_wall_s']:.1f} "
            f"| {plain['import_s']:.1f} | {plain['compute_s']:.1f} | {plain['peak_rss_mb']:.0f} "
            "| (baseline) |",
            f"| ratio (targets: time <= 0.10, memory <= 0.50, agreement >= 95%) "
            f"| {result['time_ratio']:.3f} | | {result['compute_ratio']:.3f} "
            f"| {result['memory_ratio']:.3f} | "
            f"{'met' if result['targets_met'] else 'NOT met'} (whole process) |",
        ]
    )


def write_docs(text: str) -> None:
    """Replace the benchmark block in docs/monitoring.md (between the two markers)."""
    path = ROOT / "docs" / "monitoring.md"
    doc = path.read_text()
    if DOC_BEGIN not in doc or DOC_END not in doc:
        raise SystemExit(f"{path} has no {DOC_BEGIN} ... {DOC_END} block to fill")
    head, rest = doc.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    path.write_text(f"{head}{DOC_BEGIN}\n{text}\n{DOC_END}{tail}")


def main() -> None:
    """Build, measure both, compare, print and write."""
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Rows in the window.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each (medians reported).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--no-docs", action="store_true", help="Do not touch docs/monitoring.md.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flywheel-monitor-bench-") as tmp:
        work = Path(tmp)
        registry = build_bundle(work)
        window = work / "window.parquet"
        write_window(registry, args.rows, window)
        ours_runs, plain_runs = [], []
        for attempt in range(args.repeat):
            # a fresh output and cache each time: every run computes the reference statistics
            ours_runs.append(
                run_child(OURS, str(registry), str(window), str(work / f"monitor-{attempt}"))
            )
            plain_runs.append(
                run_child(
                    PLAIN, str(registry), str(window), json.dumps(NUMERIC), json.dumps(CATEGORICAL)
                )
            )
        ours, plain = median_of(ours_runs), median_of(plain_runs)
    same = [c for c in FEATURES if ours["verdicts"][c] == plain["verdicts"][c]]
    drifting = sum(plain["verdicts"].values())
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "reference_rows": 5000,
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "drifting_columns": drifting,
        "monitor": ours,
        "plain_evidently": plain,
        "agreement": len(same) / len(FEATURES),
        "disagreeing_columns": sorted(set(FEATURES) - set(same)),
        "time_ratio": ours["process_wall_s"] / plain["process_wall_s"],
        "compute_ratio": ours["compute_s"] / plain["compute_s"],
        "memory_ratio": ours["peak_rss_mb"] / plain["peak_rss_mb"],
    }
    result["targets_met"] = (
        result["time_ratio"] <= 0.10
        and result["memory_ratio"] <= 0.50
        and result["agreement"] >= 0.95
    )
    text = table(result)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "monitor.json").write_text(json.dumps(result, indent=2))
    if not args.no_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
