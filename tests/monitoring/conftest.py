"""Fixtures of the monitoring tests: the capturing provider installed with no records, and
a project with a model, its training data and a recorded baseline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import monitoring_support
import pytest
from monitoring_support import CapturingCloud, cli, write_project
from release_support import FakeCloud

import deployer.providers as sdk


@pytest.fixture
def capturing(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[CapturingCloud]]:
    monkeypatch.setattr(sdk, "available_providers", monitoring_support.entry_points)
    CapturingCloud.records, CapturingCloud.asked = [], []
    FakeCloud.clouds.clear()
    yield CapturingCloud
    CapturingCloud.records, CapturingCloud.asked = [], []
    FakeCloud.clouds.clear()


@pytest.fixture
def project(tmp_path: Path, capturing: type[CapturingCloud]) -> Path:
    """The project folder, deployer.lock with the baseline of train.csv (label y)."""
    file = write_project(tmp_path / "watched")
    run = cli("baseline", "-f", str(file), "--data", str(file.parent / "train.csv"), "-l", "y")
    assert run.exit_code == 0, run.stdout + run.stderr
    return file.parent
