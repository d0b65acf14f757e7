"""Registry and bundles: immutable versions, atomic aliases, tampering caught by name."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel_mlops.cli import app as cli
from flywheel_mlops.errors import BundleIntegrityError, NotFoundError
from flywheel_mlops.registry import Registry
from flywheel_mlops.registry.bundle import MANIFEST, load_bundle, verify, write_bundle


@pytest.fixture
def staged(bundle_contents, tmp_path: Path) -> Path:
    folder = tmp_path / "staged"
    write_bundle(folder, bundle_contents)
    return folder


def test_bundle_holds_every_contract_file_with_its_hash(staged):
    files = set(json.loads((staged / MANIFEST).read_text())["files"])
    assert files == {
        "model.ubj",
        "features.json",
        "schema.json",
        "metrics.json",
        "reference.parquet",
        "model_card.md",
        "bundle.json",
        "dataset_spec.json",
    }
    assert verify(staged).keys() == files


def test_published_versions_count_up_and_load(staged, tmp_registry, clean_frame, bundle_contents):
    registry = Registry(tmp_registry)
    assert [registry.publish("pickup-eta", staged) for _ in range(3)] == ["v0001", "v0002", "v0003"]
    bundle = registry.load("pickup-eta", "v0002")
    assert bundle.version == "v0002"
    assert "v0002" in (bundle.path / "model_card.md").read_text()
    frame = clean_frame.head(50)
    assert (
        bundle.predict(frame)
        == bundle_contents.model.predict(bundle_contents.features.transform(frame))
    ).all()


@pytest.mark.parametrize(
    "name",
    [
        "model.ubj",
        "features.json",
        "schema.json",
        "metrics.json",
        "reference.parquet",
        "model_card.md",
        "bundle.json",
    ],
)
def test_tampering_with_any_file_is_detected_naming_it(staged, name):
    with (staged / name).open("ab") as handle:
        handle.write(b" ")
    with pytest.raises(BundleIntegrityError, match=name.replace(".", r"\.")):
        load_bundle(staged)


def test_an_extra_or_missing_file_or_manifest_is_detected(staged):
    (staged / "evil.pkl").write_bytes(b"x")
    with pytest.raises(BundleIntegrityError, match=r"evil\.pkl is not listed"):
        load_bundle(staged)
    (staged / "evil.pkl").unlink()
    (staged / "schema.json").unlink()
    with pytest.raises(BundleIntegrityError, match=r"schema\.json is listed .* but missing"):
        load_bundle(staged)
    (staged / MANIFEST).unlink()
    with pytest.raises(BundleIntegrityError, match="not a complete bundle"):
        load_bundle(staged)


def test_champion_alias_moves_with_history_and_reason(staged, tmp_registry):
    registry = Registry(tmp_registry)
    first, second = registry.publish("m", staged), registry.publish("m", staged)
    registry.set_alias("m", first, reason="first")
    record = registry.set_alias("m", second, reason="better")
    assert (record.previous, record.version) == (first, second)
    assert registry.resolve("m") == second
    assert [r.reason for r in registry.history("m")] == ["first", "better"]


def test_models_rollback_walks_back_through_the_promotions(staged, tmp_registry):
    registry = Registry(tmp_registry)
    v1, v2, v3 = (registry.publish("m", staged) for _ in range(3))
    for version in (v1, v2, v3):
        registry.set_alias("m", version, reason="promoted")
    runner = CliRunner()
    for expected in (v2, v1):
        done = runner.invoke(cli, ["models", "rollback", "--name", "m", "--registry", tmp_registry])
        assert done.exit_code == 0, done.output
        assert registry.resolve("m") == expected
    done = runner.invoke(cli, ["models", "rollback", "--name", "m", "--registry", tmp_registry])
    assert done.exit_code != 0
    assert "no earlier champion" in done.output
    assert registry.resolve("m") == v1
    assert registry.promotions("m") == [v1]


def test_alias_to_an_unknown_version_is_refused(staged, tmp_registry):
    registry = Registry(tmp_registry)
    registry.publish("m", staged)
    with pytest.raises(NotFoundError, match="v0009"):
        registry.set_alias("m", "v0009")
    with pytest.raises(NotFoundError, match="no alias"):
        registry.resolve("m", "champion")


def test_staging_folders_are_never_listed_as_versions(staged, tmp_registry):
    registry = Registry(tmp_registry)
    registry.publish("m", staged)
    (Path(tmp_registry) / "m" / "versions" / ".staging-dead").mkdir()
    (Path(tmp_registry) / "m" / "versions" / "v0007").mkdir()  # no manifest: incomplete
    assert registry.versions("m") == ["v0001"]


_PUBLISH_FOREVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from flywheel_mlops.registry import Registry
    registry, staged = Registry(sys.argv[1]), Path(sys.argv[2])
    print("ready", flush=True)
    while True:
        version = registry.publish("m", staged)
        registry.set_alias("m", version, reason="loop")
""")


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.45, 0.8])
def test_killed_registration_leaves_the_registry_consistent(staged, tmp_registry, delay):
    """SIGKILL a process that publishes and promotes in a loop, at several moments."""
    registry = Registry(tmp_registry)
    registry.set_alias("m", registry.publish("m", staged), reason="seed")
    # A bigger reference file makes each copy slow enough to be killed in the middle of one.
    (staged / "padding.bin").write_bytes(b"\0" * 30_000_000)
    manifest = json.loads((staged / MANIFEST).read_text())
    from flywheel_mlops.registry.bundle import sha256_of

    manifest["files"]["padding.bin"] = sha256_of(staged / "padding.bin")
    (staged / MANIFEST).write_text(json.dumps(manifest))
    process = subprocess.Popen(
        [sys.executable, "-c", _PUBLISH_FOREVER, tmp_registry, str(staged)], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(delay)
    finally:
        process.kill()
        process.wait()
    for version in registry.versions("m"):
        verify(Path(tmp_registry) / "m" / "versions" / version)
    champion = registry.load("m", "champion")
    assert champion.version in registry.versions("m")
