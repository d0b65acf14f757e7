"""The HTML report a person opens: our decision summary on top of Evidently's drift report."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

_BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)
_COLORS = {
    "ok": "#2e7d32",
    "drift": "#ef6c00",
    "degraded": "#c62828",
    "insufficient_data": "#616161",
    "error": "#6a1b9a",
}


def summary_html(decision: dict[str, Any]) -> str:
    """A self-contained section: verdict, why, live error per slice, drift per feature."""
    verdict = decision["verdict"]
    color = _COLORS.get(verdict, "#000")
    model = decision.get("model", {})
    window = decision.get("window", {})
    parts = [
        '<section id="flywheel-decision" style="font-family:sans-serif;margin:16px;'
        'padding:16px;border:2px solid #ccc;border-radius:8px">',
        "<h1>Flywheel monitor decision</h1>",
        f"<p>Model <b>{_e(model.get('name'))}</b> version <b>{_e(model.get('version'))}</b>; "
        f"window {_e(window.get('start'))} to {_e(window.get('end'))}, "
        f"{_e(window.get('rows'))} rows, {_e(window.get('labelled_rows'))} labelled.</p>",
        f'<p style="font-size:1.4em">Verdict: <b style="color:{color}">{_e(verdict)}</b>'
        f" &middot; retrain: <b>{'yes' if decision.get('retrain') else 'no'}</b></p>",
        "<ul>",
        *[f"<li>{_e(sentence)}</li>" for sentence in decision.get("why", [])],
        "</ul>",
    ]
    if decision.get("error"):
        parts.append(f"<pre>{_e(decision['error'].get('message'))}</pre>")
    if decision.get("live_error"):
        parts.append(_slices_table(decision["live_error"]))
    if decision.get("drift"):
        parts.append(_drift_table(decision["drift"]))
    parts.append("</section>")
    return "\n".join(parts)


def write_report(path: Path, decision: dict[str, Any], snapshot: Any | None) -> None:
    """Write report.html: the summary, then Evidently's own report when drift was measured."""
    summary = summary_html(decision)
    if snapshot is None:
        page = (
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Flywheel monitor</title>'
            f"</head><body>{summary}</body></html>"
        )
    else:
        page = snapshot.get_html_str(as_iframe=False)
        match = _BODY.search(page)
        cut = match.end() if match else 0
        page = page[:cut] + summary + page[cut:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


def _slices_table(live: dict[str, Any]) -> str:
    rows = [
        "<h2>Live error per slice</h2>",
        f"<p>Live MAE {_num(live.get('mae'))} vs test MAE {_num(live.get('test_mae'))} "
        f"(ratio {_num(live.get('ratio'))}).</p>",
        '<table border="1" cellpadding="4" style="border-collapse:collapse">',
        "<tr><th>slice</th><th>value</th><th>n</th><th>live MAE</th><th>test MAE</th>"
        "<th>ratio</th><th>judged</th></tr>",
    ]
    for name, values in live.get("slices", {}).items():
        for value, entry in values.items():
            style = ' style="background:#ffcdd2"' if entry.get("degraded") else ""
            rows.append(
                f"<tr{style}><td>{_e(name)}</td><td>{_e(value)}</td><td>{entry['n']}</td>"
                f"<td>{_num(entry['mae'])}</td><td>{_num(entry['test_mae'])}</td>"
                f"<td>{_num(entry['ratio'])}</td><td>{'yes' if entry['judged'] else 'no'}</td></tr>"
            )
    rows.append("</table>")
    return "\n".join(rows)


def _drift_table(drift: dict[str, Any]) -> str:
    rows = [
        "<h2>Drift per feature (Evidently)</h2>",
        '<table border="1" cellpadding="4" style="border-collapse:collapse">',
        "<tr><th>column</th><th>method</th><th>score</th><th>threshold</th><th>drifted</th>"
        "<th>full-window PSI</th></tr>",
    ]
    entries = [*drift.get("features", {}).values(), drift["prediction"]]
    for entry in entries:
        style = ' style="background:#ffe0b2"' if entry["drifted"] else ""
        rows.append(
            f"<tr{style}><td>{_e(entry['column'])}</td><td>{_e(entry['method'])}</td>"
            f"<td>{_num(entry['score'])}</td><td>{_num(entry['threshold'])}</td>"
            f"<td>{'yes' if entry['drifted'] else 'no'}</td>"
            f"<td>{_num(entry['window_psi'])}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"
