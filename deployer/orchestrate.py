"""Push a release to targets: publish, deploy, wait, smoke-test; report every step.

Each target goes through the same stages; a failed smoke test rolls that target back.
The result is the same typed object the CLI renders and the API returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from deployer.errors import DeployerError
from deployer.providers import Plan, Provider, Release, Strategy

Event = Callable[[str, str], None]  # (target, message)


@dataclass
class TargetResult:
    """What happened to one target."""

    target: str
    provider: str
    ok: bool = False
    changed: bool = False
    version: str | None = None
    previous_version: str | None = None
    url: str | None = None
    error: str | None = None
    rolled_back: bool = False
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)


@dataclass
class PushResult:
    """The outcome of a push: the image and one result per target."""

    project: str
    version: str
    image: dict[str, Any]
    targets: list[TargetResult]
    dry_run: bool = False
    plans: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


class SmokeTestFailed(DeployerError):
    """The new version answered the smoke prediction wrongly."""


def smoke_test(provider: Provider, release: Release) -> str:
    """One prediction through the provider's real invoke path; raises if it is wrong."""
    invocation = provider.invoke(
        orjson.dumps(release.sample), "application/json", "application/json"
    )
    if invocation.status != 200:
        raise SmokeTestFailed(
            f"smoke prediction answered {invocation.status}: "
            f"{invocation.body[:300].decode(errors='replace')}"
        )
    try:
        predictions = orjson.loads(invocation.body)["predictions"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise SmokeTestFailed(f"smoke prediction returned {invocation.body[:300]!r}") from None
    if len(predictions) != len(release.sample):
        raise SmokeTestFailed(
            f"smoke prediction returned {len(predictions)} rows for {len(release.sample)}"
        )
    return f"smoke prediction ok ({len(predictions)} rows)"


def push_target(
    provider: Provider,
    target: str,
    release: Release,
    strategy: Strategy,
    timeout: float,
    event: Event,
) -> TargetResult:
    """Publish, deploy, wait and smoke-test one target; never raises for a target failure."""
    result = TargetResult(target, provider.name)
    started = time.monotonic()

    def step(message: str) -> None:
        result.steps.append(message)
        event(target, message)

    try:
        step("publishing the image")
        image_ref = provider.publish(release.image, step)
        step("deploying")
        deployment = provider.deploy(release, image_ref, strategy, step)
        result.changed = deployment.changed
        result.version = deployment.version
        result.previous_version = deployment.previous_version
        step("waiting for health")
        status = provider.wait(deployment, timeout, step)
        if not status.healthy:
            raise DeployerError(f"not healthy: {status.reason or status.state}")
        result.url = status.url
        try:
            step(smoke_test(provider, release))
        except (SmokeTestFailed, DeployerError) as exc:
            if deployment.changed and deployment.previous_version:
                step(f"smoke test failed ({exc}); rolling back to {deployment.previous_version}")
                provider.rollback(step)
                result.rolled_back = True
            raise
        result.ok = True
    except DeployerError as exc:
        result.error = str(exc)
        event(target, f"failed: {exc}")
    finally:
        result.seconds = round(time.monotonic() - started, 2)
    return result


def plan_targets(providers: dict[str, Provider], release: Release) -> list[Plan]:
    return [provider.plan(release) for provider in providers.values()]
