"""The model registry: immutable versions and atomically swapped aliases.

Layout: `<root>/<model>/versions/vNNNN/` (a bundle) and `<root>/<model>/aliases/<alias>.json`.
A version becomes visible in one step: locally a directory rename of a fully written folder; on
object storage the manifest is uploaded last and a version without one does not exist.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from flywheel_mlops.errors import NotFoundError
from flywheel_mlops.files import write_atomic
from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.registry.bundle import (
    CARD,
    MANIFEST,
    METADATA,
    METRICS,
    Bundle,
    load_bundle,
    model_card,
    sha256_of,
)

_VERSION = re.compile(r"^v(\d{4,})$")


@dataclass(frozen=True)
class AliasRecord:
    """Where an alias points, since when and why."""

    alias: str
    version: str
    previous: str | None
    at: str
    reason: str
    traffic_percent: int | None = None


class Registry:
    """Versions and aliases of models under one root URI (a path, file://, s3://, gs://...)."""

    def __init__(self, uri: str | Path, cache_dir: Path | None = None):
        self.uri = str(uri)
        self.fs, self.root = fsspec.core.url_to_fs(self.uri)
        self.local = isinstance(self.fs, LocalFileSystem)
        self._cache_dir = cache_dir

    def _path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def models(self) -> list[str]:
        """Names of the models in this registry."""
        if not self.fs.exists(self.root):
            return []
        return sorted(Path(p).name for p in self.fs.ls(self.root, detail=False) if self.fs.isdir(p))

    def versions(self, name: str) -> list[str]:
        """Complete versions of a model, oldest first; staging folders never appear here."""
        folder = self._path(name, "versions")
        if not self.fs.exists(folder):
            return []
        found = []
        for entry in self.fs.ls(folder, detail=False):
            version = entry.rstrip("/").rsplit("/", 1)[-1]
            if _VERSION.match(version) and self.fs.exists(f"{entry.rstrip('/')}/{MANIFEST}"):
                found.append(version)
        return sorted(found, key=lambda v: int(v[1:]))

    def version_uri(self, name: str, version: str) -> str:
        """Storage URI of a version folder: what KServe's storageUri points at."""
        path = self._path(name, "versions", version)
        return path if self.local else self.fs.unstrip_protocol(path)

    def publish(self, name: str, staged: Path) -> str:
        """Copy a fully written bundle folder in as the next version; returns the version."""
        versions_dir = self._path(name, "versions")
        self.fs.makedirs(versions_dir, exist_ok=True)
        if self.local:
            staging = Path(versions_dir) / f".staging-{uuid.uuid4().hex}"
            shutil.copytree(staged, staging)
            while True:
                version = _next_version(self.versions(name))
                _stamp_version(staging, version)
                try:
                    # rename() onto an existing non-empty folder fails: two publishers never
                    # share a version number, and a killed publisher leaves only staging.
                    os.rename(staging, Path(versions_dir) / version)
                    return version
                except OSError:
                    if not (Path(versions_dir) / version).exists():
                        raise
        version = _next_version(self.versions(name))
        target = f"{versions_dir}/{version}"
        work = Path(tempfile.mkdtemp(prefix="flywheel-publish-"))
        try:
            shutil.copytree(staged, work, dirs_exist_ok=True)
            _stamp_version(work, version)
            for path in sorted(work.iterdir()):
                if path.name != MANIFEST:
                    self.fs.put_file(str(path), f"{target}/{path.name}")
            self.fs.put_file(str(work / MANIFEST), f"{target}/{MANIFEST}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return version

    def alias(self, name: str, alias: str = Alias.CHAMPION) -> AliasRecord | None:
        """Where an alias points now, or None when it was never set."""
        path = self._path(name, "aliases", f"{alias}.json")
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "r") as handle:
            return AliasRecord(**json.load(handle))

    def history(self, name: str, alias: str = Alias.CHAMPION) -> list[AliasRecord]:
        """Every move of an alias, oldest first."""
        path = self._path(name, "aliases", f"{alias}.history.jsonl")
        if not self.fs.exists(path):
            return []
        with self.fs.open(path, "r") as handle:
            return [AliasRecord(**json.loads(line)) for line in handle if line.strip()]

    def set_alias(
        self,
        name: str,
        version: str,
        alias: str = Alias.CHAMPION,
        reason: str = "",
        traffic_percent: int | None = None,
    ) -> AliasRecord:
        """Point an alias at a complete version in one atomic step, and record why.

        `traffic_percent` is for the `canary` alias: the share of requests the local server
        sends to that version (KServe's canaryTrafficPercent on a cluster).
        """
        if version not in self.versions(name):
            raise NotFoundError(
                f"{name} has no complete version {version!r}; versions are {self.versions(name)}"
            )
        current = self.alias(name, alias)
        record = AliasRecord(
            alias,
            version,
            current.version if current else None,
            datetime.now(UTC).isoformat(timespec="seconds"),
            reason,
            traffic_percent,
        )
        folder = self._path(name, "aliases")
        self.fs.makedirs(folder, exist_ok=True)
        payload = json.dumps(record.__dict__)
        target = f"{folder}/{alias}.json"
        if self.local:
            write_atomic(target, payload)  # readers see the old alias or the new one, never half
            with open(f"{folder}/{alias}.history.jsonl", "a") as handle:
                handle.write(payload + "\n")
        else:
            self.fs.pipe_file(target, payload.encode())  # a single PUT is atomic on object stores
            history = self.history(name, alias)
            lines = [json.dumps(r.__dict__) for r in [*history, record]]
            self.fs.pipe_file(f"{folder}/{alias}.history.jsonl", ("\n".join(lines) + "\n").encode())
        return record

    def remove_alias(self, name: str, alias: str, reason: str = "") -> None:
        """Delete an alias (a finished canary); the history keeps a line saying so."""
        path = self._path(name, "aliases", f"{alias}.json")
        current = self.alias(name, alias)
        if current is None:
            return
        self.fs.rm(path)
        note = AliasRecord(
            alias,
            "",
            current.version,
            datetime.now(UTC).isoformat(timespec="seconds"),
            reason or "removed",
        )
        history = self._path(name, "aliases", f"{alias}.history.jsonl")
        lines = [json.dumps(r.__dict__) for r in [*self.history(name, alias), note]]
        self.fs.pipe_file(history, ("\n".join(lines) + "\n").encode())

    def promotions(self, name: str) -> list[str]:
        """The champion's lineage, oldest first, with rolled-back versions taken off.

        Replaying the alias's history: a move back to the version below the top is a rollback
        (the top comes off); any other move is a promotion (pushed on).
        """
        stack: list[str] = []
        for record in self.history(name, Alias.CHAMPION):
            if len(stack) >= 2 and record.version == stack[-2]:
                stack.pop()
            elif not stack or record.version != stack[-1]:
                stack.append(record.version)
        return stack

    def resolve(self, name: str, ref: str = Alias.CHAMPION) -> str:
        """Turn a version (`v0003`) or an alias (`champion`) into a version."""
        if _VERSION.match(ref):
            if ref not in self.versions(name):
                raise NotFoundError(
                    f"{name} has no version '{ref}'; versions are {self.versions(name)}"
                )
            return ref
        record = self.alias(name, ref)
        if record is None:
            raise NotFoundError(f"{name} has no alias '{ref}'")
        return record.version

    def fetch(self, name: str, ref: str = Alias.CHAMPION) -> Path:
        """A local folder holding the version: the folder itself, or a cached download."""
        version = self.resolve(name, ref)
        source = self._path(name, "versions", version)
        if self.local:
            return Path(source)
        cache = (self._cache_dir or Path(tempfile.gettempdir()) / "flywheel-cache") / name / version
        if not (cache / MANIFEST).exists():
            partial = cache.with_name(f".{version}.{uuid.uuid4().hex}")
            self.fs.get(source.rstrip("/") + "/", str(partial), recursive=True)
            partial.rename(cache)
        return cache

    def load(self, name: str, ref: str = Alias.CHAMPION) -> Bundle:
        """Fetch, verify and load a version or alias."""
        return load_bundle(self.fetch(name, ref))


def _next_version(existing: list[str]) -> str:
    number = max((int(v[1:]) for v in existing), default=0) + 1
    return f"v{number:04d}"


def _stamp_version(folder: Path, version: str) -> None:
    # A bundle learns its version number only at publish time: bundle.json and the model card
    # are rewritten and rehashed here, before the folder becomes visible.
    metadata: dict[str, Any] = json.loads((folder / METADATA).read_text())
    metadata["version"] = version
    (folder / METADATA).write_text(json.dumps(metadata, indent=2, default=str))
    metrics = json.loads((folder / METRICS).read_text())
    (folder / CARD).write_text(model_card(metadata, metrics))
    manifest = json.loads((folder / MANIFEST).read_text())
    for name in (METADATA, CARD):
        manifest["files"][name] = sha256_of(folder / name)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
