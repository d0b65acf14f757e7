"""Supply chain: bundles never open an unhashed file, the images install only what their lock
files pin (with hashes), the locks match pyproject, and an SBOM lists every locked package."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from flywheel_mlops.errors import BundleIntegrityError
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.bundle import load_bundle, write_bundle
from flywheel_mlops.serving.served_model import ServedModel

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# image -> the pyproject extras its lock file is compiled with
IMAGES = {"predictor": ["s3"], "pipeline": ["postgres", "s3"]}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def locked(image: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from images/requirements-<image>.lock."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in (REPO / "images" / f"requirements-{image}.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (match.group(3), [])
        elif line.strip().startswith("--hash=sha256:") and current:
            pins[current][1].append(line.strip().split(":", 1)[1].rstrip(" \\"))
    return pins


def required(extras: list[str]) -> list[Requirement]:
    """pyproject's runtime requirements plus those of `extras` (markers kept)."""
    project = PYPROJECT["project"]
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    return [Requirement(r) for r in names]


# --- bundles -----------------------------------------------------------------------------------

LOADERS: dict[str, Callable[[Path], object]] = {
    "load_bundle": load_bundle,
    "Registry.load": lambda folder: Registry(str(folder.parent.parent.parent)).load(
        folder.parent.parent.name, folder.name
    ),
    "ServedModel.load": lambda folder: ServedModel.load(folder),
}


@pytest.fixture
def published(bundle_contents, tmp_path: Path) -> Path:
    """A version folder in a registry, as every load path finds one."""
    staged = tmp_path / "staged"
    write_bundle(staged, bundle_contents)
    registry = Registry(str(tmp_path / "registry"))
    version = registry.publish("m", staged)
    return tmp_path / "registry" / "m" / "versions" / version


@pytest.mark.parametrize("loader", LOADERS)
def test_every_bundle_load_path_refuses_a_pickle_the_manifest_does_not_hash(
    published: Path, loader: str, tmp_path: Path
) -> None:
    opened = tmp_path / "unpickled"

    class Marker:
        def __reduce__(self):  # would run on unpickling
            return (opened.touch, ())

    (published / "model.pkl").write_bytes(pickle.dumps(Marker()))
    with pytest.raises(BundleIntegrityError, match=r"model\.pkl is not listed in the manifest"):
        LOADERS[loader](published)
    assert not opened.exists()


@pytest.mark.parametrize("loader", LOADERS)
def test_every_bundle_load_path_refuses_a_model_file_whose_hash_changed(
    published: Path, loader: str
) -> None:
    model = published / "model.ubj"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    with pytest.raises(BundleIntegrityError, match=r"model\.ubj does not match its sha256"):
        LOADERS[loader](published)


# --- lock files --------------------------------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_every_pyproject_requirement_is_pinned_in_the_image_lock_within_its_range(
    image: str,
) -> None:
    pins = locked(image)
    for requirement in required(IMAGES[image]):
        if requirement.marker and not requirement.marker.evaluate(
            {"sys_platform": "linux", "python_version": "3.11", "platform_system": "Linux"}
        ):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not pinned in requirements-{image}.lock"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements-{image}.lock pins {name}=={version}, outside {requirement.specifier} "
            f"(pyproject changed: recompile the lock with the command in its header)"
        )


@pytest.mark.parametrize("image", [*IMAGES, "build"])
def test_every_locked_package_is_pinned_exactly_with_its_hashes(image: str) -> None:
    pins = locked(image)
    assert pins
    text = (REPO / "images" / f"requirements-{image}.lock").read_text()
    unpinned = [
        line
        for line in text.splitlines()
        if line and not line.startswith((" ", "#")) and not PIN.match(line)
    ]
    assert unpinned == []
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []


@pytest.mark.parametrize("image", IMAGES)
def test_each_image_installs_only_from_its_lock_with_hashes_required(image: str) -> None:
    dockerfile = (REPO / "images" / f"{image}.Dockerfile").read_text()
    # One logical line per instruction (continuations joined), so a command ends with its RUN.
    instructions = [
        re.sub(r"\s+", " ", line) for line in dockerfile.replace("\\\n", " ").splitlines()
    ]
    flat = " ".join(instructions)
    installs = [c.strip() for i in instructions for c in re.findall(r"pip install ([^&]+)", i)]
    for lock in (image, "build"):
        assert any(
            "--require-hashes" in c and c.endswith(f"-r /locks/requirements-{lock}.lock")
            for c in installs
        ), installs
    for command in installs:  # anything else is Flywheel's own wheel, with no dependencies
        assert "--require-hashes" in command or (
            "--no-deps" in command and "--no-index" in command
        ), command
    assert "--no-build-isolation" in flat


# --- SBOM ------------------------------------------------------------------------------------


@pytest.mark.k8s
@pytest.mark.parametrize("image", IMAGES)
def test_syft_sbom_of_the_image_lock_lists_every_locked_package(image: str, tmp_path: Path) -> None:
    from tests.k8s.conftest import find_tool

    syft = find_tool("syft")
    source = tmp_path / "source"
    source.mkdir()
    # syft reads requirements*.txt; the lock is one, under the name syft looks for.
    (source / "requirements.txt").write_text(
        (REPO / "images" / f"requirements-{image}.lock").read_text()
    )
    result = subprocess.run(
        [syft, f"dir:{source}", "-o", "cyclonedx-json", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    sbom = json.loads(result.stdout)
    assert sbom["bomFormat"] == "CycloneDX"
    listed = {
        canonicalize_name(c["name"]): c.get("version")
        for c in sbom["components"]
        if c.get("purl", "").startswith("pkg:pypi/")
    }
    expected = {name: version for name, (version, _) in locked(image).items()}
    assert listed == expected
