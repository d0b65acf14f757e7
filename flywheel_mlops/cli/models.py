"""`flywheel models`: list versions, show a model card, promote, roll back."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markdown import Markdown
from rich.table import Table

from flywheel_mlops.cli.common import ModelName, console, failures_exit, model_name, settings
from flywheel_mlops.errors import NotFoundError
from flywheel_mlops.registry import Registry as RegistryStore
from flywheel_mlops.registry.bundle import CARD, METADATA, METRICS

app = typer.Typer(
    help="The model registry: versions, cards, the champion alias.", no_args_is_help=True
)

Registry = Annotated[str, typer.Option(help="Registry URI. Default: <home>/registry.")]


def _registry(uri: str) -> RegistryStore:

    return RegistryStore(uri or settings().registry)


@app.command("list")
def list_(name: ModelName = "", registry: Registry = "") -> None:
    """Versions with their family and test MAE; the champion is marked."""
    name = model_name(name)
    import json

    store = _registry(registry)
    champion = store.alias(name)
    table = Table(title=f"{name} in {store.uri}")
    for column in ("version", "family", "test MAE", "baseline MAE", "created", ""):
        table.add_column(column)
    for version in store.versions(name):
        folder = store.fetch(name, version)
        meta = json.loads((folder / METADATA).read_text())
        metrics = json.loads((folder / METRICS).read_text())
        mark = "champion" if champion and champion.version == version else ""
        table.add_row(
            version,
            meta.get("family", ""),
            f"{metrics['test']['mae']:.3f}",
            f"{metrics.get('baseline', {}).get('mae', float('nan')):.3f}",
            str(meta.get("created_at", "")),
            mark,
        )
    console.print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="Version or alias.")] = "champion",
    name: ModelName = "",
    registry: Registry = "",
) -> None:
    """Print a version's model card."""
    with failures_exit():
        folder = _registry(registry).fetch(model_name(name), ref)
        console.print(Markdown((folder / CARD).read_text()))


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Version to make champion.")],
    name: ModelName = "",
    registry: Registry = "",
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "manual promotion",
) -> None:
    """Point the champion alias at a version (after verifying the bundle loads)."""
    name = model_name(name)
    with failures_exit():
        store = _registry(registry)
        store.load(name, version)
        record = store.set_alias(name, version, reason=reason)
    console.print(f"champion: {record.previous} -> [green]{record.version}[/green]")


@app.command()
def rollback(name: ModelName = "", registry: Registry = "") -> None:
    """Point the champion back at the version promoted before it; repeated, walk further back
    through the promotion history (v3 -> v2 -> v1), never forth again."""
    name = model_name(name)
    with failures_exit():
        store = _registry(registry)
        lineage = store.promotions(name)
        if len(lineage) < 2:
            raise NotFoundError(f"{name} has no earlier champion to roll back to")
        current, target = lineage[-1], lineage[-2]
        store.load(name, target)
        record = store.set_alias(name, target, reason=f"rollback from {current}")
    console.print(f"champion: {record.previous} -> [green]{record.version}[/green]")
