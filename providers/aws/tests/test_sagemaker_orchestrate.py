"""The orchestrator over the SageMaker provider when SageMaker rolls an update back by
itself (a failed update, an auto-rollback, an update past its
MaximumExecutionTimeoutInSeconds): the journal says the cloud rolled back and which
version is live, the target's result agrees with ``deployer status``, and the
orchestrator does not roll it back a second time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aws_fake import FakeAws, Script
from aws_support import image_ref, release
from typer.testing import CliRunner

from deployer import Project
from deployer.orchestrate import CLOUD_ROLLED_BACK, PushResult, push_release
from deployer.providers import Strategy

V1, V2 = release("orchestrated-one"), release("orchestrated-two")
REASON = "The primary container for production variant AllTraffic did not pass the ping"


@pytest.fixture
def project(fake: FakeAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """deployer.yaml with one target ``aws`` on the fake; smoke predictions answered."""
    config = {"name": "iris", "model": {"path": "m.onnx"}, "targets": {"aws": fake.options()}}
    (tmp_path / "m.onnx").write_bytes(b"")
    (tmp_path / "deployer.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return Project.load(tmp_path / "deployer.yaml")


def push(
    project: Project, fake: FakeAws, rel: Any, policy: Any = "rollback", **options: Any
) -> PushResult:
    """A push as ``Project.push`` runs it (journal file included), publishing nothing."""
    providers = project.providers(["aws"])
    provider = providers["aws"]
    provider.publish = lambda image, progress: image_ref(rel)  # type: ignore[method-assign]
    answer = orjson.dumps({"predictions": [0] * len(rel.sample)})
    fake.model_answers.append((200, answer, "application/json"))
    return push_release(
        "iris",
        providers,
        lambda: rel,
        strategy=options.pop("strategy", Strategy()),
        policy=policy,
        journal_dir=project.root / "journal",
        **options,
    )


def steps(result: PushResult) -> list[tuple[str, str]]:
    return [(e.step, e.detail) for e in result.journal if e.target == "aws"]


def status_json() -> dict[str, Any]:
    """``deployer status --to aws -o json``: what SageMaker says is live."""
    from deployer.cli import app

    answer = CliRunner().invoke(app, ["status", "--to", "aws", "-o", "json"])
    assert answer.exit_code == 0, answer.output
    (target,) = json.loads(answer.stdout)["targets"]
    return dict(target)


@pytest.mark.parametrize("policy", ["rollback", "keep"])
def test_a_failed_update_sagemaker_rolled_back_is_journalled_and_not_undone_again(
    project: Project, fake: FakeAws, policy: str
) -> None:
    first = push(project, fake, V1)
    assert first.ok, [t.error for t in first.targets]
    fake.script_update(Script(["Updating", "RollingBack"], "rollback", REASON))

    result = push(project, fake, V2, policy)

    (target,) = result.targets
    assert target.outcome == "rolled back" and not result.ok
    assert (target.previous_version, target.live_version) == (V1.version, V1.version)
    assert target.url and target.url.endswith("/endpoints/iris-aws/invocations")
    assert REASON in (target.error or "")
    journal = steps(result)
    assert (CLOUD_ROLLED_BACK, V1.version) in journal
    failed = next(i for i, (step, _) in enumerate(journal) if step == "failed")
    assert journal.index((CLOUD_ROLLED_BACK, V1.version)) > failed
    assert not any(step in ("rollback", "remove", "smoke test") for step, _ in journal)
    assert len(fake.calls("UpdateEndpoint")) == 1  # V2's update only: no second rollback
    # the journal file says the same, and so does `deployer status`
    (written,) = (project.root / "journal").glob(f"*-{V2.version}.json")
    document = json.loads(written.read_text())
    assert document["targets"][0]["outcome"] == "rolled back"
    assert {"step": CLOUD_ROLLED_BACK, "detail": V1.version} in [
        {"step": e["step"], "detail": e["detail"]} for e in document["journal"]
    ]
    now = status_json()
    assert now["healthy"] and now["version"] == target.live_version


def test_an_update_past_its_time_rolled_back_by_sagemaker_is_journalled(
    project: Project, fake: FakeAws
) -> None:
    assert push(project, fake, V1).ok
    fake.script_update(Script(["Updating"], None))  # would never finish by itself
    fake.speed = 100.0  # cloud seconds per second: the 660 s limit passes in 6.6 s
    result = push(project, fake, V2, strategy=Strategy.parse("all-at-once", 60), timeout=61)
    (target,) = result.targets
    assert target.outcome == "rolled back" and target.live_version == V1.version
    assert "MaximumExecutionTimeoutInSeconds" in (target.error or "")
    assert (CLOUD_ROLLED_BACK, V1.version) in steps(result)
    assert len(fake.calls("UpdateEndpoint")) == 1
    assert status_json()["version"] == V1.version


def test_an_update_that_fails_for_good_is_not_called_rolled_back(
    project: Project, fake: FakeAws
) -> None:
    # UpdateRollbackFailed: SageMaker's own rollback failed too; nothing says rolled back
    assert push(project, fake, V1).ok
    fake.script_update(Script(["Updating", "RollingBack"], "UpdateRollbackFailed", REASON))
    result = push(project, fake, V2)
    (target,) = result.targets
    assert target.outcome == "failed" and "rolled back" not in (target.error or "")
    assert not any(step == CLOUD_ROLLED_BACK for step, _ in steps(result))
