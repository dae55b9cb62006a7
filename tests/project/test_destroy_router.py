"""``destroy`` takes the destroyed targets' backends out of router.yaml (push put them in),
keeps every other backend and setting, and leaves the file alone on --dry-run or failure.

Providers are protocol-level fakes registered by replacing the plugin lookup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from deployer import Project
from deployer.errors import ConfigError, DeployerError
from deployer.providers import ProjectInfo, Target
from deployer.router import manifest

ROUTER = """\
version: 1
name: iris
policy: least-latency
backends:
  - {name: aws, provider: memory, url: "http://127.0.0.1:9001", weight: 3}
  - {name: k8s, provider: memory, url: "http://127.0.0.1:9002", tier: 1}
  - {name: gcp, provider: vertex, auth: google-oauth,
     url: "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/l/endpoints/1:rawPredict"}
  - {name: by-hand, url: "http://127.0.0.1:9003", pinned: true}
"""


class MemoryProvider:
    """A target whose cloud is a set of resource names; ``broken`` targets fail to go."""

    name: ClassVar[str] = "memory"
    broken: ClassVar[set[str]] = set()
    destroyed: ClassVar[list[str]] = []

    def __init__(self, target: Target, project: ProjectInfo) -> None:
        self.target = target

    def destroy(self, progress: Any) -> list[str]:
        if self.target.name in self.broken:
            raise DeployerError(f"{self.target.name}: permission denied deleting the endpoint")
        self.destroyed.append(self.target.name)
        progress(f"removed endpoint {self.target.name}")
        return [f"endpoint {self.target.name}"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """Targets aws, k8s and gcp (memory providers: gcp's backend is another provider's),
    and a router.yaml as push and a hand edit left it."""
    import deployer.providers

    monkeypatch.setattr(deployer.providers, "provider_class", lambda name: MemoryProvider)
    monkeypatch.setattr(MemoryProvider, "broken", set())
    monkeypatch.setattr(MemoryProvider, "destroyed", [])
    (tmp_path / "m.onnx").write_bytes(b"")
    (tmp_path / "deployer.yaml").write_text(
        "name: iris\nmodel: {path: m.onnx}\ntargets:\n"
        "  aws: {provider: memory}\n  k8s: {provider: memory}\n  gcp: {provider: memory}\n"
    )
    (tmp_path / "router.yaml").write_text(ROUTER)
    return Project.load(tmp_path / "deployer.yaml")


def test_destroy_removes_the_targets_backends_and_keeps_the_rest(project: Project) -> None:
    result = project.destroy(["aws", "gcp"])
    assert dict(result) == {"aws": ["endpoint aws"], "gcp": ["endpoint gcp"]}
    # gcp's backend is a vertex endpoint of the same name, not this memory target: kept
    assert result.router_backends == ["aws"]
    assert result.router_manifest == str(project.root / "router.yaml")
    after = manifest.load(project.root / "router.yaml")
    assert [b.name for b in after.backends] == ["k8s", "gcp", "by-hand"]
    assert after.policy == "least-latency" and after.backend("k8s").tier == 1  # type: ignore[union-attr]
    assert result.to_dict()["router_backends"] == ["aws"]
    again = project.destroy(["aws"])
    assert again.router_backends == [] and again.router_manifest is None


def test_dry_run_destroys_nothing_and_leaves_router_yaml_alone(project: Project) -> None:
    before = (project.root / "router.yaml").read_bytes()
    result = project.destroy(["aws", "k8s"], dry_run=True)
    assert result.dry_run is True
    assert result.router_backends == ["aws", "k8s"]  # what would leave router.yaml
    assert dict(result) == {"aws": [], "k8s": []}
    assert MemoryProvider.destroyed == []
    assert (project.root / "router.yaml").read_bytes() == before


def test_a_failed_target_leaves_router_yaml_alone(project: Project) -> None:
    MemoryProvider.broken = {"k8s"}
    before = (project.root / "router.yaml").read_bytes()
    with pytest.raises(DeployerError, match="permission denied"):
        project.destroy(["aws", "k8s"])
    assert MemoryProvider.destroyed == ["aws"]
    assert (project.root / "router.yaml").read_bytes() == before


def test_an_invalid_router_yaml_fails_before_anything_is_destroyed(project: Project) -> None:
    (project.root / "router.yaml").write_text("name: iris\nbackends: [{name: aws}]\n")
    with pytest.raises(ConfigError, match=r"router\.yaml"):
        project.destroy(["aws"])
    assert MemoryProvider.destroyed == []


def test_without_router_yaml_nothing_is_written(project: Project) -> None:
    (project.root / "router.yaml").unlink()
    result = project.destroy(["aws"])
    assert result["aws"] == ["endpoint aws"] and result.router_backends == []
    assert not (project.root / "router.yaml").exists()
    skipped = Project.load(project.file).destroy(["k8s"], router_file=None)
    assert skipped.router_manifest is None


def test_backends_edited_meanwhile_are_respected(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """router.yaml is read again after the targets are gone: a hand edit made while a slow
    destroy ran (here: `router remove k8s`) is kept, and only what is left is removed."""
    original = MemoryProvider.destroy

    def slow_destroy(self: MemoryProvider, progress: Any) -> list[str]:
        if self.target.name == "k8s":
            current = manifest.load(project.root / "router.yaml")
            manifest.write(manifest.without_backend(current, "k8s"), project.root / "router.yaml")
        return original(self, progress)

    monkeypatch.setattr(MemoryProvider, "destroy", slow_destroy)
    result = project.destroy(["aws", "k8s"])
    assert result.router_backends == ["aws"]
    names = [b.name for b in manifest.load(project.root / "router.yaml").backends]
    assert names == ["gcp", "by-hand"]


def test_cli_reports_the_router_change(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployer.cli import app

    monkeypatch.chdir(project.root)
    runner = CliRunner()
    dry = runner.invoke(app, ["destroy", "--to", "aws", "--dry-run", "-o", "json"])
    assert dry.exit_code == 0, dry.output
    document = json.loads(dry.stdout)
    assert document["dry_run"] is True and document["router_backends"] == ["aws"]
    assert MemoryProvider.destroyed == []
    text = runner.invoke(app, ["destroy", "--to", "aws", "--yes"])
    assert text.exit_code == 0, text.output
    assert "removed backend(s) aws" in text.output and "aws: removed 1 resource(s)" in text.output
    done = runner.invoke(app, ["destroy", "--to", "aws", "-y", "-o", "json"])
    assert json.loads(done.stdout) == {
        "ok": True,
        "removed": {"aws": ["endpoint aws"]},
        "router_manifest": None,
        "router_backends": [],
        "dry_run": False,
    }
