"""Packaging: every package folder ships in the wheel the images are built from."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_python_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name: Path(folder) for name, folder in config["package-dir"].items()}
    listed = set(config["packages"])
    found = set()
    for name, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([name, *parts]))
    assert found == listed, (
        f"add to pyproject packages: {sorted(found - listed)}; remove: {sorted(listed - found)}"
    )
