"""A rollout that cannot finish before the deadline stops: traffic back on the previous
deployment, the new one deleted, the Status naming the previous version (issue 15, 4-5)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure_fake import FakeAzureML
from azure_support import image_ref, release

from deployer.providers import Strategy
from deployer_azure import names

EP = "iris-azure"


def quiet(_message: str) -> None:
    return None


def name_of(number: int) -> str:
    return names.deployment_name(release(number).version)


class SkippingClock:
    """``time`` for promote.py: ``sleep`` advances ``monotonic`` at once (a bake takes no
    wall time), so where the deadline falls is decided by the bakes alone."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.offset += seconds


def push(provider: Any, fake: FakeAzureML, number: int, strategy: str, bake: float,
         timeout: float) -> Any:  # fmt: skip
    deployment = provider.deploy(
        release(number), image_ref(fake, number), Strategy.parse(strategy, bake), quiet
    )
    return provider.wait(deployment, timeout, quiet)


def test_a_canary_whose_bake_cannot_fit_never_gets_traffic(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    push(provider, fake, 1, "all-at-once", 0, 120)
    updates = len(fake.traffic_updates(EP))
    status = push(provider, fake, 2, "canary:10", bake=60, timeout=3)
    assert status.state == "failed" and status.version == release(1).version
    assert "timed out" in (status.reason or "") and "stopped" in (status.reason or "")
    assert fake.traffic_updates(EP)[updates:] == []  # no step without its bake
    assert fake.endpoints[EP]["properties"]["traffic"] == {name_of(1): 100}
    assert (EP, name_of(2)) not in fake.deployments
    assert provider.status().version == release(1).version


def test_a_linear_rollout_past_the_deadline_is_stopped_and_traffic_restored(
    fake: FakeAzureML, make_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = make_provider()
    push(provider, fake, 1, "all-at-once", 0, 120)
    updates = len(fake.traffic_updates(EP))
    clock = SkippingClock()
    monkeypatch.setattr("deployer_azure.promote.time", clock)
    monkeypatch.setattr("deployer_azure.promote.bake_sleep", clock.sleep)  # a bake: no wall time
    monkeypatch.setattr("deployer_azure.promote.bake_clock", clock.monotonic)
    # 30% baked 60 s fits in 100 s; 60% with another 60 s bake does not
    status = push(provider, fake, 2, "linear:30", bake=60, timeout=100)
    assert status.state == "failed" and status.version == release(1).version
    assert "timed out" in (status.reason or "")
    assert f"traffic 100% to {name_of(1)}" in (status.reason or "")
    assert fake.traffic_updates(EP)[updates:] == [
        {name_of(2): 30, name_of(1): 70},
        {name_of(1): 100},
    ]
    assert (EP, name_of(2)) not in fake.deployments
    assert provider.status().version == release(1).version


def deletes_of(fake: FakeAzureML, name: str) -> list[int]:
    """The status of every DELETE of deployment ``name``, in order."""
    return [r.status for r in fake.requests_to("DELETE", f"/deployments/{name}")]


def test_provisioning_past_the_deadline_is_abandoned_once_azure_lets_go(
    fake: FakeAzureML, make_provider: Any
) -> None:
    provider = make_provider()
    push(provider, fake, 1, "all-at-once", 0, 120)
    updates = len(fake.traffic_updates(EP))
    gate = fake.hold_provisioning()  # the new deployment stays Creating past the deadline
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if "cannot be deleted yet" in line:
            gate.set()  # Azure refused the delete; now its create ends (after the deadline)

    deployment = provider.deploy(
        release(2), image_ref(fake, 2), Strategy.parse("all-at-once"), progress
    )
    status = provider.wait(deployment, 0.3, progress)
    reason = status.reason or ""
    assert status.state == "failed" and status.version == release(1).version
    assert reason.startswith(
        f"deployment {name_of(2)} (version {release(2).version}) failed: timed out after "
        f"0.3s waiting for deployment {name_of(2)} to provision; last provisioning state: "
        "Creating; the rollout was stopped"
    )
    assert f"the previous version {release(1).version} keeps serving" in reason
    assert reason.endswith(f"deployment {name_of(2)} deleted")
    # refused while Creating, deleted once provisioning ended
    assert deletes_of(fake, name_of(2)) == [409, 202]
    assert (EP, name_of(2)) not in fake.deployments
    assert fake.traffic_updates(EP)[updates:] == []  # traffic never moved
    assert fake.endpoints[EP]["properties"]["traffic"] == {name_of(1): 100}
    now = provider.status()
    assert now.healthy and now.version == release(1).version


def test_provisioning_that_outlasts_the_grace_is_reported_left_over(
    fake: FakeAzureML, make_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("deployer_azure.waiting.DELETE_GRACE", 0.3)
    provider = make_provider()
    push(provider, fake, 1, "all-at-once", 0, 120)
    fake.hold_provisioning()  # Creating until the test ends
    status = push(provider, fake, 2, "all-at-once", 0, timeout=0.3)
    reason = status.reason or ""
    assert status.state == "failed" and status.version == release(1).version
    assert "timed out after 0.3s waiting for deployment" in reason
    assert f"the previous version {release(1).version} keeps serving" in reason
    assert f"deployment {name_of(2)} could not be deleted (" in reason
    assert "it was still Creating after 0.3s" in reason
    assert "it gets no traffic, and the next push or `deployer destroy` removes it" in reason
    assert set(deletes_of(fake, name_of(2))) == {409}
    assert fake.deployments[(EP, name_of(2))]["properties"]["provisioningState"] == "Creating"
    assert fake.endpoints[EP]["properties"]["traffic"] == {name_of(1): 100}
    now = provider.status()
    assert now.healthy and now.version == release(1).version


def test_a_first_deploy_past_the_deadline_says_nothing_was_serving(
    fake: FakeAzureML, make_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("deployer_azure.waiting.DELETE_GRACE", 0.3)
    provider = make_provider()
    fake.hold_provisioning()
    status = push(provider, fake, 1, "all-at-once", 0, timeout=0.3)
    reason = status.reason or ""
    assert status.state == "failed" and status.version is None
    assert "timed out after 0.3s waiting for deployment" in reason
    assert "last provisioning state: Creating" in reason
    assert "nothing was serving before" in reason
    assert provider.status().version is None
