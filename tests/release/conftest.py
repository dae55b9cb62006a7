"""Fixtures of the release tests: the ``fakecloud`` provider installed, the build replaced
by a made-up release (no Docker), a known identity, and the CLI run in process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import release_support
from release_support import FakeCloud, release_of

import deployer.providers as sdk
from deployer.api import Project
from deployer.audit.identity import CI_ACTORS
from deployer.providers import Release


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CI variables, no global or system git configuration: who comes from what a
    test sets."""
    for variable, _system, email, run in CI_ACTORS:
        for name in (variable, email, run):
            if name:
                monkeypatch.delenv(name, raising=False)
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))


@dataclass
class Pushing:
    """What a push in these tests deploys (``release``) and how many builds ran."""

    release: Release = field(default_factory=lambda: release_of("v1"))
    builds: int = 0


@pytest.fixture
def fakecloud(monkeypatch: pytest.MonkeyPatch, identity: None) -> Iterator[Pushing]:
    """The fakecloud plugin installed, fresh clouds, builds replaced by ``Pushing``."""
    pushing = Pushing()
    monkeypatch.setattr(sdk, "available_providers", release_support.entry_points)
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")

    def build(self: Project, **_: Any) -> str:
        pushing.builds += 1
        return "image"

    monkeypatch.setattr(Project, "build", build)
    monkeypatch.setattr(Project, "release", lambda self, image: pushing.release)
    FakeCloud.clouds.clear()
    yield pushing
    FakeCloud.clouds.clear()
