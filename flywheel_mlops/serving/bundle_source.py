"""Where the served bundle comes from: a fixed model directory, or a registry alias that moves."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.bundle import MANIFEST
from flywheel_mlops.serving.served_model import ServedModel


@dataclass(frozen=True)
class ModelDirSource:
    """A bundle folder: KServe's storage-initializer convention (/mnt/models) or a storage URI."""

    uri: str
    threads: int = 1

    def describe(self) -> str:
        """Where the bundle is read from, for log lines."""
        return f"model dir {self.uri}"

    def current(self) -> str:
        """An identity of what `load` would load now; a model dir never moves."""
        return self.uri

    def load(self) -> ServedModel:
        """Fetch (when remote), verify, load and self-test the bundle."""
        return ServedModel.load(_local_copy(self.uri), self.threads)


@dataclass(frozen=True)
class RegistrySource:
    """A registry alias (champion) of one model; `current` follows the alias as it moves."""

    registry: Registry
    name: str
    alias: str
    threads: int = 1

    def describe(self) -> str:
        """Where the bundle is read from, for log lines."""
        return f"{self.name}@{self.alias} in registry {self.registry.uri}"

    def current(self) -> str:
        """The version the alias points at now (NotFoundError when it was never set)."""
        return self.registry.resolve(self.name, self.alias)

    def load(self, version: str | None = None) -> ServedModel:
        """Fetch, verify, load and self-test `version`, or whatever the alias points at now."""
        folder = self.registry.fetch(self.name, version or self.current())
        return ServedModel.load(folder, self.threads)


BundleSource = ModelDirSource | RegistrySource


def _local_copy(uri: str) -> Path:
    """A local folder holding the bundle at `uri`; object storage is downloaded to a temp folder."""
    fs, path = fsspec.core.url_to_fs(uri)
    if isinstance(fs, LocalFileSystem):
        return Path(path)
    target = Path(tempfile.gettempdir()) / "flywheel-model-dir" / uuid.uuid4().hex
    fs.get(path.rstrip("/") + "/", str(target), recursive=True)
    if not (target / MANIFEST).exists():
        # fsspec nests the folder under its own name on some back ends.
        nested = [p for p in target.iterdir() if (p / MANIFEST).exists()]
        if nested:
            return nested[0]
    return target
