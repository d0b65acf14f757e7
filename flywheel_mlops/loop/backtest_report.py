"""A backtest's files: the JSON document and one self-contained HTML page."""

from __future__ import annotations

import html
import json
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from flywheel_mlops.files import write_atomic
from flywheel_mlops.loop.backtest import BacktestConfig, BacktestResult

COMPARED = ("mae_overall", "retrains", "canaries", "promotions", "rollbacks", "rejected_by_gate")


def write_json(result: BacktestResult, config: BacktestConfig, path: Path) -> Path:
    """The document `BacktestResult.to_dict` describes, as standard JSON (no NaN)."""
    write_atomic(path, json.dumps(result.to_dict(config), indent=2, allow_nan=False))
    return path


def write_html(result: BacktestResult, config: BacktestConfig, path: Path) -> Path:
    """Live error and drift share per window for every policy, then the comparison table and
    each policy's events (plotly.js inlined: the page opens without a network)."""
    figure = make_subplots(
        rows=2,
        cols=1,
        vertical_spacing=0.12,
        subplot_titles=("Live error (MAE) per window, as served", "Drift share per window"),
    )
    for replay in result.replays:
        x = [w.window_start for w in replay.windows]
        figure.add_trace(
            go.Scatter(x=x, y=[w.mae for w in replay.windows], name=replay.policy),
            row=1,
            col=1,
        )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[w.drift_share for w in replay.windows],
                name=f"{replay.policy}: drift share",
                mode="markers",
            ),
            row=2,
            col=1,
        )
    figure.update_layout(height=800, template="plotly_white")
    rows = "".join(
        f"<tr><td>{html.escape(r['policy'])}</td>"
        + "".join(f"<td>{_cell(r.get(name))}</td>" for name in COMPARED)
        + "</tr>"
        for r in result.comparison()
    )
    events = "".join(
        f"<h3>{html.escape(replay.policy)}</h3><ul>"
        + "".join(
            f"<li>{html.escape(w.window_start[:10])}: {html.escape(e)}</li>"
            for w in replay.windows
            for e in w.events
        )
        + "</ul>"
        for replay in result.replays
    )
    title = (
        f"Backtest of {config.spec.name}: trained until {config.train_until:%Y-%m-%d}, "
        f"{result.windows} windows of {config.window}, retrain on {config.retrain_on}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;"
        "border-bottom:1px solid #ddd;text-align:right}td:first-child{text-align:left}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1><table><tr><th>policy</th>"
        + "".join(f"<th>{name}</th>" for name in COMPARED)
        + f"</tr>{rows}</table>"
        + figure.to_html(include_plotlyjs=True, full_html=False)
        + f"<h2>Events</h2>{events}</body></html>"
    )
    write_atomic(path, page)
    return path


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))
