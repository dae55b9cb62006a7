"""A rollout that outlasts the push timeout is rolled back, never left half done: the
returned Status, ``status()`` afterwards, what the fake cluster holds and the journal of
a push through the orchestrator all name the same, known version.

The fake's pods start on its own clock; the provider's deadlines run on a ``PollClock``
(virtual time moved by each poll), so a timeout is reached after a number of polls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from k8s_support import PollClock, ProviderFactory, image_ref, release
from k8sfake import FakeKube

import deployer_kubernetes.deploy
import deployer_kubernetes.provider
from deployer.providers import Strategy
from deployer_kubernetes.provider import KubernetesProvider

APPS = ("apps", "v1", "deployments")
SERVICES = ("", "v1", "services")
PODS = ("", "v1", "pods")
V1, V2 = release(1).version, release(2).version


def image_of(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def use_clock(monkeypatch: pytest.MonkeyPatch, clock: PollClock) -> None:
    monkeypatch.setattr(deployer_kubernetes.provider, "time", clock)
    monkeypatch.setattr(deployer_kubernetes.deploy, "time", clock)


def first_push(provider: KubernetesProvider, n: int = 1) -> None:
    deployment = provider.deploy(release(n), image_ref(n), Strategy(), lambda _: None)
    assert provider.wait(deployment, 120, lambda _: None).healthy


def assert_only_v1_runs(fake: FakeKube) -> None:
    """The cluster holds the previous version alone: no canary, no pod of the new one."""
    assert [d["metadata"]["name"] for d in fake.objects(*APPS)] == ["iris-k8s"]
    assert [s["metadata"]["name"] for s in fake.objects(*SERVICES)] == ["iris-k8s"]
    live = fake.object(*APPS, "default", "iris-k8s")
    assert image_of(live) == image_ref(1)
    assert live["metadata"]["labels"]["deployer-version"] == V1
    assert {p["spec"]["containers"][0]["image"] for p in fake.objects(*PODS)} == {image_ref(1)}


def test_an_all_at_once_timeout_rolls_back_to_the_previous_version(
    fake: FakeKube, make_provider: ProviderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider()
    first_push(provider)
    fake.fail_image(image_ref(2), "Pending")  # the new pods never become ready
    clock = PollClock()
    lines: list[str] = []
    timed_out_at: list[float] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith("rolling back to"):
            timed_out_at.append(clock.now)

    deployment = provider.deploy(release(2), image_ref(2), Strategy(), progress)
    use_clock(monkeypatch, clock)
    status = provider.wait(deployment, 1.0, progress)
    assert timed_out_at and 1.0 <= timed_out_at[0] < 1.1  # polled to the deadline, no longer
    assert clock.polls >= 10  # the rollout was watched over many polls
    assert status.state == "failed" and status.version == V1
    assert status.details == {"rolled_back": True}
    assert status.reason.startswith("timed out after 1s waiting for deployment/iris-k8s")
    assert 'last state: Waiting for deployment "iris-k8s" rollout to finish' in status.reason
    assert status.reason.endswith(f"; rolled back: {V1} keeps serving")
    after = provider.status()  # status agrees with what wait returned
    assert after.healthy and after.version == V1 and "canary" not in after.details
    assert_only_v1_runs(fake)


def test_a_timeout_while_promoting_a_canary_rolls_back_and_removes_it(
    fake: FakeKube, make_provider: ProviderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider(replicas=2)
    first_push(provider)
    clock = PollClock(running=False)  # the canary phase takes what it takes
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith("promoting "):
            # the canary passed; the main Deployment's new pods will never become ready,
            # and from here the push timeout counts down
            fake.fail_image(image_ref(2), "Pending")
            clock.start()

    deployment = provider.deploy(release(2), image_ref(2), Strategy.parse("canary:50"), progress)
    use_clock(monkeypatch, clock)
    status = provider.wait(deployment, 1.0, progress)
    assert any(line.startswith("canary at 50%: smoke prediction ok") for line in lines)
    assert any(line.startswith("promoting ") for line in lines)
    assert status.state == "failed" and status.version == V1
    assert status.details == {"rolled_back": True}
    assert status.reason.startswith(
        f"promoting {V2} to deployment/iris-k8s: timed out after 1s waiting for deployment/iris-k8s"
    )
    assert status.reason.endswith(f"; rolled back: {V1} keeps serving")
    after = provider.status()
    assert after.healthy and after.version == V1 and "canary" not in after.details
    assert_only_v1_runs(fake)


def test_a_timeout_with_nothing_to_roll_back_to_says_so(
    fake: FakeKube, make_provider: ProviderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider()
    fake.fail_image(image_ref(1), "Pending")
    deployment = provider.deploy(release(1), image_ref(1), Strategy(), lambda _: None)
    use_clock(monkeypatch, PollClock())
    status = provider.wait(deployment, 1.0, lambda _: None)
    assert status.state == "failed" and status.version == V1
    assert "rolled_back" not in status.details
    assert status.reason.startswith("timed out after 1s waiting for deployment/iris-k8s")
    assert status.reason.endswith(
        f"; nothing to roll back to: {V1} was the first version here and stays, timed out"
    )
    after = provider.status()
    assert after.version == V1 and not after.healthy
    assert image_of(fake.object(*APPS, "default", "iris-k8s")) == image_ref(1)


def test_the_journal_of_a_timed_out_push_records_the_rollback(
    fake: FakeKube, make_provider: ProviderFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from deployer.orchestrate import push_release

    provider = make_provider()
    first_push(provider)
    fake.fail_image(release(2).image.ref, "Pending")  # no registry: the cluster pulls iris:2
    use_clock(monkeypatch, PollClock())
    result = push_release(
        "iris",
        {"k8s": provider},
        lambda: release(2),
        strategy=Strategy(),
        policy="rollback",
        timeout=1.0,
        journal_dir=tmp_path,
    )
    (target,) = result.targets
    # the target rolled itself back: reported as such, at the version that serves
    assert not result.ok and target.outcome == "rolled back"
    assert target.previous_version == V1 and target.live_version == V1
    (written,) = tmp_path.glob("*.json")
    entries = [(e["step"], e["detail"]) for e in json.loads(written.read_text())["journal"]]
    steps = [step for step, _ in entries]
    assert ("progress", f"rolling back to {V1} (timed out)") in entries
    (failed,) = [detail for step, detail in entries if step == "failed"]
    assert failed.startswith("not healthy (failed): timed out after 1s waiting for")
    assert failed.endswith(f"rolled back: {V1} keeps serving")
    # the provider rolled back within the push: the orchestrator had nothing left to undo
    assert "rollback" not in steps and "undo failed" not in steps
    assert ("rolled back by the cloud", V1) in entries
    assert steps.index("failed") > entries.index(("progress", f"rolling back to {V1} (timed out)"))
    assert provider.status().version == V1 and provider.status().healthy
    assert_only_v1_runs(fake)
