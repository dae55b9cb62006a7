"""``plan`` and ``push --dry-run`` know the strategy: a target that would refuse it says so
at plan time (exit 2), naming the target, the strategy, the fleet and what would work,
and nothing is created.

The aws target runs on the SageMaker provider's own fake (moto at the wire, driven by the
real boto3; see providers/aws/tests/aws_fake.py). No image is built: ``Project.build`` and
``Project.release`` hand back a prepared release, so no Docker is needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_fake import FakeAws
from aws_support import Recorder, image_ref, release
from aws_test_env import CREDENTIAL_VARIABLES, fake_aws_environment
from typer.testing import CliRunner

from deployer import Project
from deployer.providers import Plan, Release, Strategy, plan_of

V1, V2 = release("plan-one"), release("plan-two")
READS = ("Describe", "List", "Get", "BatchCheck", "InvokeEndpoint")


@pytest.fixture(scope="module")
def fake_aws() -> Iterator[FakeAws]:
    fake = FakeAws().start()
    yield fake
    fake.stop()


@pytest.fixture
def project(
    fake_aws: FakeAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """The iris project with one target ``aws`` (SageMaker on the fake, 1 instance) already
    serving V1; building hands back V2 (no Docker)."""
    fake_aws.reset()
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_aws_environment(tmp_path / "no-aws-config").items():
        monkeypatch.setenv(name, value)
    (tmp_path / "m.onnx").write_bytes(b"")
    config = {"name": "iris", "model": {"path": "m.onnx"}, "targets": {"aws": fake_aws.options()}}
    (tmp_path / "deployer.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    loaded = Project.load(tmp_path / "deployer.yaml")
    provider = loaded.providers(["aws"])["aws"]
    deployment = provider.deploy(V1, image_ref(V1), Strategy(), Recorder())
    assert provider.wait(deployment, 60, Recorder()).version == V1.version
    monkeypatch.setattr(Project, "build", lambda self, **_: V2.image)
    monkeypatch.setattr(Project, "release", lambda self, image: V2)
    monkeypatch.chdir(tmp_path)
    yield loaded


def writes(fake: FakeAws) -> list[str]:
    """Every changing request the fake has received (anything but a read)."""
    return [r.operation for r in fake.requests if not r.operation.startswith(READS)]


def test_plan_refuses_a_canary_the_fleet_cannot_hold_and_creates_nothing(
    project: Project, fake_aws: FakeAws
) -> None:
    from deployer.cli import app

    before = writes(fake_aws)
    result = CliRunner().invoke(app, ["plan", "--to", "aws", "--strategy", "canary:10"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "aws would refuse canary:10" in text  # the target and the strategy
    assert "! refuses: SageMaker endpoint iris-aws:" in text
    assert "cannot run on 1 instance(s)" in text and "canary of 1-50%" in text  # the fleet
    assert "canary:10 fits instance_count 2" in text  # what would work
    assert "all-at-once fits any fleet" in text
    assert "Traceback" not in text
    assert writes(fake_aws) == before, "plan changed something on SageMaker"
    assert fake_aws.calls("UpdateEndpoint") == [] and fake_aws.rejected == []
    assert project.status(["aws"])[0].version == V1.version


def test_plan_json_lists_the_problems_per_target(project: Project, fake_aws: FakeAws) -> None:
    from deployer.cli import app

    before = writes(fake_aws)
    args = ["plan", "--to", "aws", "--strategy", "linear:10", "-o", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False
    (plan,) = document["plans"]
    assert plan["target"] == "aws" and plan["ok"] is False and plan["strategy"] == "linear:10"
    (problem,) = plan["problems"]
    assert problem.startswith("SageMaker endpoint iris-aws: strategy linear:10 cannot run on 1")
    assert "What works: no linear:N fits 1 instance(s)" in problem
    assert any(c["action"] == "update" for c in plan["changes"])  # the plan itself is there
    assert writes(fake_aws) == before


def test_a_strategy_the_fleet_holds_plans_cleanly(project: Project, fake_aws: FakeAws) -> None:
    from deployer.cli import app

    result = CliRunner().invoke(app, ["plan", "--to", "aws", "-o", "json"])  # all-at-once
    assert result.exit_code == 0, result.output
    (plan,) = json.loads(result.stdout)["plans"]
    assert plan["ok"] is True and plan["problems"] == []


def test_push_dry_run_refuses_it_too(project: Project, fake_aws: FakeAws) -> None:
    from deployer.cli import app

    before = writes(fake_aws)
    result = CliRunner().invoke(
        app, ["push", "--to", "aws", "--strategy", "canary:10", "--dry-run", "-o", "json"]
    )
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "refused" and document["dry_run"] is True
    assert "cannot run on 1 instance(s)" in document["plans"][0]["problems"][0]
    text = CliRunner().invoke(app, ["push", "--to", "aws", "--strategy", "canary:10", "--dry-run"])
    assert text.exit_code == 2 and "aws would refuse canary:10" in " ".join(text.output.split())
    assert writes(fake_aws) == before


def test_a_real_push_is_refused_before_anything_changes(
    project: Project, fake_aws: FakeAws
) -> None:
    """Not only the dry run: ``push`` checks every target's plan for the strategy first,
    so no target is deployed (and later rolled back) when one would refuse it."""
    from deployer.cli import app

    before = writes(fake_aws)
    result = CliRunner().invoke(
        app, ["push", "--to", "aws", "--strategy", "canary:10", "-o", "json"]
    )
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert "problem(s) with canary:10; nothing was changed" in document["error"]
    assert "aws: SageMaker endpoint iris-aws" in document["error"]
    assert "cannot run on 1 instance(s)" in document["error"]
    assert "Traceback" not in result.output
    assert writes(fake_aws) == before, "the refused push changed something on SageMaker"
    assert project.status(["aws"])[0].version == V1.version


def test_the_python_api_returns_the_problems(project: Project) -> None:
    (plan,) = project.plan(["aws"], strategy="canary:10")
    assert not plan.ok and "cannot run on 1 instance(s)" in plan.problems[0]
    (plan,) = project.plan(["aws"])
    assert plan.ok
    result = project.push(["aws"], strategy="canary:10", dry_run=True)
    assert result.status == "refused" and result.refused == ["aws"]


# -- a provider written before plan took the strategy keeps working --------------------


class OldProvider:
    """A third-party provider's plan as the protocol first had it: no strategy."""

    def plan(self, release: Release) -> Plan:
        return Plan("old", [])


class NewProvider:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def plan(self, release: Release, strategy: Strategy | None = None) -> Plan:
        self.seen.append(strategy)
        return Plan("new", [], [f"refuses {strategy}"] if strategy else [])


def test_plan_of_passes_the_strategy_only_to_a_plan_that_takes_it() -> None:
    canary = Strategy.parse("canary:10")
    assert plan_of(OldProvider(), V2, canary).ok
    new = NewProvider()
    assert plan_of(new, V2, canary).problems == ["refuses canary:10"]
    assert plan_of(new, V2, None).ok and new.seen == [canary, None]
