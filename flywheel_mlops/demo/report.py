"""The story's HTML report: error per day, drift per feature, versions, predicted vs actual."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from flywheel_mlops.demo.timeline import DayRecord


def write_report(days: list[DayRecord], served: pd.DataFrame, path: Path, title: str) -> Path:
    """One self-contained HTML page (plotly.js inlined: it opens without a network)."""
    figure = make_subplots(
        rows=4,
        cols=1,
        vertical_spacing=0.07,
        subplot_titles=(
            "Live error per day (labelled trips)",
            "Drift score per feature",
            "Traffic served per model version",
            "Predicted vs actual pickup minutes",
        ),
        row_heights=[0.28, 0.28, 0.18, 0.26],
    )
    x = [d.day for d in days]
    figure.add_trace(
        go.Scatter(x=x, y=[d.mae for d in days], name="MAE, all zones", mode="lines+markers"),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=x,
            y=[d.closure_zones_mae for d in days],
            name="MAE, closure zones",
            mode="lines+markers",
        ),
        row=1,
        col=1,
    )
    for day in days:
        for event in day.events:
            figure.add_annotation(
                x=day.day,
                y=day.mae,
                text=event.split(":")[0],
                showarrow=True,
                arrowhead=2,
                row=1,
                col=1,
                font={"size": 9},
            )
    features = sorted({f for d in days for f in d.drift_by_feature})
    figure.add_trace(
        go.Heatmap(
            x=x,
            y=features,
            colorscale="Reds",
            showscale=False,
            z=[[d.drift_by_feature.get(f, float("nan")) for d in days] for f in features],
        ),
        row=2,
        col=1,
    )
    versions = sorted({v for d in days for v in d.served_by_version})
    for version in versions:
        figure.add_trace(
            go.Bar(
                x=x,
                y=[d.served_by_version.get(version, 0) for d in days],
                name=f"served by {version}",
            ),
            row=3,
            col=1,
        )
    figure.update_layout(barmode="stack")
    sample = served.dropna(subset=["actual"])
    sample = sample.sample(n=min(3000, len(sample)), random_state=0) if len(sample) else sample
    for key, part in sample.groupby("model_version"):
        version = str(key)
        figure.add_trace(
            go.Scattergl(
                x=part["actual"],
                y=part["prediction"],
                mode="markers",
                marker={"size": 3, "opacity": 0.5},
                name=f"{version}: predicted vs actual",
            ),
            row=4,
            col=1,
        )
    if len(sample):
        top = float(max(sample["actual"].max(), sample["prediction"].max()))
        figure.add_trace(
            go.Scatter(
                x=[0, top],
                y=[0, top],
                mode="lines",
                name="perfect",
                line={"dash": "dot", "color": "grey"},
            ),
            row=4,
            col=1,
        )
    figure.update_layout(title=title, height=1500, template="plotly_white")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(path, include_plotlyjs=True, full_html=True)
    return path
