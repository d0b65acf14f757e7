"""`flywheel backtest`: replay a history through the loop, one or more policies side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flywheel_mlops.cli.common import console, failures_exit, parse_time, settings
from flywheel_mlops.training.request import TrainingRequest


def backtest(
    data: Annotated[str, typer.Option(help="The history: CSV/Parquet path, glob or fsspec URI.")],
    train_until: Annotated[
        str, typer.Option(help="The first champion trains on the history before this (ISO).")
    ],
    dataset: Annotated[
        str, typer.Option(help="Built-in dataset spec name or a spec .yaml file.")
    ] = "ride_hailing",
    side: Annotated[str, typer.Option(help="Side table joined at ingest (weather).")] = "",
    window: Annotated[
        str, typer.Option(help="Replay window: 12h, 1d, 7d, 2w or 1mo (calendar months).")
    ] = "1mo",
    until: Annotated[str, typer.Option(help="Replay no further than this (ISO).")] = "",
    policy: Annotated[
        list[str],
        typer.Option(
            help="drift, drift:N (N bad windows in a row), schedule:<window> or never; "
            "repeat to compare policies on the same history."
        ),
    ] = ["drift"],  # noqa: B006 - typer reads the default, nothing mutates it
    retrain_on: Annotated[
        str,
        typer.Option(
            help="A retrain's data: all (history so far), since-change (since the bad "
            "streak began) or validated (both; the better on held-out rows stays candidate)."
        ),
    ] = "all",
    families: Annotated[str, typer.Option(help="Comma-separated candidate families.")] = ",".join(
        TrainingRequest.families
    ),
    cooldown: Annotated[
        str, typer.Option(help="After a drift retrain, none other for this long (e.g. 2d).")
    ] = "",
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Serve through the real predictor and prediction service on loopback "
            "(started here, one pair per policy) instead of in this process.",
        ),
    ] = False,
    json_out: Annotated[Path, typer.Option("--json", help="Where the JSON goes.")] = Path(
        "backtest.json"
    ),
    report: Annotated[Path, typer.Option(help="Where the HTML report goes.")] = Path(
        "backtest.html"
    ),
    work: Annotated[
        str, typer.Option(help="Registries, logs and runs per policy. Default: <home>/backtest.")
    ] = "",
) -> None:
    """Train a first champion, then replay the history window by window in event time through
    the loop (serve, log, label, rollout step, monitor, policy, retrain, gate, canary)."""
    from flywheel_mlops.loop.backtest import BacktestConfig, run_backtest
    from flywheel_mlops.loop.backtest_report import write_html, write_json
    from flywheel_mlops.spec import load_spec

    with failures_exit():
        config = BacktestConfig(
            load_spec(dataset),
            data,
            parse_time(train_until, "--train-until"),
            window=window,
            side_uri=side,
            until=parse_time(until, "--until") if until else None,
            policies=tuple(policy),
            retrain_on=retrain_on,
            families=tuple(f.strip() for f in families.split(",") if f.strip()),
            cooldown=cooldown,
            live=live,
        )
        folder = Path(work) if work else settings().home / "backtest"
        result = run_backtest(config, folder, say=lambda line: console.print(line, highlight=False))
        write_json(result, config, json_out)
        write_html(result, config, report)
    table = Table(
        title=f"{result.windows} windows of {window}, first champion {result.first_champion}"
    )
    for column in (
        "policy",
        "MAE over the replay",
        "retrains",
        "promotions",
        "rollbacks",
        "rejected",
        "champion at the end",
    ):
        table.add_column(column)
    for row in result.comparison():
        table.add_row(
            row["policy"],
            f"{row['mae_overall']:.3f}" if row["mae_overall"] is not None else "-",
            str(row["retrains"]),
            str(row["promotions"]),
            str(row["rollbacks"]),
            str(row["rejected_by_gate"]),
            row["final_champion"],
        )
    console.print(table)
    console.print(f"JSON: {json_out}  report: {report}  runs and logs: {folder}")
