"""The workflows follow the hardening rules of the issue, checked line by line."""

from __future__ import annotations

import re

import pytest
import yaml

from .conftest import REPO

pytestmark = pytest.mark.k8s

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*-?\s*uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v?\d+\.\d+\.\d+$")


def _load(path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_should_have_the_four_workflows_of_the_issue():
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "images.yml", "release.yml", "e2e.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_should_grant_nothing_at_the_top_and_bound_every_job(path):
    workflow = _load(path)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, name
        assert 0 < job["timeout-minutes"] <= 60, name
        assert job["concurrency"]["group"], name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_should_pin_every_action_by_sha_with_its_version(path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if "uses:" in line:
            assert PINNED.match(line), line


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_should_not_persist_checkout_credentials(path):
    for job in _load(path)["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_expressions_should_reach_scripts_only_through_env(path):
    for job in _load(path)["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step.get("name")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_write_grant_should_say_why(path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\s+[\w-]+: write", line):
            assert "# " in line, line


def test_triggers_should_match_their_purpose():
    on = {p.name: _load(p)[True] for p in WORKFLOWS}  # PyYAML reads `on:` as True
    assert set(on["ci.yml"]) == {"push", "pull_request"}
    assert on["images.yml"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert on["release.yml"] == {"push": {"tags": ["v*"]}}
    release = _load(REPO / ".github" / "workflows" / "release.yml")["jobs"]["deploy"]
    assert release["environment"] == "production"


def test_images_should_push_sign_and_scan():
    text = (REPO / ".github" / "workflows" / "images.yml").read_text(encoding="utf-8")
    for expected in (
        "ghcr.io",
        "sbom: true",
        "cosign sign --yes",
        "ignore-unfixed: true",
        "severity: CRITICAL",
        'exit-code: "1"',
    ):
        assert expected in text
