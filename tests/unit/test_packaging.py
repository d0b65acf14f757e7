"""Packaging: every package folder is named as it is imported, and ships in the wheel."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The design card's top-level folders, each holding one package named for its import.
HOLDERS = (ROOT, ROOT / "components", ROOT / "pipelines", ROOT / "inference")


def _package_folders() -> list[Path]:
    return sorted(
        folder
        for holder in HOLDERS
        for folder in holder.glob("flywheel_*")
        if (folder / "__init__.py").exists()
    )


def test_the_four_packages_sit_in_folders_named_for_their_import():
    names = {folder.name for folder in _package_folders()}
    assert names == {
        "flywheel_mlops",
        "flywheel_components",
        "flywheel_pipelines",
        "flywheel_inference",
    }


@pytest.mark.parametrize("folder", _package_folders(), ids=lambda f: f.name)
def test_every_package_folder_is_what_its_name_imports(folder: Path):
    for init in folder.rglob("__init__.py"):
        dotted = ".".join(init.parent.relative_to(folder.parent).parts)
        spec = importlib.util.find_spec(dotted)
        assert spec is not None, f"{dotted} does not import"
        assert spec.origin is not None, f"{dotted} is a namespace package, not {init}"
        assert Path(spec.origin).resolve() == init.resolve(), (
            f"`import {dotted}` loads {spec.origin}, not {init}"
        )
