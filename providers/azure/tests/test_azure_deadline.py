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
    monkeypatch.setattr("deployer_azure.promote.time", SkippingClock())
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
